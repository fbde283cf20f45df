"""Foley: video-to-audio generation. See README.md for the commands and DESIGN.md for the architecture."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "generate"]


def generate(*args: Any, **kwargs: Any) -> Any:
    """``v2a.pipeline.generate`` (imported on first use, so ``import v2a`` stays light)."""
    from v2a.pipeline import generate as _generate

    return _generate(*args, **kwargs)
