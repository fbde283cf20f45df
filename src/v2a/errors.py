"""Errors a user can cause and fix: the CLI prints their message as one line and exits with code 2."""

from __future__ import annotations


class V2AError(Exception):
    """Base class of errors whose message is meant for the user (no traceback needed)."""

    exit_code = 2


class InputError(V2AError):
    """An input file or argument is unusable: missing, not a video, truncated, too large, unsupported."""


class OutputError(V2AError):
    """An output cannot be written safely (would overwrite an input, directory missing, ...)."""


class ModelUnavailableError(V2AError):
    """A pretrained model's package or weight files are missing or unusable; the message names the package."""
