"""The gain-filter STFT both watermark layers render their marks with.

Hann frames at 75 % overlap (or more), padded so that every sample of the input is covered by
``n_fft / hop`` frames; the mark is ``synthesis(analysis(x) * (gain - 1))``, added back to the input.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@functools.cache
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (float32)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def analysis(x: np.ndarray, n_fft: int, hop: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, K) complex spectra of padded Hann frames of ``x`` every ``hop`` samples, and (F,) their centres in s."""
    pad, total = _padding(x.size, n_fft, hop)
    padded = np.zeros(total, dtype=np.float32)
    padded[pad : pad + x.size] = x
    spec = np.fft.rfft(sliding_window_view(padded, n_fft)[::hop] * hann(n_fft), axis=1)
    centres = (np.arange(spec.shape[0]) * hop + n_fft / 2 - pad) / rate
    return spec, centres


def synthesis(spec: np.ndarray, n_fft: int, hop: int, size: int) -> np.ndarray:
    """(size,) float32 waveform from spectra laid out as ``analysis`` makes them for a ``size``-sample input."""
    pad, total = _padding(size, n_fft, hop)
    win = hann(n_fft)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * win  # (F, n_fft)
    out = np.zeros(total + n_fft, dtype=np.float64)
    for j in range(n_fft // hop):  # overlap-add, one hop-long slice of every frame at a time
        piece = frames[:, j * hop : (j + 1) * hop].reshape(-1)
        out[j * hop : j * hop + piece.size] += piece
    out /= float(np.sum(win**2)) / hop  # Hann at 75 % overlap or more: the window squares sum to a constant
    return out[pad : pad + size].astype(np.float32)


def smooth(values: np.ndarray, axis: int) -> np.ndarray:
    """Three-tap [1/4, 1/2, 1/4] smoothing along ``axis`` with the edge values repeated."""
    moved = np.moveaxis(values, axis, 0)
    padded = np.concatenate([moved[:1], moved, moved[-1:]])
    return np.moveaxis(0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:], 0, axis)


def _padding(size: int, n_fft: int, hop: int) -> tuple[int, int]:
    """Zeros before the input, and the padded length (a whole number of hops)."""
    pad = n_fft - hop
    total = size + 2 * pad
    return pad, total + (-total) % hop
