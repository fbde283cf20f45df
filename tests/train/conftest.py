"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_corpus import write_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A tiny synthetic corpus; returns its manifest."""
    return write_corpus(tmp_path / "corpus")
