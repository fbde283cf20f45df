"""Any length: generate a clip in overlapping windows, each continuing the last from its audio context.

The generator is trained on windows of up to 8 s with a masked audio-context prefix. A longer clip is cut
into windows of ``window_s`` that overlap by ``context_s``; each window after the first gets the previous
window's last ``context_s`` of latents as its given context, so the sound continues across the seam with
no crossfade. Conditions are computed once for the whole clip and cropped per window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from v2a.encoders.text import TextFeatures as EncodedText
from v2a.errors import InputError
from v2a.model.dit import AudioDiT
from v2a.model.inputs import ClipFeatures, collate, crop, with_text

DEFAULT_WINDOW_S = 8.0
DEFAULT_CONTEXT_S = 2.0


@dataclass(frozen=True)
class Window:
    """One generation window, in audio latent frames.

    Attributes:
        start: first frame.
        frames: frames in the window.
        context: leading frames given from the previous window (0 for the first).
    """

    start: int
    frames: int
    context: int


def plan_windows(total_frames: int, window_frames: int, context_frames: int) -> list[Window]:
    """Windows covering ``[0, total_frames)``; each after the first overlaps its predecessor by the context."""
    if total_frames < 1:
        raise InputError(f"nothing to generate: a clip needs at least one latent frame, got {total_frames}")
    if window_frames < 1 or not 0 <= context_frames < window_frames:
        raise InputError(
            f"need 0 <= context < window, got window {window_frames} and context {context_frames} frames"
        )
    windows, start = [Window(0, min(window_frames, total_frames), 0)], 0
    while start + window_frames < total_frames:
        start += window_frames - context_frames
        windows.append(Window(start, min(window_frames, total_frames - start), context_frames))
    return windows


def generate_long(
    net: AudioDiT,
    clip: ClipFeatures,
    *,
    prompt: EncodedText | None,
    negative_prompt: EncodedText | None,
    generators: list[torch.Generator],
    window_s: float = DEFAULT_WINDOW_S,
    context_s: float = DEFAULT_CONTEXT_S,
    on_window: Callable[[int, int], None] | None = None,
    **sampling: object,
) -> torch.Tensor:
    """Latents of a clip of any length, one variant per generator.

    Args:
        net: the generator.
        clip: the whole clip's features (no latents).
        prompt: the prompt's text features (or None).
        negative_prompt: the negative prompt's (or None).
        generators: one CPU generator per variant; they carry on from window to window.
        window_s: window length in seconds.
        context_s: overlap given as context.
        on_window: called with (index, count) after each window (progress).
        **sampling: ``num_inference_steps``, ``method``, ``guidance_scale``, ``text_guidance_scale``, ...

    Returns:
        (N, C, L) latents on the codec's normalised scale.
    """
    fps, N = net.cfg.latent_fps, len(generators)
    total = net.cfg.sequence(clip.duration_s).latent_frames
    windows = plan_windows(total, max(1, round(window_s * fps)), round(context_s * fps))
    out = torch.zeros(N, net.cfg.latent_dim, total, device=net.latent_mean.device)
    for i, w in enumerate(windows):
        part = crop(clip, w.start / fps, w.frames / fps, latent_fps=fps)
        _, cond, T = collate([part] * N, net.cfg, num_frames=w.frames)
        cond = with_text(with_text(cond, prompt), negative_prompt, negative=True)
        if w.context:
            mask = torch.zeros(N, 1, T)
            mask[:, :, : w.context] = 1.0
            context = torch.zeros(N, net.cfg.latent_dim, T)
            context[:, :, : w.context] = out[:, :, w.start : w.start + w.context].cpu()
            cond = cond.replace(context=context, context_mask=mask)
        latents = net.generate(cond, num_frames=T, num_samples=1, generators=generators, **sampling)
        out[:, :, w.start : w.start + w.frames] = latents
        if on_window is not None:
            on_window(i + 1, len(windows))
    return out
