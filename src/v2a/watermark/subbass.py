"""The sub-bass layer: a second, sync-only mark between 31 and 219 Hz, under the main grid.

The main grid (``grid``) starts at 200 Hz. Audio whose energy lies almost all below that (a rumble, an
engine drone, wind, a bass-heavy score) carries the main mark only in faint upper bands, which added noise
or another sound then drowns: on the benchmark, a sub-bass ambience under white noise at 20 dB SNR fell
to p = 0.05 while its own bands below 200 Hz stood 35 dB or more above that noise. This layer marks that
range with the main grid's 2 x 2 units on a finer spectrum: 128 ms Hann frames (2048 samples at 16 kHz,
7.8 Hz bins) every 32 ms, 8 bands of 3 bins from 31.25 to 218.75 Hz (where the main grid's first band
begins), chips of 128 ms. The keyed pattern repeats every 128 chips (16.4 s) and every unit is a sync
unit: the layer tells whether the mark is there, and the payload stays with the main grid.

Depth follows the host's own fluctuation, like the main grid's: ``DEPTH_PER_SPREAD`` times the local
spread of its whitened band levels (a noise-like rumble moves by a few dB from cell to cell and hides a
mark of that size; a held bass note barely moves and gets almost none), at most ``MAX_DEPTH_DB``, and cut
to what PEAQ's ear model, extended down to 10 Hz, says is masked (``v2a.audio.masking``).

Detection correlates the unit contrasts of the whole audio (or of 16.4 s windows of longer audio), folded
onto one block, with the key's signs at every offset; the score is a Rademacher sum as in ``detect``, so
the same Pinelis bound and a union over offsets and windows give a p-value that holds for any audio.
``detect`` spends ``SHARE`` of the false-positive budget on this layer.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter, uniform_filter1d
from scipy.special import log_ndtr

from v2a.audio.masking import masked_limit_db
from v2a.watermark import grid, stft
from v2a.watermark.keys import checkerboard, key_bytes, keyed_rng

RATE = grid.RATE
N_FFT = 2048  # 128 ms Hann frames: 7.8 Hz bins
HOP = 512  # 32 ms, for embedding (75 % overlap) and detection alike
FIRST_BIN = 4  # 31.25 Hz
BAND_BINS = 3
BANDS = 8  # up to bin 28, 218.75 Hz: the main grid's first band starts there
CHIP_FRAMES = 4  # 128 ms
BLOCK_CHIPS = 128  # the pattern repeats every 16.4 s
BLOCK_FRAMES = CHIP_FRAMES * BLOCK_CHIPS
UNIT_ROWS = BLOCK_CHIPS // 2
UNIT_COLS = BANDS // 2
CHIP_S = CHIP_FRAMES * HOP / RATE
MASK_F_LOW = 10.0  # Hz: the ear model's bands for this layer then start at 10.2 Hz, below its lowest bin
MASK_F_HIGH = 1500.0  # Hz, and the highest: sound 3 Bark or more above 219 Hz masks nothing down here
# Depth: this times the local spread of the host's whitened band level, at most MAX_DEPTH_DB at strength 1,
# before the masking cut. On the benchmark's speech tracks that have some chip where the sub-bass dominates
# (plosives, low voices), 1.5 and 4.5 dB took the lowest wide-band PESQ from 4.39 to 4.32 for margin on rumble
# that the layer does not need (a sub-bass ambience under white noise at 20 dB: p 1e-17 here, 1e-21 there).
DEPTH_PER_SPREAD = 1.0
MAX_DEPTH_DB = 3.0
DOMINANCE_DB = (5.0, 15.0)  # sub-bass excess over the grid's bands at which the depth starts, and is full
SHARE = 0.1  # share of the detector's false-positive budget spent on this layer
# Block frame where the pattern's first unit row starts when the audio is untouched: chip k spans samples
# [k, k + 1) * CHIP_FRAMES * HOP, and detector frame t (centred at t * HOP + N_FFT / 2) falls in chip
# (t + 2) // CHIP_FRAMES, so chip 0 is summed from frame -2. Encoder delays shift it by a frame or two.
ALIGNED_OFFSETS = tuple((-2 + d) % BLOCK_FRAMES for d in range(-2, 4))
FAMILY_SHARES = {"aligned": 0.5, "any": 0.5}
_WHITEN_FRAMES = 13  # moving average removed from the band levels (416 ms)
_NORM = (21, 5)  # local RMS neighbourhood (frames, bands)
_MIN_FRAMES = 4 * CHIP_FRAMES  # two unit rows
_PINELIS = 2.0 * math.e**3 / 9.0
_FRAME_BATCH = 1024  # detector frames transformed at once (bounds memory on long audio)


def mark(x16: np.ndarray, key: str | bytes, strength: float = 1.0) -> np.ndarray:
    """(S,) float32 sub-bass mark of ``x16`` (the host at ``RATE``), to be added to it; zeros if it has none."""
    spec, centres = stft.analysis(x16, N_FFT, HOP, RATE)  # (F, K), frame centres in seconds
    power = (spec.real**2 + spec.imag**2) / (N_FFT / 2.0) ** 2
    chip = np.clip(np.floor(centres / CHIP_S).astype(int), 0, None)
    n_chips = int(chip.max()) + 1
    dominance = _dominance(power, chip, n_chips)
    if not np.any(dominance):  # most speech, music and effects: the grid carries the whole mark
        return np.zeros_like(x16)
    counts = np.bincount(chip, minlength=n_chips)[:, None]
    _, spread, active = _whiten(band_levels(power))
    depth = np.zeros((n_chips, BANDS))
    np.add.at(depth, chip, np.where(active, spread, 0.0))
    depth = np.minimum(DEPTH_PER_SPREAD * depth / np.maximum(counts, 1), MAX_DEPTH_DB) * strength
    depth *= dominance[:, None]
    if not np.any(depth):
        return np.zeros_like(x16)
    cells = cell_signs(key)[chip % BLOCK_CHIPS] * depth[chip]  # (F, BANDS) signed dB per frame
    frame_db = stft.smooth(cells, axis=0)
    bin_db = np.zeros(power.shape)
    bin_db[:, FIRST_BIN : FIRST_BIN + BANDS * BAND_BINS] = np.repeat(frame_db, BAND_BINS, axis=1)
    bin_db = stft.smooth(bin_db, axis=1)
    bound = masked_limit_db(power, RATE, N_FFT, HOP, MASK_F_LOW, MASK_F_HIGH) * strength
    spec *= 10.0 ** (np.clip(bin_db, -bound, bound) / 20.0) - 1.0
    return stft.synthesis(spec, N_FFT, HOP, x16.size)


def _dominance(power: np.ndarray, chip: np.ndarray, n_chips: int) -> np.ndarray:
    """(n_chips,) depth weight of each chip, 0 to 1, from how far the sub-bass outweighs the grid's bands.

    Where the host's bands above ``grid.F_LO`` hold anywhere near the energy of its sub-bass, the grid carries
    the mark and this layer stays out: voices and music are heard to change level down there first. The weight
    rises linearly from ``DOMINANCE_DB[0]`` to ``DOMINANCE_DB[1]`` of sub-bass excess, chip by chip.
    """
    top = FIRST_BIN + BANDS * BAND_BINS
    upper = round(grid.F_HI * N_FFT / RATE)
    sub = np.bincount(chip, weights=power[:, FIRST_BIN:top].sum(axis=1), minlength=n_chips)
    above = np.bincount(chip, weights=power[:, top:upper].sum(axis=1), minlength=n_chips)
    excess = 10.0 * np.log10((sub + 1e-12) / (above + 1e-12))
    return np.interp(excess, DOMINANCE_DB, (0.0, 1.0))


def log_p_value(x16: np.ndarray, key: str | bytes) -> tuple[float, tuple[float, float]]:
    """Log p-value of this layer's mark in ``x16`` (the audio at ``RATE``), and where it was strongest.

    Returns:
        ``(log_p, (start_s, end_s))``: the log of the p-value corrected for every offset and window (0.0
        when the audio is too short or has nothing in these bands), and the span of the best window.
    """
    frames = 1 + max(0, x16.size - N_FFT) // HOP
    if x16.size < N_FFT or frames < _MIN_FRAMES:
        return 0.0, (0.0, x16.size / RATE)
    values, _, _ = _whiten(_detector_levels(x16))
    units = _unit_contrasts(values)  # (T', UNIT_COLS), unit starting at each frame
    windows = _windows(units.shape[0])
    signs = unit_signs(key)
    best = (0.0, (0.0, x16.size / RATE))
    for start, end in windows:
        log_p = _window_log_p(units, start, end, signs) + math.log(len(windows))
        if log_p < best[0]:
            span = (start * HOP / RATE, min((end + 2 * CHIP_FRAMES) * HOP + N_FFT, x16.size) / RATE)
            best = (log_p, span)
    return best


def _detector_levels(x16: np.ndarray) -> np.ndarray:
    """(T, BANDS) band levels of unpadded frames (frame t spans samples [t * HOP, t * HOP + N_FFT)).

    The spectra are taken ``_FRAME_BATCH`` frames at a time: only the 8 band levels of each frame are kept,
    so an hour of audio needs no more memory than a minute.
    """
    frames = sliding_window_view(x16, N_FFT)[::HOP]
    levels = []
    for start in range(0, frames.shape[0], _FRAME_BATCH):
        spec = np.fft.rfft(frames[start : start + _FRAME_BATCH] * stft.hann(N_FFT), axis=1)
        levels.append(band_levels((spec.real**2 + spec.imag**2) / (N_FFT / 2.0) ** 2))
    return np.concatenate(levels)


def band_levels(power: np.ndarray) -> np.ndarray:
    """(T, BANDS) band energy in dB of (T, K) power spectra of ``N_FFT``-sample frames."""
    bins = power[:, FIRST_BIN : FIRST_BIN + BANDS * BAND_BINS]
    energy = bins.reshape(power.shape[0], BANDS, BAND_BINS).sum(axis=2)
    return 10.0 * np.log10(energy + 1e-11)


@functools.cache
def _signs(key: bytes) -> np.ndarray:
    rng = keyed_rng(b"v2a-watermark-subbass", key)
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(UNIT_ROWS, UNIT_COLS))


def unit_signs(key: str | bytes) -> np.ndarray:
    """(UNIT_ROWS, UNIT_COLS) the key's +1/-1 sign of every unit of a block (a different draw from ``keys``)."""
    return _signs(key_bytes(key))


def cell_signs(key: str | bytes) -> np.ndarray:
    """(BLOCK_CHIPS, BANDS) +1/-1 mark of every cell: the unit's sign times the 2 x 2 checkerboard."""
    return checkerboard(unit_signs(key))


def _whiten(level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised features, local spread in dB and activity of (T, BANDS) band levels.

    As ``grid.features``, but whitened in time only: the 2 x 2 unit already cancels what changes slowly across
    a pair of bands, and over 8 bands an average across them smears a band-limited sound's edge into noise
    (noise low-passed at 90 Hz, marked, under white noise at 20 dB: log10 p -5.3 with it, -9.7 without).
    """
    white = level - uniform_filter1d(level, _WHITEN_FRAMES, axis=0, mode="nearest")
    spread = np.sqrt(np.maximum(uniform_filter(white * white, _NORM, mode="nearest"), 0.0))
    values = np.clip(white / np.maximum(spread, 1e-3), -grid.CLIP, grid.CLIP)
    top = float(np.percentile(level, 99)) if level.size else 0.0
    active = level > max(grid.SILENCE_DB, top - 50.0)
    values[~active] = 0.0
    return values.astype(np.float32), spread, active


def _unit_contrasts(values: np.ndarray) -> np.ndarray:
    """(T - 2 * CHIP_FRAMES + 1, UNIT_COLS) contrast of the unit whose first chip starts at each frame."""
    cumulative = np.concatenate([np.zeros((1, BANDS)), np.cumsum(values, axis=0, dtype=np.float64)])
    chips = cumulative[CHIP_FRAMES:] - cumulative[:-CHIP_FRAMES]  # chip starting at each frame
    in_time = chips[:-CHIP_FRAMES] - chips[CHIP_FRAMES:]  # chip minus the next chip
    return in_time[:, 0::2] - in_time[:, 1::2]


def _windows(count: int) -> list[tuple[int, int]]:
    """(start, end) unit-start frames of the analysis windows: the whole audio, or blocks by half a block."""
    if count <= BLOCK_FRAMES * 3 // 2:
        return [(0, count)]
    starts = list(range(0, count - BLOCK_FRAMES + 1, BLOCK_FRAMES // 2))
    if starts[-1] + BLOCK_FRAMES < count:
        starts.append(count - BLOCK_FRAMES)
    return [(s, s + BLOCK_FRAMES) for s in starts]


def _window_log_p(units: np.ndarray, start: int, end: int, signs: np.ndarray) -> float:
    """Log p-value of the best offset in one window, corrected for the offsets searched."""
    folded = np.zeros((BLOCK_FRAMES, UNIT_COLS))
    frames = np.arange(start, end)
    np.add.at(folded, frames % BLOCK_FRAMES, units[start:end])
    step = 2 * CHIP_FRAMES  # frames per unit row
    by_row = folded.reshape(UNIT_ROWS, step, UNIT_COLS)  # [r, s]: block frame step * r + s
    # Offset o = step * k + s puts unit row m at block frame o + step * m, i.e. row (k + m) mod R, phase s.
    num = np.stack([np.einsum("msc,mc->s", np.roll(by_row, -k, axis=0), signs) for k in range(UNIT_ROWS)])
    den = np.sqrt(np.einsum("rsc,rsc->s", by_row, by_row))  # (step,): the same for every row shift
    z = np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0).reshape(-1)  # index step * k + s = offset
    best = 0.0
    for name, offsets in (("aligned", ALIGNED_OFFSETS), ("any", range(BLOCK_FRAMES))):
        top = max(float(z[o]) for o in offsets)
        log_p = math.log(_PINELIS * len(offsets) / FAMILY_SHARES[name]) + float(log_ndtr(-top))
        best = min(best, log_p)
    return best
