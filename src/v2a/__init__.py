"""Foley: video-to-audio generation. See README.md for the commands and DESIGN.md for the architecture."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
