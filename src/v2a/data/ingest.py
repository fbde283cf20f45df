"""Ingest real footage: cut a user's videos into clips whose own sound is the target, plus a manifest.

``v2a data ingest SRC --out DIR``. SRC is a folder of videos (searched recursively; hidden files skipped) or
a CSV in VGGSound style: ``file_or_id, start_s, label[, caption]``, no header or a header row, ``#`` lines
ignored. A fourth column that is exactly ``train`` or ``test`` (as in VGGSound's own CSV) sets the clip's
split instead of giving a caption. ``file_or_id`` is a path (relative to the CSV's folder, or absolute), or
an id looked up in the media folder (default: the CSV's folder, searched recursively) as ``ID.<ext>`` (a full
video, cut at ``start_s``) or ``ID_<S>.<ext>`` / ``ID_<S>_<E>.<ext>`` (a file already cut at ``start_s``,
used from its beginning), where S is ``start_s`` in seconds (``30``, ``000030``, ``30.0``) or milliseconds.

DIR receives:

- ``clips/<xx>/<id>.mp4``: the picture, re-encoded to H.264 (yuv420p) with the short side at most ``size``
  pixels and the source frame rate capped at ``max_fps`` (a variable rate becomes its rounded average),
  without an audio track. Re-encoding rather than stream copy because a cut at any time falls between
  keyframes, and small uniform clips decode fast.
- ``clips/<xx>/<id>.flac``: the source's sound over the same span, mono, ``sample_rate`` Hz, 16 bit.
  Sample 0 is at the time of video frame 0 (both on the timeline of ``v2a.io.video``).
- ``manifest.jsonl``: one ``ClipRow`` per clip (``v2a.data.manifest``), sorted by id.
- ``ingest_report.json``: what was kept, what was dropped and why.

A folder video is cut into consecutive clips of ``clip_s`` seconds, rounded to whole frames at the stored rate
so that picture and sound start and end together; a last part shorter than ``min_clip_s`` is dropped. A CSV
row gives one clip of ``clip_s`` from its start. Sources without an audio stream and clips whose sound is
below ``silence_db`` RMS are dropped. All clips of one source land in one split, chosen by a hash of the
source's name (its path under SRC, or the CSV's ``file_or_id``), so adding sources never moves old clips.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import ClipRow, write_manifest
from v2a.errors import InputError, OutputError
from v2a.io.atomic import atomic_output
from v2a.io.audio import load_audio, rms_db, save_audio
from v2a.io.video import VideoInfo, iter_frames, probe
from v2a.io.writer import write_video

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv"}
    | {".3gp", ".ogv", ".mxf", ".dv"}
)
MANIFEST_NAME = "manifest.jsonl"
REPORT_NAME = "ingest_report.json"
CLIPS_DIR = "clips"
_MAX_CLIP_S = 60.0  # a clip's frames are held in memory before encoding
_MAX_ERRORS = 200  # messages kept in the report
_AUDIO_BLOCK_S = 64.0  # sound is decoded in blocks this long and cut into clips
_AUDIO_MARGIN_S = 0.1  # decoded around a block so the resampler's edges fall outside every clip
_CUT_SUFFIX = re.compile(r"(\d+(?:\.\d+)?)(?:_\d+(?:\.\d+)?)?")


@dataclass(frozen=True)
class IngestConfig:
    """How sources become clips (each field is a ``v2a data ingest`` flag).

    Attributes:
        clip_s: clip length in seconds (``--clip-s``).
        min_clip_s: shortest clip kept, for the last part of a video or a short file (``--min-clip-s``).
        size: largest short side of the stored video in pixels; smaller videos keep their size (``--size``).
        max_fps: highest stored frame rate; slower sources keep their rate (``--max-fps``).
        crf: x264 constant rate factor of the stored video (``--crf``).
        silence_db: clips whose sound has a lower RMS level (dBFS) are dropped (``--silence-db``).
        test_fraction: share of sources put in the test split (``--test-fraction``).
        label_from_folder: label a folder's videos with the name of the folder holding each one
            (``--label-from-folder``).
        media_dir: where CSV ids are looked up (``--media-dir``; None: the CSV's folder).
        sample_rate: rate of the stored target audio in Hz (the AudioSpec's).
    """

    clip_s: float = 8.0
    min_clip_s: float = 2.0
    size: int = 256
    max_fps: float = 30.0
    crf: int = 23
    silence_db: float = -60.0
    test_fraction: float = 0.05
    label_from_folder: bool = False
    media_dir: str | None = None
    sample_rate: int = DEFAULT_SPEC.sample_rate

    def __post_init__(self) -> None:
        checks = [
            ("clip_s", 0 < self.clip_s <= _MAX_CLIP_S, f"in (0, {_MAX_CLIP_S:g}] seconds"),
            ("min_clip_s", 0 < self.min_clip_s <= self.clip_s, "in (0, clip_s] seconds"),
            ("size", isinstance(self.size, int) and 16 <= self.size <= 4096, "an integer in 16..4096"),
            ("max_fps", 0 < self.max_fps <= 240, "in (0, 240]"),
            ("crf", isinstance(self.crf, int) and 0 <= self.crf <= 51, "an integer in 0..51"),
            ("silence_db", -200 <= self.silence_db <= 0, "in [-200, 0] dBFS"),
            ("test_fraction", 0 <= self.test_fraction <= 1, "in [0, 1]"),
            (
                "sample_rate",
                isinstance(self.sample_rate, int) and 8000 <= self.sample_rate <= 192_000,
                "in Hz",
            ),
        ]
        for name, ok, wanted in checks:
            if not ok:
                raise InputError(f"ingest: {name} must be {wanted}, got {getattr(self, name)!r}")


@dataclass
class IngestReport:
    """What an ingest kept and dropped (saved as ``ingest_report.json``).

    Attributes:
        source: the SRC folder or CSV.
        out: the output folder.
        sources: videos (folder) or CSV rows considered.
        clips: clips written.
        clip_seconds: their total duration.
        splits: clips per split.
        dropped_sources: sources that gave no clip, by reason (missing_media, duplicate_row, unreadable,
            damaged, no_audio, start_past_end).
        dropped_clips: clips cut but not kept, by reason (silent, too_short, bad_audio).
        errors: the first messages explaining drops, ``"<file>: <problem>"``.
        elapsed_s: wall time of the ingest.
    """

    source: str
    out: str
    sources: int = 0
    clips: int = 0
    clip_seconds: float = 0.0
    splits: Counter = field(default_factory=Counter)
    dropped_sources: Counter = field(default_factory=Counter)
    dropped_clips: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of all fields."""
        data = dataclasses.asdict(self)
        for key in ("splits", "dropped_sources", "dropped_clips"):
            data[key] = dict(sorted(getattr(self, key).items()))
        data["clip_seconds"] = round(self.clip_seconds, 3)
        data["elapsed_s"] = round(self.elapsed_s, 2)
        return data

    def summary(self) -> str:
        """A few lines for the terminal."""

        def counts(counter: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

        splits = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        return (
            f"ingest {self.source}: {self.sources} sources -> {self.clips} clips "
            f"({self.clip_seconds / 3600:.2f} h; {splits or 'no splits'}) in {self.elapsed_s:.1f} s\n"
            f"dropped sources: {counts(self.dropped_sources)}\n"
            f"dropped clips: {counts(self.dropped_clips)}"
        )

    def _note(self, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)


@dataclass(frozen=True)
class _Window:
    """A stretch of a source to cut: from ``start_s`` to the end (folder) or one clip (CSV row)."""

    start_s: float
    single: bool
    labels: tuple[str, ...]
    caption: str
    split: str
    row: int | None = None


@dataclass(frozen=True)
class _Job:
    """One source file and the windows to cut from it (the unit of work of a pool process)."""

    path: str
    key: str  # stable name of the file, seeds the clip ids
    windows: tuple[_Window, ...]


def ingest(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: IngestConfig | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Cut a folder of videos or a VGGSound-style CSV into clips with a manifest (see the module doc).

    Args:
        src: a folder of videos, or a ``.csv`` file.
        out_dir: output folder (created if needed).
        config: clip length, size, thresholds, splits (None: the defaults).
        workers: processes cutting files in parallel (None: one per CPU core; 1: in this process).
        overwrite: replace the manifest of an earlier ingest into ``out_dir``.
        progress: show a progress bar on stderr.

    Returns:
        The report, also written to ``out_dir/ingest_report.json``.

    Raises:
        InputError: SRC is missing or neither a folder nor a CSV, the CSV has a bad row (the message gives
            its line), no video is found, or no clip survives.
        OutputError: ``out_dir`` is a file or already holds a manifest and ``overwrite`` is False.
    """
    started = time.perf_counter()
    config = config or IngestConfig()
    src_path, out = Path(src), Path(out_dir)
    report = IngestReport(source=str(src_path), out=str(out))
    jobs = _plan_jobs(src_path, config, report, exclude=out)
    _prepare_out(out, src_path, overwrite)
    rows: list[ClipRow] = []
    for job_rows, dropped_sources, dropped_clips, errors in _run(
        jobs, out / CLIPS_DIR, config, workers, progress
    ):
        rows.extend(job_rows)
        report.dropped_sources.update(dropped_sources)
        report.dropped_clips.update(dropped_clips)
        for message in errors:
            report._note(message)
    rows.sort(key=lambda row: row.id)
    report.clips = len(rows)
    report.clip_seconds = sum(row.duration_s for row in rows)
    report.splits = Counter(row.split for row in rows)
    report.elapsed_s = time.perf_counter() - started
    with atomic_output(out / REPORT_NAME) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if not rows:
        reasons = dict(report.dropped_sources + report.dropped_clips)
        raise InputError(f"no clip kept from {src_path} (dropped: {reasons}); see {out / REPORT_NAME}")
    write_manifest(out / MANIFEST_NAME, rows)
    return report


def assign_split(key: str, test_fraction: float) -> str:
    """``"test"`` for a fixed pseudo-random ``test_fraction`` of keys, else ``"train"`` (on any machine)."""
    position = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    return "test" if position < test_fraction else "train"


def _plan_jobs(
    src: Path, config: IngestConfig, report: IngestReport, *, exclude: Path | None = None
) -> list[_Job]:
    """The files to cut and their windows; rows that point nowhere are counted in ``report``.

    Raises:
        InputError: SRC is missing, not a folder or CSV, a CSV row is bad, or no video is found.
    """
    if not src.exists():
        raise InputError(f"ingest source {src} does not exist")
    if src.is_dir():
        return _folder_jobs(src, config, report, exclude)
    if src.suffix.lower() != ".csv":
        raise InputError(f"ingest source {src} must be a folder of videos or a .csv file")
    return _csv_jobs(src, config, report)


def _folder_jobs(
    folder: Path, config: IngestConfig, report: IngestReport, exclude: Path | None
) -> list[_Job]:
    skip = exclude.absolute() if exclude is not None else None
    jobs = []
    for file in _videos_under(folder, skip):
        rel = file.relative_to(folder).as_posix()
        labels = (file.parent.name,) if config.label_from_folder and file.parent != folder else ()
        window = _Window(0.0, False, labels, "", assign_split(rel, config.test_fraction))
        jobs.append(_Job(str(file), rel, (window,)))
    if not jobs:
        raise InputError(
            f"no video files found in {folder} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    report.sources = len(jobs)
    return jobs


def _videos_under(folder: Path, skip: Path | None) -> list[Path]:
    found = []
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        hidden = any(part.startswith(".") for part in rel.parts)
        inside_skip = skip is not None and file.absolute().is_relative_to(skip)
        if file.suffix.lower() in VIDEO_EXTENSIONS and not hidden and not inside_skip and file.is_file():
            found.append(file)
    return found


@dataclass(frozen=True)
class _CsvRow:
    line: int
    name: str
    start_s: float
    label: str
    caption: str
    split: str | None


def _csv_jobs(csv_path: Path, config: IngestConfig, report: IngestReport) -> list[_Job]:
    rows = _read_clip_csv(csv_path)
    media = Path(config.media_dir) if config.media_dir else csv_path.parent
    if not media.is_dir():
        raise InputError(f"media folder {media} does not exist")
    index: _MediaIndex | None = None
    windows: dict[Path, list[_Window]] = {}
    seen: set[tuple[Path, float]] = set()
    for row in rows:
        found = _direct_path(row.name, csv_path.parent, media, row.start_s)
        if found is None:
            index = index or _MediaIndex(media)
            found = index.find(row.name, row.start_s)
        if found is None:
            report.dropped_sources["missing_media"] += 1
            report._note(
                f"{csv_path} row {row.line}: no video for {row.name!r} at {row.start_s:g} s in {media}"
            )
            continue
        path, start = found
        if (path, start) in seen:
            report.dropped_sources["duplicate_row"] += 1
            continue
        seen.add((path, start))
        split = row.split or assign_split(row.name, config.test_fraction)
        labels = (row.label,) if row.label else ()
        windows.setdefault(path, []).append(_Window(start, True, labels, row.caption, split, row.line))
    report.sources = len(rows)
    if not windows:
        raise InputError(
            f"none of the {len(rows)} rows of {csv_path} points to an existing video (media: {media})"
        )
    return [
        _Job(str(path), _stable_name(path, csv_path.parent, media), tuple(w)) for path, w in windows.items()
    ]


def _read_clip_csv(path: Path) -> list[_CsvRow]:
    """Parse a VGGSound-style CSV (see the module doc).

    Raises:
        InputError: the file is missing or not text, has no rows, or a row has the wrong number of columns,
            an empty ``file_or_id`` or a ``start_s`` that is not a number of seconds >= 0.
    """
    if not path.is_file():
        raise InputError(f"CSV {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file") from None
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    rows: list[_CsvRow] = []
    first = True
    try:
        for raw in reader:
            fields = [f.strip() for f in raw]
            if not any(fields) or fields[0].startswith("#"):
                continue
            if first and len(fields) > 1 and _seconds(fields[1]) is None and _looks_like_header(fields):
                first = False
                continue
            first = False
            rows.append(_csv_row(path, reader.line_num, fields))
    except csv.Error as err:
        raise InputError(f"{path} row {reader.line_num}: unreadable CSV ({err})") from None
    if not rows:
        raise InputError(f"{path} has no rows (expected file_or_id, start_s, label[, caption])")
    return rows


def _csv_row(path: Path, line: int, fields: list[str]) -> _CsvRow:
    where = f"{path} row {line}"
    if len(fields) not in (3, 4):
        raise InputError(
            f"{where}: expected 3 or 4 columns (file_or_id, start_s, label[, caption]), got {len(fields)}"
        )
    if not fields[0]:
        raise InputError(f"{where}: the file_or_id column is empty")
    start = _seconds(fields[1])
    if start is None:
        raise InputError(f"{where}: start_s {fields[1]!r} is not a number of seconds >= 0")
    extra = fields[3] if len(fields) == 4 else ""
    split = extra if extra in ("train", "test") else None
    return _CsvRow(line, fields[0], start, fields[2], "" if split else extra, split)


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _looks_like_header(fields: list[str]) -> bool:
    names = {
        "file",
        "file_or_id",
        "id",
        "ytid",
        "youtube_id",
        "video",
        "video_id",
        "path",
        "filename",
        "name",
    }
    return fields[0].lower() in names or "start" in fields[1].lower()


def _direct_path(name: str, csv_dir: Path, media: Path, start: float) -> tuple[Path, float] | None:
    for base in (csv_dir, media):
        candidate = base / name  # an absolute name replaces base
        if candidate.is_file():
            return candidate, start
    return None


class _MediaIndex:
    """Video files of the media folder by stem, and by (id, start) for files already cut."""

    def __init__(self, folder: Path):
        self.by_stem: dict[str, Path] = {}
        self.by_cut: dict[tuple[str, float], Path] = {}
        for file in _videos_under(folder, None):
            stem = file.name[: -len(file.suffix)]
            self.by_stem.setdefault(stem, file)
            for i, char in enumerate(stem):  # every split "<id>_<S>[_<E>]" of the name
                match = _CUT_SUFFIX.fullmatch(stem, i + 1) if char == "_" and i > 0 else None
                if match:
                    self.by_cut.setdefault((stem[:i], round(float(match[1]), 3)), file)

    def find(self, ident: str, start: float) -> tuple[Path, float] | None:
        if ident in self.by_stem:
            return self.by_stem[ident], start
        for number in (start, start * 1000.0):
            file = self.by_cut.get((ident, round(number, 3)))
            if file is not None:
                return file, 0.0
        return None


def _stable_name(path: Path, *bases: Path) -> str:
    for base in bases:
        if path.absolute().is_relative_to(base.absolute()):
            return path.absolute().relative_to(base.absolute()).as_posix()
    return path.absolute().as_posix()


def _prepare_out(out: Path, src: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a folder")
    if src.is_dir() and out.exists() and out.resolve() == src.resolve():
        raise OutputError(f"output folder {out} is the source folder; choose another")
    if (out / MANIFEST_NAME).exists() and not overwrite:
        raise OutputError(f"{out} already holds {MANIFEST_NAME}; pass --overwrite to replace it")
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)


_JobResult = tuple[list[ClipRow], Counter, Counter, list[str]]


def _run(
    jobs: list[_Job], clips_dir: Path, config: IngestConfig, workers: int | None, progress: bool
) -> Iterator[_JobResult]:
    """Results of every job, in this process or over a pool of processes."""
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    with tqdm(total=len(jobs), unit="file", desc="ingest", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                yield _process(job, clips_dir, config)
                bar.update()
            return
        # spawn, not fork: a forked child could inherit locks held by the parent's FFmpeg or torch threads
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_process, job, clips_dir, config) for job in jobs]
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
            except BaseException:  # a failure or Ctrl-C: drop the queued files instead of finishing them
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _process(job: _Job, clips_dir: Path, config: IngestConfig) -> _JobResult:
    """Cut every window of one file (runs in a pool process)."""
    cutter = _Cutter(job, clips_dir, config)
    try:
        info = probe(job.path)
    except InputError as err:
        cutter.drop_source("unreadable", str(err), len(job.windows))
        return cutter.result()
    if not info.has_audio:
        cutter.drop_source("no_audio", f"{job.path}: no audio stream", len(job.windows))
        return cutter.result()
    cutter.start(info)
    for window in job.windows:
        try:
            cutter.cut(window)
        except InputError as err:
            cutter.drop_source("damaged", str(err))
    return cutter.result()


class _Cutter:
    """Cuts one probed file into clips: frames in one decoding pass per window, sound by blocks."""

    def __init__(self, job: _Job, clips_dir: Path, config: IngestConfig):
        self.job, self.clips_dir, self.config = job, clips_dir, config
        self.rows: list[ClipRow] = []
        self.dropped_sources: Counter = Counter()
        self.dropped_clips: Counter = Counter()
        self.errors: list[str] = []

    def result(self) -> _JobResult:
        return self.rows, self.dropped_sources, self.dropped_clips, self.errors[:_MAX_ERRORS]

    def drop_source(self, reason: str, message: str, count: int = 1) -> None:
        self.dropped_sources[reason] += count
        self.errors.append(message)

    def start(self, info: VideoInfo) -> None:
        self.info = info
        # a variable-rate source is stored at its average rate rounded to whole frames per second
        self.fps = min(max(1.0, float(round(info.fps))) if info.is_vfr else info.fps, self.config.max_fps)
        self.size = clip_size(info.width, info.height, self.config.size)
        self.audio = _AudioBlocks(self.job.path, info.audio_start_s or 0.0, self.config.sample_rate)

    def cut(self, window: _Window) -> None:
        """Cut a window into clips of a whole number of frames, each starting on the output frame grid."""
        frames_per_clip = max(1, round(self.config.clip_s * self.fps))
        min_frames = max(1, math.ceil(self.config.min_clip_s * self.fps - 1e-6))
        if window.start_s >= self.info.duration_s:
            where = f"row {window.row}" if window.row is not None else ""
            self.drop_source(
                "start_past_end", f"{self.job.path} {where}: start {window.start_s:g} s is past the end"
            )
            return
        duration = frames_per_clip / self.fps if window.single else None
        frames: list[np.ndarray] = []
        index = 0
        for chunk in iter_frames(
            self.job.path,
            self.fps,
            size=self.size,
            resize="crop",
            start_s=window.start_s,
            duration_s=duration,
        ):
            for frame in chunk.frames:
                frames.append(frame)
                if len(frames) == frames_per_clip:
                    self._emit(window, window.start_s + index * frames_per_clip / self.fps, frames)
                    frames, index = [], index + 1
        if len(frames) >= min_frames:
            self._emit(window, window.start_s + index * frames_per_clip / self.fps, frames)
        elif frames:
            self.dropped_clips["too_short"] += 1

    def _emit(self, window: _Window, start_s: float, frames: list[np.ndarray]) -> None:
        duration = len(frames) / self.fps
        try:
            wav = self.audio.read(start_s, duration)
        except InputError as err:
            self.dropped_clips["bad_audio"] += 1
            self.errors.append(str(err))
            return
        if rms_db(wav) < self.config.silence_db:
            self.dropped_clips["silent"] += 1
            return
        clip_id, folder = clip_name(self.job.key, start_s)
        folder = self.clips_dir / folder
        folder.mkdir(parents=True, exist_ok=True)
        video = write_video(folder / f"{clip_id}.mp4", frames, fps=self.fps, crf=self.config.crf)
        audio = save_audio(folder / f"{clip_id}.flac", np.clip(wav, -1.0, 1.0), self.config.sample_rate)
        extra = {"csv_row": window.row} if window.row is not None else {}
        self.rows.append(
            ClipRow(
                id=clip_id,
                video=str(video.absolute()),
                audio=str(audio.absolute()),
                duration_s=duration,
                fps=self.fps,
                split=window.split,
                caption=window.caption,
                labels=window.labels,
                source=str(Path(self.job.path).absolute()),
                start_s=start_s,
                extra=extra,
            )
        )


class _AudioBlocks:
    """A file's sound on the video timeline at one rate, decoded in long blocks and cut into clips.

    Time t on the video timeline is time ``t - audio_start_s`` in the audio stream; sound before the audio
    starts or after it ends is silence.
    """

    def __init__(self, path: str, audio_start_s: float, sample_rate: int):
        self.path, self.offset, self.rate = path, audio_start_s, sample_rate
        self.block = np.zeros(0, dtype=np.float32)
        self.block_start = 0.0  # video time of block[0]
        self.complete = False  # the block reaches the end of the sound
        self.loaded = False

    def read(self, start_s: float, duration_s: float) -> np.ndarray:
        """(S,) float32 sound of ``[start_s, start_s + duration_s)``, S = round(duration_s * rate)."""
        count = round(duration_s * self.rate)
        margin = round(_AUDIO_MARGIN_S * self.rate)
        first = round((start_s - self.block_start) * self.rate)
        usable = self.block.size if self.complete else self.block.size - margin
        if not self.loaded or first < 0 or first + count > usable:
            self._load(start_s - _AUDIO_MARGIN_S, max(_AUDIO_BLOCK_S, duration_s + 2 * _AUDIO_MARGIN_S))
            first = round((start_s - self.block_start) * self.rate)
        out = np.zeros(count, dtype=np.float32)
        piece = self.block[max(0, first) : max(0, first + count)]
        out[: piece.size] = piece
        return out

    def _load(self, start_s: float, length_s: float) -> None:
        rel = start_s - self.offset  # start in the audio stream
        lead = max(0, round(-rel * self.rate))  # silence before the sound begins
        want = round(length_s * self.rate) - lead
        wav = np.zeros(0, dtype=np.float32)
        if want > 0:
            try:
                wav, _ = load_audio(
                    self.path, sr=self.rate, mono=True, start_s=max(0.0, rel), duration_s=want / self.rate
                )
            except InputError:
                if rel <= 0:
                    raise  # the sound is unreadable from its start
                # otherwise the block starts after the sound ends: silence
        self.block = np.concatenate([np.zeros(lead, dtype=np.float32), wav[:want]])
        self.block_start = start_s
        self.complete = wav.size < want - 1
        self.loaded = True


def clip_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """(height, width) of a stored clip: the aspect kept, short side at most ``max_short_side``, both even
    (rounded down: H.264 in yuv420p needs even sizes, and a centre crop takes the odd pixel)."""
    scale = min(1.0, max_short_side / min(width, height))
    return max(2, int(height * scale + 1e-6) // 2 * 2), max(2, int(width * scale + 1e-6) // 2 * 2)


def clip_name(key: str, start_s: float) -> tuple[str, str]:
    """(clip id, two-character subfolder) for the clip of source ``key`` starting at ``start_s``."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    stem = Path(key).name.rsplit(".", 1)[0]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "clip"
    return f"{slug}-{digest[:10]}-{round(start_s * 1000):09d}", digest[:2]
