"""Training data of the generator: video clips from feature shards, audio-only clips from the SFX corpus.

Video clips stream from a shard folder with the cached features ``semantic``, ``sync``, ``text`` and
``latents`` (``v2a data features``); audio-only clips (MMAudio's multimodal training: sound + caption,
video null) come from the real SFX corpus, whose codec latents and caption features are computed once
into ``corpus-features.npz`` by :func:`build_corpus_cache` with the same encoders.

:class:`BatchSampler` draws a batch of one random window length (2 s up to the clip length, so no compute
is spent on padding), mixing corpus clips in with probability ``corpus_fraction``, and collates it with
``v2a.model.inputs.collate`` — the function inference uses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from v2a.audio.codec import Codec
from v2a.data.sfx_corpus import read_manifest as read_corpus_manifest
from v2a.data.shards import ShardDataset
from v2a.encoders.cache import audio_latents, read_semantic, read_sync, read_text
from v2a.encoders.semantic_head import SemanticHead, label_phrase, semantic_tokens
from v2a.encoders.text import TextEncoder
from v2a.encoders.text import TextFeatures as EncodedText
from v2a.errors import InputError
from v2a.io.atomic import atomic_output
from v2a.io.audio import resample
from v2a.model.conditions import Conditions
from v2a.model.config import ModelConfig
from v2a.model.inputs import ClipFeatures, collate, crop

log = logging.getLogger(__name__)

SHARD_FEATURES = ("semantic", "sync", "text", "latents")
CORPUS_KINDS = ("sfx", "ambience", "music", "ui")
CORPUS_CACHE = "corpus-features.npz"


def clip_from_sample(sample: dict, head: SemanticHead | None = None) -> ClipFeatures | None:
    """The ``ClipFeatures`` of a shard sample with cached features; None when it has no target sound.

    ``head``: the generator's semantic head, whose vectors join the bridge's in the visual tokens.
    """
    feats = sample["features"]
    latents = feats["latents"].astype(np.float32)
    if latents.shape[1] == 0:
        return None
    semantic = read_semantic(feats["semantic"])
    sync = read_sync(feats["sync"])
    return ClipFeatures(
        duration_s=float(sample["meta"]["duration_s"]),
        semantic=semantic_tokens(semantic, head),
        semantic_times=semantic.times_s,
        sync=sync.features,
        sync_times=sync.times_s,
        text=read_text(feats["text"]),
        latents=latents,
    )


def shard_clips(
    shard_dir: str | os.PathLike,
    split: str = "train",
    *,
    seed: int = 0,
    repeat: bool = True,
    head: SemanticHead | None = None,
) -> Iterator[ClipFeatures]:
    """Clips of a shard split with their cached features, shuffled, forever when ``repeat``."""
    dataset = ShardDataset(
        shard_dir, split, features=SHARD_FEATURES, seed=seed, repeat=repeat, decode_audio=False,
        shuffle_buffer=256,
    )  # fmt: skip
    for sample in dataset:
        clip = clip_from_sample(sample, head)
        if clip is not None:
            yield clip


def load_shard_clips(
    shard_dir: str | os.PathLike, split: str, *, limit: int | None = None, head: SemanticHead | None = None
) -> list[tuple[ClipFeatures, dict]]:
    """The first ``limit`` clips of a split in shard order with their manifest rows (validation sets)."""
    out = []
    dataset = ShardDataset(shard_dir, split, features=SHARD_FEATURES, shuffle_buffer=0, decode_audio=False)
    for sample in dataset:
        clip = clip_from_sample(sample, head)
        if clip is not None:
            out.append((clip, sample["meta"]))
        if limit is not None and len(out) >= limit:
            break
    return out


# ---- the SFX corpus as audio + caption clips ----


def corpus_caption(row: dict) -> str:
    """A caption for a corpus recording from its label and file-name tags, e.g. "glass break: break glass"."""
    label = label_phrase(row.get("label", ""))
    tags = [t for t in row.get("tags", []) if t and t.lower() not in label.lower().split()]
    return f"{label}: {' '.join(tags[:4])}" if tags else label


@dataclass(frozen=True)
class CorpusClips:
    """Audio-only clips: latents of every recording concatenated, captions encoded once each.

    Attributes:
        latents: (C, N) float16, all clips' latents end to end.
        starts: (K,) first latent frame of each clip.
        lengths: (K,) its latent frames.
        caption_index: (K,) row of each clip's caption in the caption arrays.
        caption_tokens: (M, L, D) float16 token states (zero padded).
        caption_mask: (M, L) bool.
        caption_pooled: (M, D) float16.
        captions: (M,) the caption strings.
    """

    latents: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    caption_index: np.ndarray
    caption_tokens: np.ndarray
    caption_mask: np.ndarray
    caption_pooled: np.ndarray
    captions: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def clip(self, i: int, latent_fps: float) -> ClipFeatures:
        """Clip ``i`` as audio-only ``ClipFeatures`` (no picture)."""
        lo, n = int(self.starts[i]), int(self.lengths[i])
        m = int(self.caption_index[i])
        text = EncodedText(
            tokens=self.caption_tokens[m : m + 1].astype(np.float32),
            mask=self.caption_mask[m : m + 1],
            pooled=self.caption_pooled[m : m + 1].astype(np.float32),
            is_null=np.array([False]),
        )
        return ClipFeatures(
            duration_s=n / latent_fps, text=text, latents=self.latents[:, lo : lo + n].astype(np.float32)
        )


def build_corpus_cache(
    corpus_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    codec: Codec,
    text_encoder: TextEncoder,
    split: str = "train",
    kinds: Sequence[str] = CORPUS_KINDS,
    max_clips: int | None = None,
    progress: bool = True,
) -> Path:
    """Encode the corpus recordings of ``split`` (and ``kinds``) into one ``.npz`` of latents and captions."""
    folder = Path(corpus_dir)
    rows = [r for r in read_corpus_manifest(folder / "manifest.jsonl") if r.get("split", "train") == split]
    rows = [r for r in rows if r.get("kind") in kinds][: max_clips or None]
    if not rows:
        raise InputError(f"corpus {folder} has no {split} recordings of kinds {', '.join(kinds)}")
    sr = codec.spec.sample_rate
    parts, lengths, captions = [], [], []
    for row in tqdm(rows, desc="corpus latents", unit="clip", disable=not progress):
        try:
            wav, rate = sf.read(folder / row["path"], dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            log.warning("skipping unreadable corpus file %s (%s)", row["path"], err)
            continue
        wav = wav.mean(axis=1)
        if rate != sr:
            wav = resample(wav, rate, sr)
        lat = audio_latents(codec, wav).astype(np.float16)
        parts.append(lat)
        lengths.append(lat.shape[1])
        captions.append(corpus_caption(row))
    unique = sorted(set(captions))
    where = {c: i for i, c in enumerate(unique)}
    encoded = text_encoder.encode(unique)
    lengths_arr = np.asarray(lengths, np.int64)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as tmp, tmp.open("wb") as f:
        np.savez(
            f,
            latents=np.concatenate(parts, axis=1),
            starts=np.concatenate(([0], np.cumsum(lengths_arr)[:-1])),
            lengths=lengths_arr,
            caption_index=np.asarray([where[c] for c in captions], np.int64),
            caption_tokens=encoded.tokens.astype(np.float16),
            caption_mask=encoded.mask,
            caption_pooled=encoded.pooled.astype(np.float16),
            captions=np.asarray(unique),
        )
    return target


def load_corpus_cache(path: str | os.PathLike) -> CorpusClips:
    """Read a cache written by :func:`build_corpus_cache`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return CorpusClips(**{k: z[k] for k in CorpusClips.__dataclass_fields__})
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"corpus feature cache {path} is unreadable ({err}); delete it to rebuild") from None


# ---- batches ----


@dataclass(frozen=True)
class Batch:
    """One training batch: target latents (B, C, T) and their conditions."""

    latents: torch.Tensor
    cond: Conditions
    num_frames: int


class BatchSampler:
    """Draws training batches of one random window length from video clips and corpus clips.

    Args:
        cfg: the generator's config.
        video_clips: an endless iterator of video clips (e.g. :func:`shard_clips`).
        corpus: audio-only clips, or None.
        batch_size: clips per batch.
        corpus_fraction: probability that a batch slot is a corpus clip.
        min_seconds: shortest window.
        max_seconds: longest window (clips shorter than the drawn window are padded).
        rng: random source.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        video_clips: Iterator[ClipFeatures] | None,
        corpus: CorpusClips | None,
        *,
        batch_size: int,
        corpus_fraction: float,
        min_seconds: float,
        max_seconds: float,
        rng: np.random.Generator,
    ):
        if video_clips is None and corpus is None:
            raise InputError("the generator needs video shards or an SFX corpus to train on")
        self.cfg, self.video, self.corpus = cfg, video_clips, corpus
        self.batch_size, self.rng = batch_size, rng
        self.corpus_fraction = (
            1.0 if video_clips is None else (corpus_fraction if corpus is not None else 0.0)
        )
        self.min_seconds, self.max_seconds = min_seconds, max_seconds

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        fps = self.cfg.latent_fps
        window = float(self.rng.uniform(self.min_seconds, self.max_seconds))
        clips = []
        for _ in range(self.batch_size):
            if self.rng.random() < self.corpus_fraction:
                clip = self.corpus.clip(int(self.rng.integers(len(self.corpus))), fps)
            else:
                clip = next(self.video)
            length = min(window, clip.duration_s)
            start = float(self.rng.uniform(0.0, clip.duration_s - length))
            start = round(start * fps) / fps  # window starts on a latent frame
            if start + 1.0 / fps > clip.duration_s:
                start = 0.0
            clips.append(crop(clip, start, length, latent_fps=fps))
        latents, cond, T = collate(clips, self.cfg, num_frames=self.cfg.sequence(window).latent_frames)
        return Batch(latents, cond, T)
