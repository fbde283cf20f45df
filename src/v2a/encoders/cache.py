"""Precompute encoder outputs into training shards, so training never decodes a video twice.

``extract_features`` runs the encoders over every clip of a shard folder and stores the results as sidecar
features (``v2a.data.shards.add_features``), one ``.npy`` per clip and encoder, each a numpy structured
array (plain numeric fields, loadable without pickle):

- ``semantic``: shape (T,), one record per frame at 8 fps on the video timeline, fields ``time_s`` (float64,
  seconds), ``features`` (float16, 1280) and ``text_space`` (float16, 384). Logits are not stored: they are
  the classifier's last layer applied to ``features`` (``read_semantic`` recomputes them).
- ``sync``: shape (T,), one record per frame at 25 fps on the video timeline, fields ``time_s`` (float64)
  and ``features`` (float16, 128): the sync encoder's motion embeddings.
- ``text``: shape (), one record for the clip's caption, fields ``pooled`` (float16, 384), ``is_null``
  (bool; an empty caption) and ``tokens`` (float16, (L, 384), only the L real tokens, no padding).
- ``latents``: shape (C, L) float16, the codec's normalised latents of the clip's target sound (the
  generator's training target; clips without sound get none and are skipped by the generator).

``read_semantic``, ``read_sync`` and ``read_text`` turn a stored array back into the encoders' own output
types, so a trainer consumes cached features exactly as inference consumes fresh ones. Features come from
the same functions inference uses (``SemanticEncoder.encode_frames`` on ``video_frames``,
``SyncEncoder.encode_video``, ``TextEncoder.encode``, ``Codec.encode`` of ``log_mel``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from v2a.audio.bundled import load_codec
from v2a.audio.codec import Codec
from v2a.audio.mel import log_mel
from v2a.data.shards import Sample, add_features
from v2a.encoders.efficientnet import NUM_FEATURES
from v2a.encoders.semantic import FPS, SemanticEncoder, SemanticFeatures, classifier_logits, video_frames
from v2a.encoders.sync import SyncConfig, SyncEncoder, SyncFeatures
from v2a.encoders.text import DIM as TEXT_DIM
from v2a.encoders.text import TextEncoder, TextFeatures
from v2a.errors import InputError
from v2a.io.audio import resample
from v2a.io.video import FrameSeq

ENCODERS = ("semantic", "sync", "text", "latents")
SYNC_DIM, SYNC_FPS = SyncConfig.dim, SyncConfig.fps  # the bundled sync encoder's output
DEFAULT_ENCODERS = ENCODERS
SEMANTIC_DTYPE = np.dtype(
    [("time_s", "<f8"), ("features", "<f2", (NUM_FEATURES,)), ("text_space", "<f2", (TEXT_DIM,))]
)
SYNC_DTYPE = np.dtype([("time_s", "<f8"), ("features", "<f2", (SYNC_DIM,))])


def extract_features(
    shard_dir: str | os.PathLike,
    *,
    encoders: Sequence[str] = DEFAULT_ENCODERS,
    fps: float = FPS,
    backend: str = "auto",
    device: str | None = None,
    batch_size: int = 8,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    sync_checkpoint: str | os.PathLike | None = None,
    codec_checkpoint: str | os.PathLike | None = None,
) -> list[str]:
    """Compute encoder features for every clip of a shard folder and store them as sidecar shards.

    Args:
        shard_dir: a shard folder made by ``v2a.data.shards.write_shards``.
        encoders: which features to compute, from ``"semantic"``, ``"sync"``, ``"text"`` and ``"latents"``.
        fps: frame rate of the semantic features.
        backend: semantic encoder backend (``"auto"``, ``"onnx"``, ``"torch"``).
        device: ``"cpu"`` or ``"cuda"`` (None: CUDA when available).
        batch_size: clips per encoder call.
        workers: threads decoding videos while the encoder runs.
        overwrite: recompute features that exist.
        progress: show progress bars on stderr.
        cache_dir: folder of the exported graph and class-name embeddings (None: the default cache).
        sync_checkpoint: sync encoder checkpoint (None: the bundled one).
        codec_checkpoint: codec checkpoint for ``latents`` (None: the bundled one).

    Returns:
        The feature names written.

    Raises:
        InputError: an unknown encoder, bad arguments, or an unreadable shard or clip (named).
        OutputError: a feature exists and ``overwrite`` is False.
        ModelUnavailableError: an encoder's package or weights are missing.
    """
    unknown = [name for name in encoders if name not in ENCODERS]
    if unknown or not encoders:
        raise InputError(
            f"encoders must be some of {', '.join(ENCODERS)}, got {', '.join(encoders) or 'none'}"
        )
    if workers < 1 or not fps > 0:
        raise InputError(f"need workers >= 1 and fps > 0, got workers={workers} fps={fps}")
    text_encoder = TextEncoder(device=device) if "text" in encoders else None
    done = []
    if "semantic" in encoders:
        semantic = SemanticEncoder(
            backend=backend, device=device, cache_dir=cache_dir, text_encoder=text_encoder
        )
        fn = _SemanticFn(semantic, fps, workers)
        add_features(shard_dir, "semantic", fn, batch_size=batch_size, overwrite=overwrite, progress=progress)
        done.append("semantic")
    if "sync" in encoders:
        device_name = device or ("cuda" if torch.cuda.is_available() else "cpu")
        sync = SyncEncoder.from_checkpoint(sync_checkpoint, device=device_name)
        fn = _SyncFn(sync, workers)
        add_features(shard_dir, "sync", fn, batch_size=batch_size, overwrite=overwrite, progress=progress)
        done.append("sync")
    if text_encoder is not None:
        fn = _TextFn(text_encoder)
        add_features(
            shard_dir, "text", fn, batch_size=max(batch_size, 64), overwrite=overwrite, progress=progress
        )
        done.append("text")
    if "latents" in encoders:
        codec = load_codec(codec_checkpoint)
        add_features(
            shard_dir,
            "latents",
            _LatentFn(codec),
            batch_size=batch_size,
            overwrite=overwrite,
            progress=progress,
        )
        done.append("latents")
    return done


def audio_latents(codec: Codec, wav: np.ndarray) -> np.ndarray:
    """(C, L) float32 normalised codec latents of a mono waveform at the codec's sample rate."""
    mel = log_mel(np.asarray(wav, np.float32), codec.spec)
    return codec.encode(mel).float().cpu().numpy()


class _SemanticFn:
    """Per batch of samples: decode the videos (in threads), encode their frames, pack the records."""

    def __init__(self, encoder: SemanticEncoder, fps: float, workers: int):
        self.encoder, self.fps, self.workers = encoder, fps, workers

    def __call__(self, samples: list[Sample]) -> list[np.ndarray]:
        with (
            tempfile.TemporaryDirectory(prefix="v2a-features-") as tmp,
            ThreadPoolExecutor(self.workers) as pool,
        ):
            decoded = pool.map(lambda sample: self._decode(sample, Path(tmp)), samples)  # overlaps encoding
            return [pack_semantic(self.encoder.encode_frames(seq.frames, seq.times_s)) for seq in decoded]

    def _decode(self, sample: Sample, folder: Path) -> FrameSeq:
        path = folder / f"{sample['key']}.{sample['video_ext']}"
        path.write_bytes(sample["video"])
        try:
            chunks = list(video_frames(path, fps=self.fps))
        except InputError as err:
            raise InputError(f"clip {sample['key']!r}: {err}") from None
        finally:
            path.unlink()
        return FrameSeq(
            frames=np.concatenate([c.frames for c in chunks]),
            times_s=np.concatenate([c.times_s for c in chunks]),
            fps=self.fps,
        )


class _SyncFn:
    """Per batch of samples: sync features of each video file (decoded at 25 fps by timestamp)."""

    def __init__(self, encoder: SyncEncoder, workers: int):
        self.encoder, self.workers = encoder, workers

    def __call__(self, samples: list[Sample]) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="v2a-sync-") as tmp:
            return [pack_sync(self._encode(sample, Path(tmp))) for sample in samples]

    def _encode(self, sample: Sample, folder: Path) -> SyncFeatures:
        path = folder / f"{sample['key']}.{sample['video_ext']}"
        path.write_bytes(sample["video"])
        try:
            return self.encoder.encode_video(path)
        except InputError as err:
            raise InputError(f"clip {sample['key']!r}: {err}") from None
        finally:
            path.unlink()


class _LatentFn:
    """Per batch of samples: codec latents of the target sound (an empty (C, 0) array when there is none)."""

    def __init__(self, codec: Codec):
        self.codec = codec

    def __call__(self, samples: list[Sample]) -> list[np.ndarray]:
        out = []
        for sample in samples:
            wav = sample["audio"]
            if wav is None or len(wav) == 0:
                out.append(np.zeros((self.codec.config.latent_dim, 0), np.float16))
                continue
            if sample["sample_rate"] != self.codec.spec.sample_rate:
                wav = resample(wav, sample["sample_rate"], self.codec.spec.sample_rate)
            out.append(audio_latents(self.codec, wav).astype(np.float16))
        return out


class _TextFn:
    """Per batch of samples: encode the captions in one call, pack one record per clip."""

    def __init__(self, encoder: TextEncoder):
        self.encoder = encoder

    def __call__(self, samples: list[Sample]) -> list[np.ndarray]:
        features = self.encoder.encode([sample["meta"].get("caption") or "" for sample in samples])
        return [pack_text(features, i) for i in range(len(samples))]


def pack_semantic(features: SemanticFeatures) -> np.ndarray:
    """(T,) structured array of ``SEMANTIC_DTYPE`` holding the times, features and text-space vectors."""
    packed = np.empty(len(features), dtype=SEMANTIC_DTYPE)
    packed["time_s"] = features.times_s
    packed["features"] = features.features
    packed["text_space"] = features.text_space
    return packed


def read_semantic(array: np.ndarray) -> SemanticFeatures:
    """The ``SemanticFeatures`` (float32) of a stored ``semantic`` array; logits are recomputed from features.

    Raises:
        InputError: the array is not a ``semantic`` record array.
    """
    if array.dtype != SEMANTIC_DTYPE or array.ndim != 1:
        raise InputError(f"not a cached semantic feature array: {array.dtype} {array.shape}")
    features = array["features"].astype(np.float32)
    return SemanticFeatures(
        features=features,
        logits=classifier_logits(features),
        text_space=array["text_space"].astype(np.float32),
        times_s=array["time_s"].astype(np.float64),
    )


def pack_sync(features: SyncFeatures) -> np.ndarray:
    """(T,) structured array of ``SYNC_DTYPE`` holding the frame times and sync features."""
    packed = np.empty(len(features), dtype=SYNC_DTYPE)
    packed["time_s"] = features.times_s
    packed["features"] = features.features
    return packed


def read_sync(array: np.ndarray) -> SyncFeatures:
    """The ``SyncFeatures`` (float32) of a stored ``sync`` array.

    Raises:
        InputError: the array is not a ``sync`` record array.
    """
    if array.dtype != SYNC_DTYPE or array.ndim != 1:
        raise InputError(f"not a cached sync feature array: {array.dtype} {array.shape}")
    return SyncFeatures(
        features=array["features"].astype(np.float32),
        times_s=array["time_s"].astype(np.float64),
        fps=SYNC_FPS,
    )


def pack_text(features: TextFeatures, index: int) -> np.ndarray:
    """Structured scalar holding prompt ``index`` of ``features``: pooled vector, null flag, real tokens."""
    tokens = features.tokens[index][features.mask[index]]  # (L, D): the real tokens only
    dtype = np.dtype([("pooled", "<f2", (TEXT_DIM,)), ("is_null", "?"), ("tokens", "<f2", tokens.shape)])
    packed = np.empty((), dtype=dtype)
    packed["pooled"] = features.pooled[index]
    packed["is_null"] = features.is_null[index]
    packed["tokens"] = tokens
    return packed


def read_text(array: np.ndarray) -> TextFeatures:
    """The ``TextFeatures`` (B = 1, float32) of a stored ``text`` array.

    Raises:
        InputError: the array is not a ``text`` record.
    """
    names = array.dtype.names or ()
    if array.shape != () or names != ("pooled", "is_null", "tokens"):
        raise InputError(f"not a cached text feature array: {array.dtype} {array.shape}")
    tokens = array["tokens"].astype(np.float32)  # (L, D)
    length = max(1, len(tokens))
    padded = np.zeros((1, length, TEXT_DIM), dtype=np.float32)  # (1, L, D)
    padded[0, : len(tokens)] = tokens
    mask = np.zeros((1, length), dtype=bool)
    mask[0, : len(tokens)] = True
    return TextFeatures(
        tokens=padded,
        mask=mask,
        pooled=array["pooled"].astype(np.float32)[None],
        is_null=np.array([bool(array["is_null"])]),
    )
