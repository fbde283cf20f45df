"""PEAQ-style noise-to-mask ratio: zero change is inaudible, added noise grows 1 dB per dB and crosses the
threshold where hearing says it should, bad input gets an InputError."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.data.procedural_audio import noise_texture
from v2a.errors import InputError
from v2a.eval.masking import noise_to_mask

SR = 24_000


@pytest.fixture(scope="module")
def rain() -> np.ndarray:
    return (0.3 * noise_texture("rain", 6.0, sample_rate=SR, rng=np.random.default_rng(0))).astype(np.float32)


def with_noise(clean: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.random.default_rng(1).standard_normal(clean.size)
    return clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)


def test_no_change_is_not_heard(rain):
    report = noise_to_mask(rain, rain.copy(), SR)
    assert report.nmr_db == float("-inf") and report.disturbed_frames == 0.0 and report.frames > 200


def test_noise_grows_one_db_per_db_and_crosses_the_threshold(rain):
    reports = {snr: noise_to_mask(rain, with_noise(rain, snr), SR) for snr in (60, 40, 20, 0)}
    steps = np.diff([reports[snr].nmr_db for snr in (60, 40, 20, 0)])
    assert np.all(np.abs(steps - 20.0) < 3.0)
    assert reports[60].nmr_db < -15.0 and reports[60].disturbed_frames < 0.05
    assert reports[0].nmr_db > 5.0 and reports[0].disturbed_frames > 0.95


def test_silent_reference_frames_are_skipped(rain):
    padded = np.concatenate([np.zeros(3 * SR, np.float32), rain])
    changed = np.concatenate([np.zeros(3 * SR), with_noise(rain, 30)])
    padded_report, plain_report = (
        noise_to_mask(padded, changed, SR),
        noise_to_mask(rain, with_noise(rain, 30), SR),
    )
    assert abs(padded_report.frames - plain_report.frames) <= 1  # the frame over the edge may count
    assert abs(padded_report.nmr_db - plain_report.nmr_db) < 0.5
    assert np.isnan(noise_to_mask(np.zeros(SR), np.zeros(SR), SR).nmr_db)


def test_bad_input_raises_input_error(rain):
    with pytest.raises(InputError):
        noise_to_mask(np.stack([rain, rain]), rain, SR)
    with pytest.raises(InputError):
        noise_to_mask(rain, rain, 4000)
