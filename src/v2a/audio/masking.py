"""Psychoacoustic masking: how loud a change to a sound may be before the ear can hear it.

This is the FFT ear model of PEAQ's basic version (ITU-R BS.1387-1; Thiede et al., "PEAQ - The ITU standard
for objective measurement of perceived audio quality", J. AES 2000), up to its masking threshold, written
out with numpy because no PEAQ implementation installs offline here. It serves two users with one code
path: the watermark embedder keeps its mark under the threshold (``v2a.watermark.embed``), and the
noise-to-mask metric checks any change against it (``v2a.eval.masking``).

1. Power spectra of Hann frames, scaled so that a full-scale sine is 92 dB SPL.
2. Outer and middle ear weighting.
3. Bands 0.25 Bark wide from 80 Hz to 18 kHz (or just under the Nyquist frequency); bands that hold no
   FFT bin (narrower than a bin at low frequencies) are dropped, so every band holds at least one.
4. The ear's internal noise is added, then the energy is spread across bands (27 dB/Bark downwards,
   -24 - 230/f + 0.2 L dB/Bark upwards, L the band's level; each band's energy spread, not multiplied;
   summed with exponent 0.4 and normalised so that flat 0 dB input spreads to itself), then forward
   masking smooths it in time (time constants from 30 ms at 100 Hz down to 8 ms).
5. The masking threshold lies 3 dB below that excitation up to 12 Bark, and 0.25 z dB above (z in Bark).

Simplifications: band energies take whole FFT bins, and the model stops at the threshold (PEAQ's level
and modulation stages feed other outputs than the noise-to-mask ratio).
"""

from __future__ import annotations

import functools

import numpy as np

LISTENING_LEVEL_DB = 92.0  # dB SPL of a full-scale sine (PEAQ's assumption)
BARK_STEP = 0.25  # band width in Bark
F_LOW, F_HIGH = 80.0, 18_000.0  # band range in Hz
_TAU_100, _TAU_MIN = 0.030, 0.008  # forward-masking time constants (s) at 100 Hz and at high frequencies


def spl_scale(window: np.ndarray) -> float:
    """Factor that turns |rfft| of frames windowed by ``window`` into sound pressure (full-scale sine: 92 dB)."""
    return 10.0 ** (LISTENING_LEVEL_DB / 20.0) / (float(np.sum(window)) / 2.0)


@functools.cache
def ear_weights(sr: int, n_fft: int) -> np.ndarray:
    """(K,) outer and middle ear power weights of the rfft bins (BS.1387's W(f))."""
    khz = np.maximum(np.fft.rfftfreq(n_fft, 1.0 / sr), 20.0) / 1000.0
    db = -0.6 * 3.64 * khz**-0.8 + 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) - 1e-3 * khz**3.6
    return 10.0 ** (db / 10.0)


@functools.cache
def bark_bands(sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(K,) band index of each rfft bin (-1 outside the bands), and (B,) band centre frequencies in Hz."""
    top = min(F_HIGH, 0.49 * sr)
    edges = _inverse_bark(np.arange(_bark(F_LOW), _bark(top) + 1e-9, BARK_STEP))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    index = np.searchsorted(edges, freqs, side="right") - 1
    index[(freqs < edges[0]) | (freqs >= edges[-1])] = -1
    used = np.unique(index[index >= 0])  # bands without a bin are dropped, the rest renumbered
    remap = np.full(len(edges), -1)
    remap[used] = np.arange(len(used))
    index = np.where(index >= 0, remap[np.maximum(index, 0)], -1)
    centres = _inverse_bark(0.5 * (_bark(edges[used]) + _bark(edges[used + 1])))
    return index, centres


def band_energy(power: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(T, B) sum of (T, K) power over the bins of each band of ``bins`` (from ``bark_bands``)."""
    out = np.zeros((power.shape[0], int(bins.max()) + 1))
    keep = bins >= 0
    np.add.at(out.T, bins[keep], power[:, keep].T)
    return out


def masking_threshold(energy: np.ndarray, centres: np.ndarray, hop_s: float) -> np.ndarray:
    """(T, B) masking threshold of (T, B) ear-weighted band energies (SPL units) of frames ``hop_s`` apart."""
    excitation = _time_spread(_spread(energy + _internal_noise(centres), centres), centres, hop_s)
    return excitation / 10.0 ** (_mask_offset_db(centres) / 10.0)


def _bark(freq: np.ndarray | float) -> np.ndarray:
    return 7.0 * np.arcsinh(np.asarray(freq) / 650.0)


def _inverse_bark(z: np.ndarray) -> np.ndarray:
    return 650.0 * np.sinh(z / 7.0)


def _internal_noise(centres: np.ndarray) -> np.ndarray:
    """(B,) the ear's internal noise per band, in SPL power units."""
    return 10.0 ** (0.4 * 0.364 * (centres / 1000.0) ** -0.8)


def _spread(energy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(T, B) excitation after spreading over frequency (see the module docstring, step 4), in float32."""
    level = 10.0 * np.log10(np.maximum(energy, 1e-20))
    log_weights = _log10_spreading(centres, level)  # (T, j, k) unnormalised, log10
    share = np.exp(log_weights * _LN10).sum(axis=2)  # (T, j): what each source spreads in all
    spread_04 = np.exp(log_weights * (0.4 * _LN10))  # the weights to the power 0.4, unnormalised
    source_04 = (energy.astype(np.float32) / share) ** np.float32(0.4)
    spread = (source_04[:, None, :] @ spread_04)[:, 0, :] ** np.float32(1.0 / 0.4)
    flat = 10.0 ** _log10_spreading(centres, np.zeros((1, len(centres))))[0].astype(np.float64)
    flat /= flat.sum(axis=1, keepdims=True)
    return spread / np.sum(flat**0.4, axis=0) ** (1.0 / 0.4)


def _log10_spreading(centres: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """(T, B, B) float32 log10 of how much of source band j reaches band k, for (T, B) source levels in dB."""
    z = _bark(centres).astype(np.float32)
    dz = z[None, :] - z[:, None]  # [j, k]: Bark distance from source j to target k
    upper = (-24.0 - 230.0 / centres[None, :] + 0.2 * level_db).astype(np.float32)  # (T, j) dB per Bark
    return np.where(dz < 0, np.float32(2.7) * dz, upper[:, :, None] * (np.float32(0.1) * dz))


_LN10 = np.float32(np.log(10.0))


def _time_spread(excitation: np.ndarray, centres: np.ndarray, hop_s: float) -> np.ndarray:
    """(T, B) excitation with forward masking: a first-order decay, never below the frame's own excitation."""
    tau = _TAU_MIN + 100.0 / centres * (_TAU_100 - _TAU_MIN)
    a = np.exp(-hop_s / tau)
    out = np.empty_like(excitation)
    state = np.zeros(excitation.shape[1])
    for t, frame in enumerate(excitation):
        state = a * state + (1.0 - a) * frame
        out[t] = np.maximum(state, frame)
    return out


def _mask_offset_db(centres: np.ndarray) -> np.ndarray:
    """(B,) how far the threshold lies below the excitation: 3 dB up to 12 Bark, then 0.25 dB per Bark."""
    z = _bark(centres)
    return np.where(z <= 12.0, 3.0, 0.25 * z)
