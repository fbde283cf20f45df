"""Signal-quality checks of a generated track: clipping, silence, loudness, peak level.

Cheap sanity signals that catch broken outputs (a model that saturates, or returns near silence), not a
perceptual quality score.
"""

from __future__ import annotations

import math

import numpy as np

from v2a.io.audio import loudness_lufs

CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped (full scale after float -> int16 rounding)
SILENCE_DB = -60.0  # a 50 ms window quieter than this (RMS, dBFS) counts as silent
_WINDOW_S = 0.05


def quality_metrics(wav: np.ndarray, sr: int) -> dict[str, float]:
    """Quality signals of a mono waveform.

    Args:
        wav: (S,) waveform.
        sr: its rate in Hz.

    Returns:
        ``clip_ratio`` (fraction of samples at full scale), ``silence_ratio`` (fraction of 50 ms windows
        below -60 dBFS RMS), ``loudness_lufs`` (BS.1770 integrated; -70 for silence, the gate's floor, so
        means stay finite) and ``peak_db`` (sample peak in dBFS; -120 for silence).
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"expected a non-empty (S,) waveform, got {wav.shape=}")
    window = max(1, round(_WINDOW_S * sr))
    count = max(1, wav.size // window)
    frames = wav[: count * window].reshape(count, -1) if wav.size >= window else wav[None, :]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    silent = rms < 10 ** (SILENCE_DB / 20)
    peak = float(np.max(np.abs(wav)))
    loudness = loudness_lufs(wav, sr)
    return {
        "clip_ratio": float(np.mean(np.abs(wav) >= CLIP_LEVEL)),
        "silence_ratio": float(np.mean(silent)),
        "loudness_lufs": max(loudness, -70.0) if math.isfinite(loudness) else -70.0,
        "peak_db": 20 * math.log10(peak) if peak > 1e-6 else -120.0,
    }
