"""Atomic file output: write to a temporary sibling, then rename over the target in one step."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from v2a.errors import OutputError


def check_output_path(
    out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = True
) -> Path:
    """Validate an output path before any work is done.

    Args:
        out: where the result will be written.
        inputs: files the job reads; writing over any of them is refused.
        overwrite: whether an existing, unrelated file at ``out`` may be replaced.

    Returns:
        ``out`` as a Path.

    Raises:
        OutputError: the output is an input, a directory, in a missing folder, or exists and
            ``overwrite`` is False.
    """
    out_path = Path(out)
    if out_path.is_dir():
        raise OutputError(f"output {out_path} is a directory; give a file name")
    if not out_path.parent.exists():
        raise OutputError(f"output folder {out_path.parent} does not exist")
    for src in inputs:
        src_path = Path(src)
        same = out_path.resolve() == src_path.resolve()
        if not same and out_path.exists() and src_path.exists():
            same = os.path.samefile(out_path, src_path)
        if same:
            raise OutputError(f"refusing to write the output over the input {src_path}")
    if out_path.exists() and not overwrite:
        raise OutputError(f"output {out_path} exists; pass --overwrite to replace it")
    return out_path


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``out``; on success rename it to ``out``, on error delete it.

    The temporary name keeps the suffix of ``out`` so that format detection by extension still works.
    A reader never sees a half-written ``out``, and an existing ``out`` survives a failed write.
    """
    out_path = Path(out)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{out_path.stem}.", suffix=f".part{out_path.suffix}", dir=out_path.parent or "."
    )
    os.close(fd)
    tmp_path = Path(tmp_name)
    os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the usual file mode
    try:
        yield tmp_path
        os.replace(tmp_path, out_path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
