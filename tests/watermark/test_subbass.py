"""The sub-bass layer: it carries the mark where the grid's bands have too little sound, and nowhere else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from v2a.eval.masking import noise_to_mask
from v2a.watermark import detect, embed, grid, subbass
from v2a.watermark.attacks import white_noise

SR = 24_000
KEY = "foley-public-watermark-v1"


@pytest.fixture(scope="module")
def rumble() -> np.ndarray:
    """10 s of noise low-passed at 120 Hz (4th order): everything above 500 Hz lies 45 dB or more down."""
    noise = np.random.default_rng(7).standard_normal(10 * SR)
    wav = sosfilt(butter(4, 120, "lowpass", fs=SR, output="sos"), noise)
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def _noisy(wav: np.ndarray, seed: int = 1) -> np.ndarray:
    return white_noise(20.0)(wav, SR, np.random.default_rng(seed))[0]


def test_rumble_under_white_noise_is_found_by_the_sub_bass_layer(rumble, monkeypatch):
    noisy = _noisy(embed(rumble, SR))
    found = detect(noisy, SR)
    assert found.detected and found.p_value < 1e-6
    assert found.segments == [(0.0, pytest.approx(10.0, abs=0.01))]
    assert not detect(_noisy(rumble), SR).detected
    # The grid alone loses it: its bands hold the rumble's faint upper edge, which the noise drowns.
    monkeypatch.setattr(subbass, "log_p_value", lambda x16, key: (0.0, (0.0, x16.size / grid.RATE)))
    assert not detect(noisy, SR).detected


def test_sub_bass_layer_stays_out_of_audio_the_grid_can_carry(speech, rain, tune):
    """Where the bands above 200 Hz hold as much energy as the sub-bass, this layer adds (almost) nothing."""
    for host in (speech, rain, tune):
        x16 = grid.to_grid_rate(host, SR)
        sub = subbass.mark(x16, KEY)
        assert (
            10 * np.log10(np.sum(x16.astype(np.float64) ** 2) / max(np.sum(sub**2, dtype=np.float64), 1e-30))
            > 40
        )


def test_sub_bass_mark_follows_the_host_and_stays_masked(rumble):
    x16 = grid.to_grid_rate(rumble, SR)
    sub = subbass.mark(x16, KEY)
    snr = 10 * np.log10(np.sum(x16.astype(np.float64) ** 2) / np.sum(sub.astype(np.float64) ** 2))
    assert 10 < snr < 30
    spectrum = np.abs(np.fft.rfft(sub)) ** 2
    freqs = np.fft.rfftfreq(sub.size, 1 / grid.RATE)
    assert spectrum[(freqs > 20) & (freqs < 250)].sum() > 0.98 * spectrum.sum()  # it lives in its bands
    report = noise_to_mask(x16, x16 + sub, grid.RATE, f_low=subbass.MASK_F_LOW)
    assert report.nmr_db < -6 and report.disturbed_frames < 0.1


def test_sub_bass_p_values_are_calibrated_and_keyed(rumble):
    marked16 = grid.to_grid_rate(embed(rumble, SR), SR)
    assert subbass.log_p_value(marked16, KEY)[0] < math.log(1e-8)
    clean16 = grid.to_grid_rate(rumble, SR)
    p_values = []
    rng = np.random.default_rng(0)
    for i in range(30):
        start = int(rng.integers(0, clean16.size - 3 * grid.RATE))
        p_values.append(math.exp(subbass.log_p_value(clean16[start : start + 3 * grid.RATE], f"key-{i}")[0]))
        p_values.append(math.exp(subbass.log_p_value(marked16, f"other-{i}")[0]))  # a wrong key sees noise
    assert np.mean(np.array(p_values) < 0.05) <= 0.05 + 0.06  # binomial slack for 60 draws


def test_sub_bass_budget_and_windows():
    assert 0 < subbass.SHARE < 0.5
    assert sum(subbass.FAMILY_SHARES.values()) == pytest.approx(1.0)
    for seconds in (1.0, 10.0, 24.0, 61.0):
        units = 1 + (int(seconds * grid.RATE) - subbass.N_FFT) // subbass.HOP - 2 * subbass.CHIP_FRAMES + 1
        windows = subbass._windows(units)
        assert windows[0][0] == 0 and windows[-1][1] == units  # the whole audio is covered
        assert all(b - a <= max(subbass.BLOCK_FRAMES, units) for a, b in windows)
    assert subbass.log_p_value(np.zeros(1000, np.float32), KEY)[0] == 0.0  # too short: no evidence


def test_long_audio_is_searched_in_windows_that_find_a_marked_stretch(rumble):
    """In 50 s of rumble with a 20 s marked stretch, a 16 s window inside it finds it and says where."""
    clean = np.concatenate([rumble, rumble[::-1], rumble, rumble[::-1], rumble])
    track = clean.copy()
    track[2 * rumble.size : 4 * rumble.size] = embed(clean[2 * rumble.size : 4 * rumble.size], SR)
    log_p, (start_s, end_s) = subbass.log_p_value(grid.to_grid_rate(track, SR), KEY)
    assert log_p < math.log(1e-6)
    assert start_s > 15.0 and end_s < 45.0 and end_s - start_s < 20.0  # a window over the marked stretch
    assert subbass.log_p_value(grid.to_grid_rate(clean, SR), KEY)[0] > math.log(1e-3)


def test_audio_with_nothing_above_200_hz_is_marked_and_found_by_the_sub_bass_layer_alone():
    """Quiet sound between 30 and 120 Hz only: the grid's bands hold nothing above the silence floor, so the
    sub-bass layer alone carries the mark; no payload is claimed and the note says why for unmarked audio."""
    noise = np.fft.rfft(np.random.default_rng(11).standard_normal(10 * SR))
    freqs = np.fft.rfftfreq(10 * SR, 1 / SR)
    noise[(freqs < 30.0) | (freqs > 120.0)] = 0.0
    wav = np.fft.irfft(noise, n=10 * SR)
    wav = (0.01 * wav / np.abs(wav).max()).astype(np.float32)
    assert not grid.features(grid.power_spectrogram(grid.to_grid_rate(wav, SR))).active.any()
    found = detect(embed(wav, SR), SR)
    assert found.detected and found.p_value < 1e-6
    assert found.payload is None and found.segments == [(0.0, pytest.approx(10.0, abs=0.01))]
    clean = detect(wav, SR)
    assert not clean.detected and "no sound above 200 Hz" in clean.note
