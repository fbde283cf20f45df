"""Encoder outputs of one clip -> the generator's batched ``Conditions``: the one path training and inference share.

A ``ClipFeatures`` holds what the encoders give for one clip (or window of a clip) on its own timeline:
semantic tokens (the image features projected into the text space, 8 fps), sync features (25 fps), the
prompt's text features and, for training, the target codec latents. :func:`crop` cuts a window out of a
clip (times shifted to start at 0), and :func:`collate` pads a list of clips into one batch. The trainer
feeds it cached features (``v2a.encoders.cache``), the pipeline fresh ones from the same encoders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from v2a.encoders.text import TextFeatures as EncodedText
from v2a.errors import InputError
from v2a.model.conditions import Conditions, TextFeatures
from v2a.model.config import ModelConfig


@dataclass(frozen=True)
class ClipFeatures:
    """Encoder features of one clip; times in seconds from the clip's first frame.

    Attributes:
        duration_s: clip length in seconds.
        semantic: (T_v, D_sem) semantic tokens, or None (no picture).
        semantic_times: (T_v,) their times.
        sync: (T_s, D_sync) sync features, or None.
        sync_times: (T_s,) their times.
        text: the prompt (one row of the text encoder's output), or None (no prompt).
        latents: (C, L) normalised codec latents of the target sound (training), or None.
    """

    duration_s: float
    semantic: np.ndarray | None = None
    semantic_times: np.ndarray | None = None
    sync: np.ndarray | None = None
    sync_times: np.ndarray | None = None
    text: EncodedText | None = None
    latents: np.ndarray | None = None

    def replace(self, **changes: object) -> ClipFeatures:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def has_video(self) -> bool:
        return self.semantic is not None or self.sync is not None


def _window(
    values: np.ndarray | None, times: np.ndarray | None, start_s: float, end_s: float
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Frames with times in [start, end), times shifted by ``-start``; the nearest frame if none fall inside."""
    if values is None or times is None:
        return None, None
    keep = (times >= start_s - 1e-6) & (times < end_s - 1e-6)
    if not keep.any():
        keep = np.zeros(len(times), dtype=bool)
        keep[int(np.argmin(np.abs(times - start_s)))] = True
    return values[keep], times[keep] - start_s


def crop(clip: ClipFeatures, start_s: float, duration_s: float, *, latent_fps: float) -> ClipFeatures:
    """The window [start, start + duration) of a clip, on a timeline that starts at the window.

    Latent frame ``j`` of the clip sits at ``j / latent_fps``; the window takes frames from
    ``round(start * latent_fps)``.
    """
    end = min(clip.duration_s, start_s + duration_s)
    if not 0 <= start_s < end:
        raise InputError(f"crop [{start_s}, {start_s + duration_s}) lies outside a {clip.duration_s} s clip")
    semantic, semantic_times = _window(clip.semantic, clip.semantic_times, start_s, end)
    sync, sync_times = _window(clip.sync, clip.sync_times, start_s, end)
    latents = None
    if clip.latents is not None:
        j0 = round(start_s * latent_fps)
        n = max(1, int(np.ceil((end - start_s) * latent_fps - 1e-6)))
        latents = clip.latents[:, j0 : j0 + n]
    return ClipFeatures(end - start_s, semantic, semantic_times, sync, sync_times, clip.text, latents)


def _text_batch(texts: Sequence[EncodedText | None]) -> TextFeatures | None:
    """Stack per-clip prompts (B = 1 each) into one padded batch; None when no clip has a prompt."""
    rows = [t for t in texts if t is not None]
    if not rows:
        return None
    dim = rows[0].tokens.shape[-1]
    length = max(max(int(t.mask[0].sum()) for t in rows), 1)
    tokens = np.zeros((len(texts), length, dim), np.float32)
    mask = np.zeros((len(texts), length), bool)
    pooled = np.zeros((len(texts), dim), np.float32)
    for i, t in enumerate(texts):
        if t is None or bool(t.is_null[0]):
            continue
        n = int(t.mask[0].sum())
        tokens[i, :n] = t.tokens[0][t.mask[0]]
        mask[i, :n] = True
        pooled[i] = t.pooled[0]
    return TextFeatures(torch.from_numpy(tokens), torch.from_numpy(mask), torch.from_numpy(pooled))


def _padded(
    items: Sequence[np.ndarray | None],
    times: Sequence[np.ndarray | None],
    dim: int,
    fps: float,
    durations: Sequence[float],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(B, T, D) features, (B, T) times and (B, T) mask.

    A clip without the feature gets a row of frames at ``i / fps`` within its duration (the network puts
    its null tokens there, as it does for a batch without any video).
    """
    present = [x for x in items if x is not None]
    if not present:
        return None, None, None
    T = max(len(x) for x in present)
    feats = np.zeros((len(items), T, dim), np.float32)
    tt = np.zeros((len(items), T), np.float32)
    mask = np.zeros((len(items), T), bool)
    for i, (x, t) in enumerate(zip(items, times, strict=True)):
        if x is None:
            tt[i] = np.arange(T) / fps
            mask[i] = tt[i] < durations[i]
            mask[i, 0] = True
            continue
        n = len(x)
        feats[i, :n], tt[i, :n], mask[i, :n] = x, t, True
        if n < T:  # padding continues the timeline past the end, holding the last frame (masked)
            feats[i, n:] = x[-1]
            step = (t[-1] - t[-2]) if n > 1 else 0.04
            tt[i, n:] = t[-1] + step * np.arange(1, T - n + 1)
    return torch.from_numpy(feats), torch.from_numpy(tt), torch.from_numpy(mask)


def collate(
    clips: Sequence[ClipFeatures], cfg: ModelConfig, *, num_frames: int | None = None
) -> tuple[torch.Tensor | None, Conditions, int]:
    """Pad clips into one batch.

    Args:
        clips: B clips.
        cfg: the generator's config (dims and rates).
        num_frames: audio latent frames T of the batch; None: the longest clip's.

    Returns:
        ``(latents, conditions, T)``: latents (B, C, T) zero-padded (None when no clip has any), the
        conditions with ``lengths`` and ``has_video`` set, and T.
    """
    if not clips:
        raise InputError("collate needs at least one clip")
    lengths = [
        c.latents.shape[1] if c.latents is not None else cfg.sequence(c.duration_s).latent_frames
        for c in clips
    ]
    T = num_frames or max(lengths)
    channels = {c.latents.shape[0] for c in clips if c.latents is not None} - {cfg.latent_dim}
    if channels:
        raise InputError(
            f"clip latents have {sorted(channels)} channels but the generator models {cfg.latent_dim}: they were "
            "made with another codec; recompute them with `v2a data features SHARDS --encoders latents "
            "--overwrite --codec-checkpoint CODEC` for the codec the generator uses"
        )
    durations = [c.duration_s for c in clips]
    semantic, semantic_times, semantic_mask = _padded(
        [c.semantic for c in clips],
        [c.semantic_times for c in clips],
        cfg.semantic_dim,
        cfg.semantic_fps,
        durations,
    )
    sync, sync_times, _ = _padded(
        [c.sync for c in clips], [c.sync_times for c in clips], cfg.sync_dim, cfg.sync_fps, durations
    )
    latents = None
    if any(c.latents is not None for c in clips):
        latents = torch.zeros(len(clips), cfg.latent_dim, T)
        for i, c in enumerate(clips):
            if c.latents is not None:
                n = min(T, c.latents.shape[1])
                latents[i, :, :n] = torch.from_numpy(np.asarray(c.latents[:, :n], np.float32))
    cond = Conditions(
        semantic=semantic,
        semantic_times=semantic_times,
        semantic_mask=semantic_mask,
        sync=sync,
        sync_times=sync_times,
        has_video=torch.tensor([c.has_video for c in clips]),
        text=_text_batch([c.text for c in clips]),
        lengths=torch.tensor([min(T, n) for n in lengths]),
    )
    return latents, cond, T


def with_text(cond: Conditions, text: EncodedText | None, *, negative: bool = False) -> Conditions:
    """``cond`` with one prompt (or negative prompt) for every clip of the batch."""
    B = cond.lengths.shape[0] if cond.lengths is not None else 1
    batch = _text_batch([text] * B) if text is not None and not bool(text.is_null[0]) else None
    return cond.replace(**{"negative_text" if negative else "text": batch})
