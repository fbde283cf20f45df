"""The one clip manifest: a JSON Lines file with one row per training or evaluation clip.

Every data builder (``v2a data ingest``, Foley world, ...) writes rows of this shape with ``write_manifest``;
every consumer (the shard writer, trainers, eval) reads them with ``read_manifest``. A row on disk::

    {"id": "dog-3f2a9c1e-000008000", "video": "clips/3f/dog-3f2a9c1e-000008000.mp4",
     "audio": "clips/3f/dog-3f2a9c1e-000008000.flac", "duration_s": 8.0, "fps": 25.0, "split": "train",
     "caption": "a dog barks twice", "transcript": "", "labels": ["dog"],
     "events": [{"start_s": 1.52, "label": "bark"}], "source": "/data/raw/dog/walk.mp4", "start_s": 8.0}

Rules:

- ``id`` is unique in a manifest and uses only ``A-Z a-z 0-9 _ -`` (it names files and WebDataset keys,
  which end at the first dot).
- ``video`` and ``audio`` are paths; in the file a relative path is relative to the manifest's folder.
  ``read_manifest`` returns absolute paths, ``write_manifest`` stores paths inside that folder relative to
  it (so a dataset folder can be moved) and others absolute. ``audio`` may be null (no target sound).
- ``events`` are dicts with ``start_s`` (seconds from the clip start), ``label`` and optionally ``end_s``.
- Any other key is kept in ``ClipRow.extra`` and written back unchanged, so builders may add their own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from v2a.errors import InputError
from v2a.io.atomic import atomic_output, check_output_path

SPLITS = ("train", "val", "test")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_REQUIRED = ("id", "video", "audio", "duration_s", "fps")
_EVENT_TOLERANCE_S = 1e-3  # events may sit this far past the clip end (timestamp rounding)


@dataclass(frozen=True)
class ClipRow:
    """One clip: a video, its target audio and what is known about them.

    Attributes:
        id: unique key of the clip (``A-Z a-z 0-9 _ -``, at most 200 characters).
        video: path of the video file.
        audio: path of the target audio file, or None when the clip has no target sound.
        duration_s: clip length in seconds (> 0).
        fps: frame rate of the video in frames per second (> 0; the average for variable rate).
        split: ``"train"``, ``"val"`` or ``"test"``.
        caption: free-text description of the sound ("" when unknown).
        transcript: words spoken in the clip ("" when none or unknown).
        labels: sound class labels.
        events: timed events, dicts with ``start_s``, ``label`` and optionally ``end_s`` (seconds from
            the clip start) plus any other keys.
        source: where the clip came from (source file, generator name, ...).
        start_s: where the clip starts in ``source``, in seconds.
        extra: every other key of the row, kept as read.
    """

    id: str
    video: str
    audio: str | None
    duration_s: float
    fps: float
    split: str = "train"
    caption: str = ""
    transcript: str = ""
    labels: tuple[str, ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    source: str = ""
    start_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = f"clip row {self.id!r}"
        if not isinstance(self.id, str) or not _ID_RE.fullmatch(self.id):
            raise InputError(f"clip row id {self.id!r} must be 1-200 characters of A-Z a-z 0-9 _ -")
        for key in ("video", "audio"):
            value = getattr(self, key)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, key, os.fspath(value))
            elif not (isinstance(value, str) and value) and not (key == "audio" and value is None):
                raise InputError(f"{name}: {key} must be a non-empty path, got {value!r}")
        _set_number(self, "duration_s", positive=True)
        _set_number(self, "fps", positive=True)
        _set_number(self, "start_s", positive=False)
        if self.split not in SPLITS:
            raise InputError(f"{name}: split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        for key in ("caption", "transcript", "source"):
            if not isinstance(getattr(self, key), str):
                raise InputError(f"{name}: {key} must be a string, got {getattr(self, key)!r}")
        labels = (self.labels,) if isinstance(self.labels, str) else self.labels
        if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
            raise InputError(f"{name}: labels must be a list of strings, got {self.labels!r}")
        object.__setattr__(self, "labels", tuple(labels))
        if not isinstance(self.events, list | tuple):
            raise InputError(f"{name}: events must be a list, got {self.events!r}")
        object.__setattr__(self, "events", tuple(_check_event(e, i, self) for i, e in enumerate(self.events)))
        if not isinstance(self.extra, Mapping):
            raise InputError(f"{name}: extra must be a mapping, got {type(self.extra).__name__}")
        clash = set(self.extra) & ({f.name for f in dataclasses.fields(self)} - {"extra"})
        if clash:
            raise InputError(f"{name}: extra repeats the field(s) {', '.join(sorted(clash))}")
        object.__setattr__(self, "extra", dict(self.extra))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipRow:
        """Build a row from a JSON object; unknown keys go to ``extra``.

        Raises:
            InputError: a required key is missing or a value is invalid.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"a clip row must be a JSON object, got {type(data).__name__}")
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise InputError(f"clip row {data.get('id', '?')!r} lacks the key(s) {', '.join(missing)}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {key: value for key, value in data.items() if key in names}
        return cls(**known, extra={key: value for key, value in data.items() if key not in names})

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict: the fields in order, then the extra keys."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        out["events"] = [dict(e) for e in self.events]
        out.update(self.extra)
        return out

    def replace(self, **changes: Any) -> ClipRow:
        """A copy with some fields changed (rows are never mutated)."""
        return dataclasses.replace(self, **changes)


def _set_number(row: ClipRow, key: str, *, positive: bool) -> None:
    value = getattr(row, key)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"clip row {row.id!r}: {key} must be a finite number {bound}, got {value!r}")
    object.__setattr__(row, key, float(value))


def _check_event(event: Any, index: int, row: ClipRow) -> dict[str, Any]:
    where = f"clip row {row.id!r}: event {index}"
    if not isinstance(event, Mapping):
        raise InputError(f"{where} must be an object with start_s and label, got {event!r}")
    start, end = event.get("start_s"), event.get("end_s")
    if not isinstance(start, int | float) or isinstance(start, bool) or not math.isfinite(start) or start < 0:
        raise InputError(f"{where}: start_s must be a number >= 0, got {start!r}")
    if start > row.duration_s + _EVENT_TOLERANCE_S:
        raise InputError(f"{where}: start_s {start} is past the clip end ({row.duration_s} s)")
    if end is not None and (not isinstance(end, int | float) or isinstance(end, bool) or not end >= start):
        raise InputError(f"{where}: end_s must be a number >= start_s, got {end!r}")
    if not isinstance(event.get("label"), str):
        raise InputError(f"{where}: label must be a string, got {event.get('label')!r}")
    return dict(event)


def iter_manifest(path: str | os.PathLike) -> Iterator[ClipRow]:
    """Stream the rows of a manifest with absolute ``video``/``audio`` paths (ids are not checked for
    uniqueness; ``read_manifest`` does that).

    Args:
        path: the JSON Lines file.

    Yields:
        One ``ClipRow`` per non-blank line.

    Raises:
        InputError: the file is missing or a line is not a valid row (the message gives the line number).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"manifest {file} does not exist" if not file.exists() else f"{file} is not a file")
    base = file.parent.absolute()
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = ClipRow.from_dict(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{file} line {number}: not valid JSON ({err.msg})") from None
            except InputError as err:
                raise InputError(f"{file} line {number}: {err}") from None
            yield row.replace(video=_absolute(row.video, base), audio=_absolute(row.audio, base))


def read_manifest(path: str | os.PathLike) -> list[ClipRow]:
    """Read a whole manifest (see ``iter_manifest``) and check that ids are unique.

    Args:
        path: the JSON Lines file.

    Returns:
        The rows in file order, with absolute paths.

    Raises:
        InputError: the file is missing, a line is invalid, or an id repeats.
    """
    rows = list(iter_manifest(path))
    _check_unique(rows, Path(path))
    return rows


def write_manifest(path: str | os.PathLike, rows: Iterable[ClipRow], *, overwrite: bool = True) -> Path:
    """Write rows atomically as JSON Lines.

    Relative ``video``/``audio`` paths in ``rows`` are taken as relative to the manifest's folder and
    stored as they are; absolute paths inside that folder are stored relative to it; others stay absolute.

    Args:
        path: the manifest file to write (its folder must exist).
        rows: the clips, written in this order.
        overwrite: replace an existing file.

    Returns:
        The written path.

    Raises:
        InputError: two rows share an id.
        OutputError: the file cannot be written safely.
    """
    out = check_output_path(path, overwrite=overwrite)
    rows = list(rows)
    _check_unique(rows, out)
    base = out.parent.absolute()
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            data = row.to_dict()
            data["video"], data["audio"] = _stored(row.video, base), _stored(row.audio, base)
            f.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    return out


def _check_unique(rows: list[ClipRow], where: Path) -> None:
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise InputError(f"{where}: clip id {row.id!r} appears more than once")
        seen.add(row.id)


def _absolute(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    return os.path.normpath(base / value)  # an absolute value replaces base


def _stored(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    if not os.path.isabs(value):
        return Path(os.path.normpath(value)).as_posix()
    rel = os.path.relpath(value, base)
    return value if rel == ".." or rel.startswith(".." + os.sep) else Path(rel).as_posix()
