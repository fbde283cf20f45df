"""The onset detector and onset matching, on synthesised clicks and impacts at known times."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.data.onsets import detect_onsets, match_onsets, merge_onsets, onset_strength
from v2a.data.procedural_audio import impact

SR = 24_000


def _clip(times, seconds=4.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    wav = noise * rng.standard_normal(int(seconds * SR))
    for t in times:
        hit = impact(
            str(rng.choice(["wood", "metal", "glass", "stone"])), velocity=rng.uniform(0.5, 3), rng=rng
        )
        start = round(t * SR)
        wav[start : start + hit.size] += hit[: wav.size - start]
    return wav.astype(np.float32)


def test_detects_impacts_at_their_times_within_a_few_ms():
    truth = np.array([0.31, 0.9, 1.25, 1.6, 2.2, 2.45, 3.3])
    found = detect_onsets(_clip(truth, noise=0.001), SR)
    score = match_onsets(truth, found, tolerance_s=0.03)
    assert score.precision == 1.0 and score.recall == 1.0
    assert np.abs(score.offsets_s).max() < 0.006


def test_quiet_hits_after_loud_ringing_ones_are_found():
    wav = _clip([0.5], seed=1)
    soft = impact("wood", velocity=0.3, rng=np.random.default_rng(2)) * 0.1
    start = round(0.9 * SR)
    wav[start : start + soft.size] += soft
    assert match_onsets([0.5, 0.9], detect_onsets(wav, SR)).recall == 1.0


def test_silence_and_steady_noise_have_no_onsets():
    assert detect_onsets(np.zeros(SR, np.float32), SR).size == 0
    hum = 0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR)
    hum[: SR // 100] *= np.linspace(0, 1, SR // 100)
    assert detect_onsets(hum.astype(np.float32), SR).size <= 1


def test_strength_shape_and_bad_input():
    flux, level = onset_strength(np.zeros(SR, np.float32), SR)
    assert flux.shape == level.shape == (SR // 128 + 1,)
    with pytest.raises(ValueError, match="mono"):
        onset_strength(np.zeros((2, SR), np.float32), SR)


def test_match_counts_one_to_one_closest_first():
    score = match_onsets([1.0, 2.0, 3.0], [1.01, 1.02, 2.5, 3.0], tolerance_s=0.03)
    assert score.matched == 2 and score.precision == 0.5 and score.recall == pytest.approx(2 / 3)
    assert sorted(np.round(score.offsets_s, 3)) == [0.0, 0.01]
    assert match_onsets([], []).f1 == 1.0
    assert match_onsets([1.0], []).recall == 0.0


def test_merge_keeps_the_first_of_close_onsets():
    assert merge_onsets([2.0, 1.0, 1.01, 1.05], min_gap_s=0.03).tolist() == [1.0, 1.05, 2.0]
