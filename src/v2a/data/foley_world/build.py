"""Render Foley-world clips and build a dataset with a process pool: files, manifest and data card.

Layout of a build folder::

    DIR/clips/<id>.mp4    the video (H.264) with the stereo mix (AAC), for viewing and for video features
    DIR/clips/<id>.flac   the training target: 24 kHz mono 16-bit FLAC, sample-exact with the event list
    DIR/manifest.jsonl    one row per clip: {id, video, audio, caption, transcript, events, fps, duration_s,
                          split, labels, source, seed, index, width, height, shots, artefacts, corpus_files}
                          (a valid ``v2a.data.manifest`` row; events carry both ``t`` and ``start_s``)
    DIR/card.md           counts and seconds per label, origins, the build command, versions

The held-out test set is the fixed command
``v2a data foley-world --split test --seed 0 --count 50 --out data/fw/test`` (test seed space, test corpus
rows, test backdrop photos); training sets use ``--split train`` with any seed.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from v2a.data.foley_world.backgrounds import BackgroundLibrary
from v2a.data.foley_world.captions import caption, transcript
from v2a.data.foley_world.compose import sample_scene
from v2a.data.foley_world.config import FoleyConfig, clip_id, clip_rng
from v2a.data.foley_world.render import render_frames
from v2a.data.foley_world.scene import Assets, Scene
from v2a.data.foley_world.sounds import SoundBank
from v2a.data.foley_world.soundscape import mix_scene
from v2a.errors import InputError, OutputError
from v2a.io.atomic import atomic_output
from v2a.io.audio import save_audio
from v2a.io.writer import write_video

MAX_COUNT = 10_000_000


@dataclass
class ClipResult:
    """One rendered clip, in memory.

    Attributes:
        id: stable clip name.
        split: train or test.
        seed: build seed.
        index: clip index within the build.
        frames: (T, H, W, 3) uint8 RGB.
        audio: (S,) float32 mono mix (the training target).
        stereo: (2, S) float32 stereo mix (for the viewing copy).
        sample_rate: audio rate in Hz.
        fps: frame rate.
        duration_s: length in seconds.
        events: ``{t, label, source, ...}`` per sound, sorted by time.
        caption: text description of what is heard.
        transcript: what is said ("" when nobody speaks).
        scene: the scene graph (tracks, cues) the clip was made from.
    """

    id: str
    split: str
    seed: int
    index: int
    frames: np.ndarray
    audio: np.ndarray
    stereo: np.ndarray
    sample_rate: int
    fps: float
    duration_s: float
    events: list[dict]
    caption: str
    transcript: str
    scene: Scene


_ASSETS: dict[tuple, Assets] = {}


def _assets(config: FoleyConfig) -> Assets:
    """Sound bank and picture library of a config, loaded once per process."""
    key = (str(config.corpus_dir), str(config.backgrounds_dir), config.split, config.sample_rate)
    if key not in _ASSETS:
        bank = SoundBank(config.corpus_dir, config.split, config.sample_rate)
        pictures = BackgroundLibrary(config.backgrounds_dir) if config.backgrounds_dir is not None else None
        _ASSETS[key] = Assets(bank, pictures, config.split)
    return _ASSETS[key]


def render_clip(seed: int, index: int, config: FoleyConfig | None = None) -> ClipResult:
    """Render clip ``index`` of a build with ``seed``: a pure function of (config, seed, index).

    Args:
        seed: build seed (>= 0).
        index: clip index (>= 0).
        config: settings (default: ``FoleyConfig()``).

    Returns:
        The clip's frames, audio, events, caption and scene graph.

    Raises:
        InputError: a setting is invalid or the corpus/backgrounds folder is unreadable.
    """
    config = (config or FoleyConfig()).check()
    _check_int("seed", seed, 0, 2**63 - 1)
    _check_int("index", index, 0, 2**63 - 1)
    rng = clip_rng(seed, index, config.split)
    scene = sample_scene(rng, config, _assets(config))
    frames = render_frames(scene, noise_seed=int(rng.integers(1 << 31)))
    mono, stereo = mix_scene(scene, config.sample_rate, rng)
    return ClipResult(
        id=clip_id(seed, index, config.split), split=config.split, seed=seed, index=index, frames=frames,
        audio=mono, stereo=stereo, sample_rate=config.sample_rate, fps=scene.fps, duration_s=scene.duration_s,
        events=scene_events(scene, config.sample_rate), caption=caption(scene), transcript=transcript(scene),
        scene=scene,
    )  # fmt: skip


def scene_events(scene: Scene, sample_rate: int) -> list[dict]:
    """The ground-truth event list: one entry per sound cue, sorted by time.

    ``t`` is the onset in seconds (also stored as ``start_s`` for ``v2a.data.manifest``); ``onset`` tells
    whether it is a sharp event a sync metric should find there (impacts, steps, doors, breaking, speech
    starts) or the start of a continuous sound (engines, ambience), which also has an ``end`` (``end_s``).
    ``origin`` is corpus, procedural or tts; ``augmented`` lists the changes made to the sound.
    """
    events = []
    for shot in scene.shots:
        for entity in shot.entities:
            for cue in entity.cues:
                end = (
                    cue.end
                    if cue.end is not None
                    else min(shot.t1, cue.t + cue.sound.wave.size / sample_rate)
                )
                t, end = round(float(cue.t), 5), round(float(end), 5)
                events.append({
                    "t": t, "start_s": t, "end": end, "end_s": end, "label": cue.label, "source": entity.noun,
                    "entity": entity.id, "onset": bool(cue.onset), "on_screen": bool(cue.on_screen),
                    "origin": cue.sound.origin, "file": cue.sound.file, "augmented": list(cue.sound.augmented),
                    "voice": cue.sound.voice,
                    "gain": round(float(cue.gain), 3), "shot": shot.index,
                })  # fmt: skip
    return sorted(events, key=lambda e: (e["t"], e["label"]))


def write_clip(result: ClipResult, out_dir: str | Path) -> dict:
    """Encode a rendered clip into ``out_dir/clips/`` and return its manifest row."""
    clips = Path(out_dir) / "clips"
    video, audio = clips / f"{result.id}.mp4", clips / f"{result.id}.flac"
    scene = result.scene
    write_video(video, result.frames, fps=result.fps, audio=result.stereo, sample_rate=result.sample_rate,
                crf=scene.artefacts["crf"])  # fmt: skip
    save_audio(audio, result.audio, result.sample_rate, subtype="PCM_16")
    shots = [
        {"t0": round(s.t0, 4), "t1": round(s.t1, 4), "setting": s.setting, "floor": s.floor, "background": s.background,
         "camera": s.camera_move, "room": s.room, "entities": [e.kind for e in s.entities]}
        for s in scene.shots
    ]  # fmt: skip
    return {
        "id": result.id, "video": f"clips/{video.name}", "audio": f"clips/{audio.name}", "caption": result.caption,
        "transcript": result.transcript, "events": result.events, "fps": result.fps, "duration_s": result.duration_s,
        "split": result.split, "labels": sorted({e["label"] for e in result.events}), "source": "foley-world",
        "seed": result.seed, "index": result.index, "width": scene.width,
        "height": scene.height, "sample_rate": result.sample_rate, "shots": shots, "artefacts": scene.artefacts,
        "corpus_files": sorted({e["file"] for e in result.events if e["file"]}),
    }  # fmt: skip


def _work(job: tuple[int, int, FoleyConfig, str]) -> dict:
    seed, index, config, out_dir = job
    return write_clip(render_clip(seed, index, config), out_dir)


def build_foley_world(
    out_dir: str | Path,
    *,
    count: int,
    seed: int,
    split: str = "train",
    corpus_dir: str | Path | None = None,
    backgrounds_dir: str | Path | None = None,
    size: int = 160,
    duration_s: float = 8.0,
    fps: float | None = None,
    first_index: int = 0,
    workers: int | None = None,
    progress: bool = True,
    config: FoleyConfig | None = None,
) -> Path:
    """Render ``count`` clips in parallel and write the manifest and data card.

    Args:
        out_dir: output folder (created; existing clips of the same ids are replaced).
        count: number of clips.
        seed: build seed; clip i uses the generator of (split, seed, first_index + i).
        split: train or test (disjoint seed spaces, corpus rows and backdrop photos).
        corpus_dir: SFX corpus folder with manifest.jsonl (None: procedural sounds only).
        backgrounds_dir: folder from ``build_backgrounds`` (None: drawn backdrops).
        size: frame width in pixels (height from a random aspect ratio).
        duration_s: clip length in seconds.
        fps: frame rate (None: random per clip, 12-60).
        first_index: index of the first clip (to extend a build or split it across machines).
        workers: processes (None: all cores).
        progress: show a progress bar.
        config: full settings; when given, the keyword settings above must be left at their defaults.

    Returns:
        Path of ``manifest.jsonl``.

    Raises:
        InputError: an argument is invalid.
        OutputError: the output folder cannot be written.
    """
    _check_int("count", count, 1, MAX_COUNT)
    _check_int("seed", seed, 0, 2**63 - 1)
    _check_int("first_index", first_index, 0, 2**63 - 1)
    if workers is not None:
        _check_int("workers", workers, 1, 512)
    base = config or FoleyConfig()
    config = replace(
        base, size=size if config is None else base.size, duration_s=duration_s if config is None else base.duration_s,
        fps=fps if config is None else base.fps, split=split if config is None else base.split,
        corpus_dir=Path(corpus_dir) if corpus_dir is not None else base.corpus_dir,
        backgrounds_dir=Path(backgrounds_dir) if backgrounds_dir is not None else base.backgrounds_dir,
    ).check()  # fmt: skip
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a folder")
    try:
        (out / "clips").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {out}: {err.strerror}") from None
    _assets(config)  # fail on a bad corpus or backgrounds folder before starting workers
    jobs = [(seed, i, config, str(out)) for i in range(first_index, first_index + count)]
    workers = min(workers or os.cpu_count() or 1, count)
    started = time.perf_counter()
    rows = _run(jobs, workers, progress)
    elapsed = time.perf_counter() - started
    manifest = out / "manifest.jsonl"
    with atomic_output(manifest) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in sorted(rows, key=lambda r: r["index"])))
    with atomic_output(out / "card.md") as tmp:
        tmp.write_text(
            data_card(rows, config, seed=seed, first_index=first_index, workers=workers, elapsed_s=elapsed)
        )
    return manifest


def _run(jobs: list, workers: int, progress: bool) -> list[dict]:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="clip", desc="foley-world")
    rows = []
    try:
        if workers == 1:
            for job in jobs:
                rows.append(_work(job))
                if bar:
                    bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
                for row in pool.map(_work, jobs, chunksize=1):
                    rows.append(row)
                    if bar:
                        bar.update()
    finally:
        if bar:
            bar.close()
    return rows


def data_card(
    rows: list[dict], config: FoleyConfig, *, seed: int, first_index: int, workers: int, elapsed_s: float
) -> str:
    """Markdown summary of a build: counts and seconds per label, origins, command and versions."""
    count = collections.Counter()
    seconds = collections.Counter()
    origins = collections.Counter()
    for row in rows:
        for e in row["events"]:
            count[e["label"]] += 1
            seconds[e["label"]] += e["end"] - e["t"]
            origins[e["origin"] + ("+augmented" if e["augmented"] else "")] += 1
    total_s = sum(r["duration_s"] for r in rows)
    command = (
        f"v2a data foley-world --split {config.split} --seed {seed} --count {len(rows)} --size {config.size} "
        f"--duration {config.duration_s:g}" + (f" --fps {config.fps:g}" if config.fps else "")
        + (f" --first-index {first_index}" if first_index else "")
        + (f" --corpus {config.corpus_dir}" if config.corpus_dir else "")
        + (f" --backgrounds {config.backgrounds_dir}" if config.backgrounds_dir else "")
    )  # fmt: skip
    lines = [
        f"# Foley world: {config.split} split, seed {seed}",
        "",
        f"- clips: {len(rows)} ({total_s / 3600:.2f} h), frame width {config.size} px, {config.duration_s:g} s each,"
        f" fps {'random 12-60' if config.fps is None else f'{config.fps:g}'}",
        f"- build: `{command}`",
        f"- clip seeds: `np.random.default_rng([SPLIT_KEYS['{config.split}'], {seed}, index])`,"
        f" indices {first_index}..{first_index + len(rows) - 1}",
        f"- corpus: {config.corpus_dir or 'none (procedural sounds only)'}; backgrounds: "
        f"{config.backgrounds_dir or 'none (drawn)'}",
        f"- built in {elapsed_s:.1f} s with {workers} worker(s) on {platform.node() or 'this machine'}"
        f" ({len(rows) / max(elapsed_s, 1e-9) * 60:.1f} clips/min)",
        f"- versions: {_versions()}",
        "",
        "## Sound origins (events)",
        "",
        *[f"- {name}: {n}" for name, n in sorted(origins.items())],
        "",
        "## Labels",
        "",
        "| label | events | seconds |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {count[label]} | {seconds[label]:.1f} |" for label in sorted(count)],
        "",
    ]
    return "\n".join(lines)


def _versions() -> str:
    from importlib import metadata

    parts = [f"python {sys.version.split()[0]}"]
    for name in ("foley-v2a", "numpy", "scipy", "av", "pillow"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    espeak = shutil.which("espeak-ng")
    if espeak:
        try:
            done = subprocess.run([espeak, "--version"], capture_output=True, text=True, timeout=10)
            found = re.search(r"text-to-speech:\s*(\S+)", done.stdout)
            parts.append(f"espeak-ng {found.group(1) if found else '?'}")
        except (OSError, subprocess.SubprocessError):
            pass
    return ", ".join(parts)


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise InputError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
