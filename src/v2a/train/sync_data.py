"""Sync-encoder training data: motion + audio frames of manifest clips, cached once, drawn as shifted pairs.

Each clip of a manifest (Foley world, ``v2a data ingest``) is turned once into the encoder's two inputs,
with the same functions inference uses: ``video_motion`` (25 fps motion maps) and ``audio_frames`` (log-mel
at 4 frames per video frame) of the row's ``audio`` (or, when it has none, the video's own soundtrack).
The pair is stored as float16 in an ``.npz`` per clip under the cache folder, keyed by the files' paths,
sizes and modification times and by the representation, so later runs and other run folders load
instead of decoding.

A training example is a window of W video frames and the clip's audio shifted by a known number of audio
frames (10 ms each), with silence wherever the shifted audio has no sound, exactly as a shifted soundtrack
looks, plus ``L`` frames of context either side for the lag search.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from v2a.data.manifest import ClipRow, read_manifest
from v2a.encoders.motion import CHANNELS, video_motion
from v2a.encoders.sync import AUDIO_STEPS, SyncConfig, audio_frames, silence_level
from v2a.errors import InputError
from v2a.io.audio import load_audio, load_video_audio

log = logging.getLogger(__name__)

FEATURE_VERSION = 1  # bump when the representation changes: old cache entries are then ignored
_VAL_MODULUS = 20  # without a val split, rows whose id hashes to 0 mod 20 (~5 %) are held out


@dataclass
class SyncClips:
    """Cached inputs of a set of clips.

    Attributes:
        ids: clip ids.
        motion: per clip (T, C, G, G) float16 motion maps at 25 fps.
        mel: per clip (n_mels, 4T) float16 audio frames.
        skipped: ``"id: reason"`` of clips that could not be read.
    """

    ids: list[str] = field(default_factory=list)
    motion: list[np.ndarray] = field(default_factory=list)
    mel: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def seconds(self) -> float:
        """Total video duration at 25 fps."""
        return sum(len(m) for m in self.motion) / 25.0


@dataclass(frozen=True)
class SyncBatch:
    """Training pairs.

    Attributes:
        motion: (B, W, C, G, G) float32 motion windows.
        mel: (B, n_mels, 4 (W + 2L)) float32 shifted audio frames from L frames before the window to L after.
        shift: (B,) float32 true offset in video frames (audio late > 0), a multiple of 1/4.
    """

    motion: torch.Tensor
    mel: torch.Tensor
    shift: torch.Tensor


# ---- rows and features ----


def select_rows(
    manifests: Sequence[str | os.PathLike], split: str, *, val_split: str = "val"
) -> list[ClipRow]:
    """Rows of ``split`` from manifests; with no ``val_split`` rows anywhere, ~5 % of the train rows (by id
    hash) become validation and leave training.

    Raises:
        InputError: a manifest is missing or malformed.
    """
    rows = [row for m in manifests for row in read_manifest(m)]
    has_val = any(row.split == val_split for row in rows)

    def held_out(row: ClipRow) -> bool:
        return zlib.crc32(row.id.encode()) % _VAL_MODULUS == 0

    if split == val_split and not has_val:
        return [row for row in rows if row.split == "train" and held_out(row)]
    if split == "train" and not has_val:
        return [row for row in rows if row.split == "train" and not held_out(row)]
    return [row for row in rows if row.split == split]


def clip_features(row: ClipRow, config: SyncConfig) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's inputs of one clip: ``(motion (T, C, G, G), mel (n_mels, 4T))`` as float16.

    Raises:
        InputError: the video or audio cannot be read, or the clip has no sound.
    """
    motion = video_motion(row.video, spec=config.motion)
    sr = config.spec.sample_rate
    wav = load_audio(row.audio, sr=sr)[0] if row.audio is not None else load_video_audio(row.video, sr=sr)
    mel = audio_frames(wav, sr, len(motion), config=config)
    return motion.features.astype(np.float16), mel.astype(np.float16)


def _cache_key(row: ClipRow, config: SyncConfig) -> str:
    parts = [f"v{FEATURE_VERSION}", repr(config.motion), config.spec_name]
    for path in (row.video, row.audio):
        if path is None:
            parts.append("-")
            continue
        stat = os.stat(path)
        parts.append(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]


def cached_features(row: ClipRow, config: SyncConfig, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``clip_features`` through the cache folder (written atomically).

    Raises:
        InputError: the clip cannot be read.
    """
    try:
        path = cache_dir / f"{row.id}-{_cache_key(row, config)}.npz"
    except OSError as exc:
        raise InputError(f"clip {row.id}: {exc}") from None
    if path.is_file():
        try:
            with np.load(path) as data:
                return data["motion"], data["mel"]
        except (OSError, ValueError, KeyError):
            log.warning("rebuilding unreadable cache entry %s", path)
    motion, mel = clip_features(row, config)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, motion=motion, mel=mel)
    os.replace(tmp, path)
    return motion, mel


def _worker(args: tuple[ClipRow, SyncConfig, Path]) -> tuple[str, tuple[np.ndarray, np.ndarray] | str]:
    row, config, cache_dir = args
    torch.set_num_threads(1)
    try:
        return row.id, cached_features(row, config, cache_dir)
    except InputError as exc:
        return row.id, str(exc)


def load_clips(
    rows: Sequence[ClipRow], config: SyncConfig, cache_dir: str | os.PathLike, *, workers: int = 1
) -> SyncClips:
    """Features of many rows (computed in ``workers`` processes where not cached); unreadable clips are
    skipped and listed."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [(row, config, cache) for row in rows]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_worker, jobs, chunksize=4))
    else:
        results = [_worker(job) for job in jobs]
    clips = SyncClips()
    for clip_id, result in results:
        if isinstance(result, str):
            clips.skipped.append(f"{clip_id}: {result}")
            continue
        clips.ids.append(clip_id)
        clips.motion.append(result[0])
        clips.mel.append(result[1])
    return clips


# ---- shifted pairs ----


def shift_audio(mel: np.ndarray, shift: int, *, start: int, length: int, config: SyncConfig) -> np.ndarray:
    """A window of a clip's audio frames after delaying the soundtrack by ``shift`` frames.

    The delayed track has sound only where both the original frame and the shifted position lie inside
    the clip; everything else is silence.

    Args:
        mel: (n_mels, N) audio frames of the clip (N = 4T).
        shift: delay in audio frames (10 ms each; negative: the audio leads).
        start: first audio frame of the window on the clip's timeline (may be negative).
        length: frames in the window.
        config: the network config (silence level).

    Returns:
        (n_mels, length) float32.
    """
    n = mel.shape[1]
    pos = start + np.arange(length)  # positions on the clip's timeline
    src = pos - shift
    ok = (pos >= 0) & (pos < n) & (src >= 0) & (src < n)
    out = np.full((mel.shape[0], length), silence_level(config), np.float32)
    out[:, ok] = mel[:, src[ok]]
    return out


def sample_batch(
    clips: SyncClips,
    batch_size: int,
    rng: np.random.Generator,
    *,
    config: SyncConfig,
    max_lag: int,
    augment: bool = True,
) -> SyncBatch:
    """Random windows with random known shifts in ±``max_lag`` frames (10 ms resolution): one random
    frame lag for the batch, each pair within half a frame of it.

    Args:
        clips: the training clips.
        batch_size: pairs B.
        rng: random source.
        config: the network config (window length, silence level).
        max_lag: L, the largest shift in video frames; audio context of L frames is added each side.
        augment: random horizontal flips of the motion and ±12 dB gain of the audio.

    Returns:
        The batch.
    """
    W = config.window_frames
    # one frame lag per batch (in-batch negatives then cost one matmul), each pair its own 10 ms phase
    lag = int(rng.integers(-max_lag, max_lag + 1))
    motions, mels, shifts = [], [], []
    for i in rng.integers(0, len(clips), batch_size):
        motion, mel = clips.motion[i], clips.mel[i]
        T = len(motion)
        k0 = int(rng.integers(0, T - W + 1)) if T >= W else 0
        window = np.zeros((W, *motion.shape[1:]), np.float32)
        window[: min(W, T)] = motion[k0 : k0 + W]
        phase = int(rng.integers(-AUDIO_STEPS // 2, AUDIO_STEPS // 2))
        shift = int(np.clip(AUDIO_STEPS * lag + phase, -AUDIO_STEPS * max_lag, AUDIO_STEPS * max_lag))
        audio = shift_audio(
            mel,
            shift,
            start=AUDIO_STEPS * (k0 - max_lag),
            length=AUDIO_STEPS * (W + 2 * max_lag),
            config=config,
        )
        if augment:
            if rng.random() < 0.5:
                window = window[..., ::-1].copy()
                window[:, CHANNELS.index("flow_x")] *= -1
            floor = silence_level(config)
            gain = rng.uniform(-1.0, 1.0) * np.log(10 ** (12 / 20))
            # frames at the floor hold no measurable sound: they stay silent at any gain
            audio = np.where(audio > floor + 1e-3, np.maximum(audio + gain, floor), floor)
        motions.append(window)
        mels.append(audio)
        shifts.append(shift / AUDIO_STEPS)
    return SyncBatch(
        motion=torch.from_numpy(np.stack(motions)),
        mel=torch.from_numpy(np.stack(mels).astype(np.float32)),
        shift=torch.tensor(shifts, dtype=torch.float32),
    )
