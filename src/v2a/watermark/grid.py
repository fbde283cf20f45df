"""The time-frequency grid the watermark lives on, and the features both sides compute on it.

All work happens on a 16 kHz copy of the audio, so the mark survives resampling to 16 kHz and back,
and the embedder and the detector see the same spectrum whatever the input rate. The mark is a pattern
of small level changes (a fraction of a dB up to a few dB) of "cells": 64 ms chips of time by 40 bands
between 200 Hz and 7 kHz, a range that resampling to 16 kHz and the codecs keep (high-pass 500 Hz
removes 3 bands and low-pass 4 kHz 12; the rest only lose level, which log-energy features ignore).
The bands are spaced on a mel scale bent at 3 kHz instead of the usual 700 Hz, so even the lowest
band spans 3 FFT bins and holds a mark of its own: music and speech keep much of their energy below
1 kHz, where the mark then survives being mixed under other sound. The unit of the pattern is a 2 x 2
square of cells marked +s -s / -s +s. The pattern repeats every block of 64 chips (4.096 s); each
half block (2.048 s) carries the whole payload once, so any 3 s excerpt holds it, while the sync
units never repeat within a block, so a 3 s excerpt offers about 230 independent ones. This is
spread-spectrum marking in the dB spectrum after Kirovski & Malvar ("Spread-spectrum watermarking of
audio signals", IEEE TSP 2003).

Features (the detector's, and the embedder's view of the host): log band energy of 32 ms Hann frames
every 16 ms, whitened by removing a 13-frame moving average in time and a 5-band moving average across
bands (what the host does slowly, in time or in frequency, is not the mark), then divided by a local
RMS so that loud, busy regions and quiet, steady ones weigh the same. The detector also weighs each
cell by the share of its energy above the band's noise floor (a low percentile of the band's level
over time), so that cells drowned in added noise count little (see ``features``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter, uniform_filter1d

from v2a.io.audio import resample
from v2a.watermark.stft import hann

RATE = 16_000  # Hz, the rate every computation runs at
N_FFT = 512  # 32 ms Hann frames
HOP = 256  # detector frame hop: 16 ms
EMBED_HOP = 128  # embedder hop: 75 % overlap, so per-frame gains join smoothly
F_LO = 200.0  # Hz, lowest band edge
F_HI = 7000.0  # Hz, highest band edge
BANDS = 40  # bands between F_LO and F_HI, equally spaced on the mel scale of ``_mel``
MEL_BREAK = 3000.0  # Hz, corner of that mel scale (700 Hz is the usual one; see the module docstring)
CHIP_FRAMES = 4  # detector frames per chip: 64 ms
BLOCK_CHIPS = 64  # chips per block: the pattern repeats every 4.096 s
BLOCK_FRAMES = CHIP_FRAMES * BLOCK_CHIPS
# The unit of the pattern is a 2 x 2 square of cells (2 chips by 2 bands) marked +s -s / -s +s: its sum
# along time and along frequency is zero, so the detector's whitening high-pass leaves it whole.
UNIT_ROWS = BLOCK_CHIPS // 2  # units per block along time
UNIT_COLS = BANDS // 2  # units along frequency
CHIP_S = CHIP_FRAMES * HOP / RATE
BLOCK_S = BLOCK_FRAMES * HOP / RATE
FRAME_S = HOP / RATE

_WHITEN_FRAMES = 13  # moving-average lengths of the whitening high-pass
_WHITEN_BANDS = 5
_NORM_FRAMES = 21  # local RMS neighbourhood (about 5 chips by 5 bands)
_NORM_BANDS = 5
CLIP = 1.5  # normalised features are clipped to +/- CLIP: one loud onset must not dominate a sum
FLOOR_PERCENTILE = 10.0  # the detector's noise floor per band: this percentile of its level over time
_FLOOR = 1e-11  # power floor per band (-110 dB): digital silence gives flat, zero features
SILENCE_DB = -90.0  # band energy (dB re full scale) below which a cell is silent and carries no weight
_RELATIVE_GATE_DB = 50.0  # cells this far below the loudest part of the audio carry no weight either
_WINDOW_SUM = N_FFT / 2  # sum of the periodic Hann window


@dataclass(frozen=True)
class Features:
    """Whitened, locally normalised log band energies of one waveform.

    Attributes:
        values: (N, T, B) float32 normalised features for N frequency scales, T frames every ``HOP``
            samples at ``RATE``.
        spread_db: (N, T, B) float32 local RMS of the whitened log energies in dB (what ``values`` were
            divided by): how much the audio itself moves around each cell.
        active: (N, T, B) bool, cells loud enough to carry the mark.
        level_db: (N, T, B) float32 band energy in dB re full scale.
        loudest_db: level of the loudest part of the audio (the 99th percentile of ``level_db`` at frequency
            scale 1), the reference of the activity gate.
    """

    values: np.ndarray
    spread_db: np.ndarray
    active: np.ndarray
    level_db: np.ndarray
    loudest_db: float


def to_grid_rate(wav: np.ndarray, sr: int) -> np.ndarray:
    """(S,) float32 mono waveform at ``RATE``; (C, S) input is averaged over channels first."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=0)
    return resample(wav, sr, RATE) if sr != RATE else wav.copy()


@functools.cache
def band_edges(scale: float = 1.0) -> np.ndarray:
    """(B + 1,) band edges in Hz, mel-spaced between ``F_LO`` and ``F_HI``, multiplied by ``scale``."""
    mel_lo, mel_hi = _mel(F_LO), _mel(F_HI)
    return _inverse_mel(np.linspace(mel_lo, mel_hi, BANDS + 1)) * scale


@functools.cache
def bin_bands(scale: float = 1.0) -> np.ndarray:
    """(K,) band index of each FFT bin at ``RATE``/``N_FFT`` (-1 outside the bands), edges times ``scale``."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    index = np.searchsorted(band_edges(scale), freqs, side="right") - 1
    index[(index < 0) | (index >= BANDS)] = -1
    return index


@functools.cache
def band_bins(scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(B,) first and (B,) one-past-last FFT bin of each band whose edges are multiplied by ``scale``."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    bounds = np.searchsorted(freqs, band_edges(scale), side="left")  # first bin at or above each edge
    return bounds[:-1], bounds[1:]


@functools.cache
def window() -> np.ndarray:
    """Periodic Hann window of ``N_FFT`` samples."""
    return hann(N_FFT)


def power_spectrogram(x16: np.ndarray) -> np.ndarray:
    """(T, K) power of Hann frames every ``HOP`` samples; frame t spans samples [t*HOP, t*HOP + N_FFT)."""
    if x16.size < N_FFT:
        x16 = np.pad(x16, (0, N_FFT - x16.size))
    frames = sliding_window_view(x16, N_FFT)[::HOP] * window()  # (T, N_FFT)
    spec = np.fft.rfft(frames, axis=1) / _WINDOW_SUM  # a full-scale sine: 0.25 in its bin (about -6 dB)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


def features(
    power: np.ndarray, scales: tuple[float, ...] = (1.0,), *, floor_weights: bool = False
) -> Features:
    """Whitened, normalised band features of a power spectrogram (see the module docstring).

    Args:
        power: (T, K) output of ``power_spectrogram``.
        scales: frequency scales of the bands to compute (a speed change of the audio moves every
            frequency by its factor).
        floor_weights: multiply each value by the share of its cell's energy above the band's noise
            floor, ``1 - floor / energy`` (spectral subtraction's gain): the mark's share of a cell where
            added noise dominates. The weights depend on the audio alone, never on a key.

    Returns:
        The features, with a leading (N,) axis over ``scales`` on every array; cells that are silent or
        far below the loudest part of the audio are zero.
    """
    cumulative = np.zeros((power.shape[0], power.shape[1] + 1), dtype=np.float64)
    np.cumsum(power, axis=1, out=cumulative[:, 1:])
    los, his = zip(*(band_bins(s) for s in scales), strict=True)
    energy = cumulative[:, np.concatenate(his)] - cumulative[:, np.concatenate(los)]  # (T, N * B)
    energy = (np.maximum(energy, 0.0) + _FLOOR).astype(np.float32)  # float32 from here: half the time
    level = 10.0 * np.log10(energy).reshape(-1, len(scales), BANDS)
    level = np.ascontiguousarray(level.transpose(1, 0, 2))  # (T, N, B) -> (N, T, B)
    white = level - uniform_filter1d(level, _WHITEN_FRAMES, axis=1, mode="nearest")
    white -= uniform_filter1d(white, _WHITEN_BANDS, axis=2, mode="nearest")
    mean_square = uniform_filter(white * white, (1, _NORM_FRAMES, _NORM_BANDS), mode="nearest")
    rms = np.sqrt(np.maximum(mean_square, 0.0))
    values = np.clip(white / np.maximum(rms, 1e-3), -CLIP, CLIP)
    top = _loudest(level)
    # An absolute floor, and a gate below the loud part:
    active = level > max(SILENCE_DB, top - _RELATIVE_GATE_DB)
    values[~active] = 0.0
    if floor_weights:
        floor = np.percentile(level, FLOOR_PERCENTILE, axis=1, keepdims=True)  # (N, 1, B)
        values *= 1.0 - 10.0 ** (np.minimum(floor - level, 0.0) / 10.0)
    return Features(
        values=values.astype(np.float32),
        spread_db=rms.astype(np.float32),
        active=active,
        level_db=level,
        loudest_db=top,
    )


def _loudest(level: np.ndarray) -> float:
    """Level in dB of the loudest part of the audio: the 99th percentile of its cells at frequency scale 1."""
    return float(np.percentile(level[0], 99)) if level.size else 0.0


def _mel(freq: float | np.ndarray) -> float | np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(freq) / MEL_BREAK)


def _inverse_mel(mel: np.ndarray) -> np.ndarray:
    return MEL_BREAK * (10.0 ** (mel / 2595.0) - 1.0)
