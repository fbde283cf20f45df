"""Fixtures of the eval tests: bouncing-square clips rendered once per session."""

from __future__ import annotations

import pytest
from eval_clips import Clip, bounce_clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> list[Clip]:
    """Three bouncing clips with different landing times and materials, shared by the eval tests."""
    folder = tmp_path_factory.mktemp("eval_clips")
    return [
        bounce_clip(folder, "drop_a", [0.62, 1.55, 2.3, 2.95, 3.45], material="wood"),
        bounce_clip(folder, "drop_b", [1.03, 1.9, 2.62, 3.2], material="metal"),
        bounce_clip(folder, "drop_c", [0.45, 1.3, 2.05, 2.7, 3.3], material="stone"),
    ]
