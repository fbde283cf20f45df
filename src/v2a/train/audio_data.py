"""Training audio: list the files of a split (folder or corpus manifest) and draw random crops from them.

Shared by the waveform trainers (vocoder, codec). Clips are decoded once, at the AudioSpec's rate, and kept
in memory as float32 (one hour at 24 kHz is about 350 MB).
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from v2a.audio.spec import AudioSpec
from v2a.errors import InputError
from v2a.io.audio import load_audio

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus", ".m4a")


def whole_hops(seconds: float, spec: AudioSpec) -> int:
    """Samples in ``seconds`` rounded to whole hops (at least one), so waveform and mel lengths line up."""
    return max(1, round(seconds * spec.sample_rate / spec.hop_length)) * spec.hop_length


def load_split(
    sources: Sequence[str | Path], split: str, spec: AudioSpec, *, segment_samples: int
) -> AudioCrops:
    """The decoded clips of one split of several folders and/or manifests, ready for crops."""
    files = [f for source in sources for f in list_audio_files(source, split)]
    return AudioCrops(files, spec, segment_samples=segment_samples)


def load_train_val(
    sources: Sequence[str | Path],
    spec: AudioSpec,
    *,
    train_split: str,
    val_split: str,
    segment_samples: int,
    val_segment_samples: int,
    with_val: bool = True,
) -> tuple[AudioCrops, AudioCrops | None]:
    """The training clips and (when ``with_val``) the validation clips of a run, with a log line on sizes.

    Raises:
        InputError: the training split holds no usable audio.
    """
    train = load_split(sources, train_split, spec, segment_samples=segment_samples)
    if len(train) == 0:
        raise InputError(
            f"no usable training audio in {', '.join(map(str, sources))} (split {train_split!r})"
        )
    val = load_split(sources, val_split, spec, segment_samples=val_segment_samples) if with_val else None
    log.info(
        "training data: %d clips, %.1f min (%d unreadable skipped); validation: %d clips",
        len(train),
        train.seconds / 60,
        len(train.skipped),
        len(val) if val is not None else 0,
    )
    if train.skipped:
        log.warning("skipped unreadable training files, first: %s", train.skipped[0])
    return train, val


def list_audio_files(source: str | Path, split: str) -> list[Path]:
    """Audio files of one split from a folder or a ``manifest.jsonl``.

    A folder has no splits: when it has at least 20 files, those whose path hashes to 0 mod 20 (about
    5 %, at least one) are ``val`` and the rest ``train``; a smaller folder is all ``train``.

    Raises:
        InputError: the source is missing, or a manifest row is malformed.
    """
    src = Path(source)
    if src.is_dir():
        files = sorted(
            p
            for p in src.rglob("*")
            # hidden names are skipped: editors' and writers' temporary files (".x.part.flac")
            if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
        if len(files) < 20:
            return files if split == "train" else []
        hashes = {p: zlib.crc32(str(p.relative_to(src)).encode()) for p in files}
        held_out = {p for p in files if hashes[p] % 20 == 0} or {min(files, key=hashes.__getitem__)}
        return [p for p in files if (p in held_out) == (split == "val")]
    if src.is_file() and src.suffix == ".jsonl":
        files = []
        for lineno, line in enumerate(src.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rel = row["path"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(
                    f"{src}:{lineno}: a manifest row must be a JSON object with a 'path'"
                ) from None
            if row.get("split", "train") == split:
                files.append(src.parent / rel)
        return files
    raise InputError(f"training data {src} is neither a folder nor a manifest .jsonl file")


class AudioCrops:
    """Decoded clips held in memory at the spec's rate, and random fixed-length crops of them.

    Clips are stored as int16 scaled to their own peak (half the memory of float32, and quiet clips keep
    full 16-bit precision), decoded by a thread pool.

    Args:
        files: audio files (unreadable ones are skipped and their errors kept in ``skipped``).
        spec: the AudioSpec (sample rate).
        segment_samples: crop length S.
        workers: decoding threads (default: the CPU count).
    """

    def __init__(
        self, files: Sequence[Path], spec: AudioSpec, *, segment_samples: int, workers: int | None = None
    ):
        self.segment = segment_samples
        self.clips: list[np.ndarray] = []
        self.scales: list[float] = []
        self.skipped: list[str] = []
        min_len = spec.hop_length * 4
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            for result in pool.map(lambda path: _decode(path, spec.sample_rate), files):
                if isinstance(result, str):
                    self.skipped.append(result)
                    continue
                peak = float(np.abs(result).max())
                if len(result) >= min_len and peak > 1e-4:
                    self.clips.append(np.round(result * (32767 / peak)).astype(np.int16))
                    self.scales.append(peak / 32767)
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        # each clip is drawn in proportion to the crops it holds, so long files are not under-sampled
        weights = np.maximum(lengths, segment_samples)
        self.cumulative = np.cumsum(weights) / weights.sum() if len(weights) else weights
        self.seconds = float(lengths.sum()) / spec.sample_rate

    def __len__(self) -> int:
        return len(self.clips)

    def crop(self, rng: np.random.Generator, *, gain: bool = True) -> np.ndarray:
        """One (S,) float32 crop; short clips sit at a random offset in silence; near-silent draws are retried."""
        for _ in range(8):
            index = min(
                int(np.searchsorted(self.cumulative, rng.random(), side="right")), len(self.clips) - 1
            )
            clip, scale = self.clips[index], self.scales[index]
            out = np.zeros(self.segment, dtype=np.float32)
            if len(clip) >= self.segment:
                start = rng.integers(0, len(clip) - self.segment + 1)
                out[:] = clip[start : start + self.segment]
            else:
                start = rng.integers(0, self.segment - len(clip) + 1)
                out[start : start + len(clip)] = clip
            out *= scale
            peak = float(np.abs(out).max())
            if peak > 1e-3:
                break
        if gain and peak > 0:
            # random peak level in [-18, -1] dBFS: the vocoder must work at any loudness
            out *= 10 ** (rng.uniform(-18.0, -1.0) / 20) / peak
        return out

    def batch(self, size: int, rng: np.random.Generator, *, gain: bool = True) -> np.ndarray:
        """(size, S) crops."""
        return np.stack([self.crop(rng, gain=gain) for _ in range(size)])

    def fixed_batch(self, size: int, *, seed: int = 12345) -> np.ndarray:
        """(size, S) crops at their recorded levels, the same on every call and in every run (validation)."""
        return self.batch(size, np.random.default_rng(seed), gain=False)


def _decode(path: Path, rate: int) -> np.ndarray | str:
    """The mono waveform at ``rate``, or the one-line reason it cannot be read."""
    try:
        return load_audio(path, sr=rate)[0]
    except InputError as exc:
        return str(exc)
