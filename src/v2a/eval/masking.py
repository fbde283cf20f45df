"""Noise-to-mask ratio: how far a change to audio (a watermark, a codec) sits below what the ear can hear.

PEAQ's noise-to-mask ratio (ITU-R BS.1387-1) on the ear model of ``v2a.audio.masking``: the noise is the
difference of the ear-weighted magnitude spectra of reference and test, grouped into the model's 0.25 Bark
bands, and each band's noise is divided by the reference's masking threshold there. Frames are about 43 ms
(PEAQ's 2048 samples at 48 kHz) and half overlapping; frames where the reference is near silence are
skipped, as in PEAQ.

``nmr_db`` is the mean over frames and bands of noise / mask, in dB: negative means the change lies under
the threshold on average. ``disturbed_frames`` is PEAQ's RelDistFrames, the share of frames where some band's
noise passes its mask by more than 1.5 dB: the figure that says how often a careful listener could hear it.
For scale, on the watermark benchmark's tracks MP3 at 128 kb/s scores about -20 dB and 0.04, MP3 at 64 kb/s
about -13 dB and 0.07 (``benchmarks/watermark_robustness.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from v2a.audio.masking import F_LOW, band_energy, bark_bands, ear_weights, masking_threshold, spl_scale
from v2a.errors import InputError

FRAME_S = 2048 / 48_000  # frame length (PEAQ's 2048 samples at 48 kHz)
SILENT_FRAME_DB = -70.0  # reference frames below this (dBFS, RMS) are skipped
DISTURBED_DB = 1.5  # a band whose noise passes its mask by this much disturbs its frame


@dataclass(frozen=True)
class MaskingReport:
    """Noise-to-mask figures of one (reference, test) pair.

    Attributes:
        nmr_db: total noise-to-mask ratio in dB; -inf when the two are identical, NaN when all is silent.
        disturbed_frames: share of the frames with a band more than ``DISTURBED_DB`` above its mask.
        frames: number of frames that counted (the reference was not near silence).
    """

    nmr_db: float
    disturbed_frames: float
    frames: int


def noise_to_mask(reference: np.ndarray, test: np.ndarray, sr: int, f_low: float = F_LOW) -> MaskingReport:
    """Noise-to-mask ratio of ``test`` against ``reference`` (same rate, mono).

    Args:
        reference: (S,) original waveform in [-1, 1].
        test: (S,) changed waveform (a longer one is cut, a shorter one zero-padded).
        sr: sample rate in Hz (at least 8 kHz).
        f_low: lowest band edge in Hz (PEAQ's 80 Hz by default; lower to judge changes in the sub-bass).

    Raises:
        InputError: the arrays are not one-dimensional, or the rate is too low.
    """
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.ndim != 1 or test.ndim != 1:
        raise InputError(f"noise_to_mask takes mono (S,) arrays, got {reference.shape} and {test.shape}")
    if sr < 8000:
        raise InputError(f"noise_to_mask needs a rate of at least 8 kHz, got {sr}")
    n = reference.size
    test = test[:n] if test.size >= n else np.pad(test, (0, n - test.size))
    n_fft = max(64, 2 * round(FRAME_S * sr / 2))
    ref_mag, audible = _magnitude(reference, sr, n_fft)
    test_mag, _ = _magnitude(test, sr, n_fft)
    bins, centres = bark_bands(sr, n_fft, f_low)
    mask = masking_threshold(band_energy(ref_mag**2, bins), centres, (n_fft // 2) / sr)
    ratio = band_energy((ref_mag - test_mag) ** 2, bins)[audible] / mask[audible]
    if ratio.shape[0] == 0:
        return MaskingReport(float("nan"), float("nan"), 0)
    total = float(np.mean(ratio))
    disturbed = float(np.mean(np.max(ratio, axis=1) > 10.0 ** (DISTURBED_DB / 10.0)))
    nmr_db = float(10.0 * np.log10(total)) if total > 0 else float("-inf")
    return MaskingReport(nmr_db, disturbed, int(ratio.shape[0]))


def _magnitude(wav: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, K) ear-weighted SPL magnitude spectra of half-overlapping Hann frames, and (T,) which frames are
    not near silence."""
    if wav.size < n_fft:
        wav = np.pad(wav, (0, n_fft - wav.size))
    window = np.hanning(n_fft + 1)[:-1]
    frames = sliding_window_view(wav, n_fft)[:: n_fft // 2]
    rms_db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) * spl_scale(window)
    return spectrum * np.sqrt(ear_weights(sr, n_fft)), rms_db > SILENT_FRAME_DB
