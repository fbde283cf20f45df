"""The ear model's masking threshold behaves as hearing does: spread upwards more than downwards, rising with
level, wider upwards for louder maskers, and lingering for tens of milliseconds after a sound stops."""

from __future__ import annotations

import numpy as np

from v2a.audio.masking import band_energy, bark_bands, ear_weights, masking_threshold, spl_scale

SR, N_FFT, HOP = 16_000, 512, 256


def threshold_of(wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, B) masking threshold in dB SPL of a waveform, and (B,) band centres."""
    window = np.hanning(N_FFT + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(wav, N_FFT)[::HOP]
    power = (np.abs(np.fft.rfft(frames * window, axis=1)) * spl_scale(window)) ** 2 * ear_weights(SR, N_FFT)
    bins, centres = bark_bands(SR, N_FFT)
    return 10 * np.log10(masking_threshold(band_energy(power, bins), centres, HOP / SR)), centres


def tone(freq: float, amplitude: float, seconds: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def test_a_tone_masks_more_above_its_frequency_than_below():
    mask, centres = threshold_of(tone(1000.0, 0.5))
    steady = mask[5:-5].mean(axis=0)
    at = int(np.argmin(np.abs(centres - 1000.0)))
    below = int(np.argmin(np.abs(centres - 700.0)))
    above = int(np.argmin(np.abs(centres - 1400.0)))  # about as many Bark above as 700 Hz is below
    assert steady[at] > steady[above] > steady[below]
    assert steady[at] > 60.0  # a -6 dBFS tone at 92 dB SPL full scale masks its own band strongly


def test_louder_maskers_raise_the_threshold_and_spread_further_up():
    quiet, centres = threshold_of(tone(1000.0, 0.05))
    loud, _ = threshold_of(tone(1000.0, 0.5))
    quiet, loud = quiet[5:-5].mean(axis=0), loud[5:-5].mean(axis=0)
    at = int(np.argmin(np.abs(centres - 1000.0)))
    above, below = (int(np.argmin(np.abs(centres - f))) for f in (1500.0, 700.0))
    assert 17.0 < loud[at] - quiet[at] < 23.0  # 20 dB more tone, about 20 dB more threshold at the tone
    assert loud[above] - quiet[above] > 25.0  # a flatter upper slope: more than 20 dB more above the tone,
    assert loud[below] - quiet[below] < 20.0  # while the lower slope does not depend on level


def test_forward_masking_lingers_after_the_sound_stops():
    burst = np.concatenate([tone(1000.0, 0.5, 0.5), np.zeros(SR // 2)])
    mask, centres = threshold_of(burst)
    at = int(np.argmin(np.abs(centres - 1000.0)))
    last_loud = (SR // 2 - N_FFT) // HOP  # the last frame wholly inside the tone
    after = mask[last_loud + 3 : last_loud + 6, at]  # 16-80 ms after the tone's frames end
    silence = mask[-1, at]
    assert np.all(after > silence + 10.0)
    assert np.all(np.diff(mask[last_loud + 2 : last_loud + 8, at]) < 0)  # and decays


def test_bands_extend_below_80_hz_without_moving_the_rest():
    """A lower ``f_low`` adds bands below PEAQ's 80 Hz and keeps every band above it; ``f_high`` cuts the top."""
    n_fft = 2048
    bins, centres = bark_bands(SR, n_fft)
    low_bins, low_centres = bark_bands(SR, n_fft, f_low=10.0)
    added = len(low_centres) - len(centres)
    assert added > 0 and np.all(low_centres[:added] < 80.0)
    np.testing.assert_allclose(low_centres[added:], centres)
    assert np.all(low_bins[bins >= 0] == bins[bins >= 0] + added)
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    assert np.all(low_bins[(freqs > 15.0) & (freqs < 80.0)] >= 0)  # the lowest bins now belong to a band
    cut_bins, cut_centres = bark_bands(SR, n_fft, f_low=10.0, f_high=1500.0)
    assert cut_centres.max() < 1500.0 and np.all(cut_bins[freqs > 1500.0] == -1)
    np.testing.assert_array_equal(cut_bins[freqs < 1000.0], low_bins[freqs < 1000.0])
