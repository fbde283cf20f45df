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
def bark_bands(
    sr: int, n_fft: int, f_low: float = F_LOW, f_high: float = F_HIGH
) -> tuple[np.ndarray, np.ndarray]:
    """(K,) band index of each rfft bin (-1 outside the bands), and (B,) band centre frequencies in Hz.

    ``f_low`` extends the bands below PEAQ's 80 Hz in whole steps, keeping every band above 80 Hz as it is
    (the watermark's sub-bass layer takes the same internal noise and spreading down to 10 Hz, where the ear's
    threshold in quiet rises steeply). ``f_high`` stops the bands early, for a caller that needs the
    threshold only in low bands (masking reaches down by 27 dB per Bark, so far higher bands do not matter).
    """
    top = min(f_high, 0.49 * sr)
    # Edges stay on PEAQ's grid (whole steps from 80 Hz), so a lower f_low only adds bands below it.
    start = _bark(F_LOW) - BARK_STEP * np.floor((_bark(F_LOW) - _bark(f_low)) / BARK_STEP + 1e-9)
    edges = _inverse_bark(np.arange(start, _bark(top) + 1e-9, BARK_STEP))
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


def masked_limit_db(
    power: np.ndarray, sr: int, n_fft: int, hop: int, f_low: float = F_LOW, f_high: float = F_HIGH
) -> np.ndarray:
    """(T, K) deepest level change in dB of each frame and bin that the masking threshold hides.

    A band raised by g changes its magnitude spectrum by (g - 1) times the host's, so the change adds noise
    (g - 1)**2 times the band's energy; it stays unheard while that is at most the band's masking threshold.
    Bins outside the bands (below ``f_low``, above the top band) are not limited (inf).

    Args:
        power: (T, K) power spectra of periodic Hann frames of ``n_fft`` samples every ``hop``, as
            |rfft|**2 / (n_fft / 2)**2 (a full-scale sine: 0.25 in its bin).
        sr: sample rate in Hz.
        n_fft: frame length.
        hop: frame hop in samples.
        f_low: lowest band edge in Hz (see ``bark_bands``).
        f_high: highest band edge in Hz (bins above it are not limited).
    """
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    to_spl = (spl_scale(window) * n_fft / 2.0) ** 2
    bins, centres = bark_bands(sr, n_fft, f_low, f_high)
    energy = band_energy(power * to_spl * ear_weights(sr, n_fft), bins)
    allowed = masking_threshold(energy, centres, hop / sr) / np.maximum(energy, 1e-20)
    limit = 20.0 * np.log10(1.0 + np.sqrt(np.minimum(allowed, 1e6)))  # (T, bands) dB
    return np.where(bins >= 0, limit[:, np.maximum(bins, 0)], np.inf)


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
