"""Test-wide settings: never reach a model hub; the repo root for bundled files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The bundled sample video that `make demo` uses."""
    return REPO_ROOT / "examples" / "bounce.mp4"
