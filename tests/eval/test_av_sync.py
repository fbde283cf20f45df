"""Audio-visual lag: ~0 for the true soundtrack of a bouncing square, the shift for a shifted one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from eval_clips import SR, shift

from v2a.errors import ModelUnavailableError
from v2a.eval.sync import (
    av_lag,
    envelope_lag,
    learned_offset_estimator,
    motion_from_frames,
    reference_lag,
    video_motion,
)


def test_motion_lag_is_near_zero_for_the_truth_and_follows_a_shift(clips):
    for clip in clips:
        motion = video_motion(clip.video)
        truth = av_lag(clip.wav, SR, motion)
        assert abs(truth.lag_s) < 0.05, clip.id
        for seconds in (0.2, -0.3):
            moved = av_lag(shift(clip.wav, seconds), SR, motion)
            assert moved.lag_s == pytest.approx(seconds, abs=0.06), (clip.id, seconds)


def test_lag_is_undefined_for_silence_and_for_a_still_video(clips):
    motion = video_motion(clips[0].video)
    silent = av_lag(np.zeros_like(clips[0].wav), SR, motion)
    assert math.isnan(silent.lag_s) and silent.confidence == 0.0
    frames = np.zeros((50, 64, 64, 3), np.uint8)
    still = motion_from_frames(frames, np.arange(50) / 25.0, 25.0)
    assert not still.strength.any()
    assert math.isnan(av_lag(clips[0].wav, SR, still).lag_s)


def test_unrelated_audio_scores_a_lower_correlation_than_the_truth(clips):
    motion = video_motion(clips[0].video)
    truth = av_lag(clips[0].wav, SR, motion)
    other = av_lag(clips[1].wav, SR, motion)
    assert other.confidence < truth.confidence


def test_reference_lag_measures_the_shift_against_the_soundtrack(clips):
    wav = clips[1].wav
    assert reference_lag(wav, wav, SR).lag_s == pytest.approx(0.0, abs=0.005)
    assert reference_lag(shift(wav, 0.137), wav, SR).lag_s == pytest.approx(0.137, abs=0.01)
    assert reference_lag(shift(wav, -0.25), wav, SR).lag_s == pytest.approx(-0.25, abs=0.01)


def test_envelope_lag_recovers_a_fractional_shift_of_a_spike_train():
    fps = 25.0
    t = np.arange(200) / fps
    motion = sum(np.exp(-0.5 * ((t - c) / 0.03) ** 2) for c in (1.0, 2.3, 4.1, 6.0))
    audio = sum(np.exp(-0.5 * ((t - c - 0.1) / 0.03) ** 2) for c in (1.0, 2.3, 4.1, 6.0))
    est = envelope_lag(audio, motion, fps)
    assert est.lag_s == pytest.approx(0.1, abs=0.01) and est.confidence > 0.8


def test_learned_estimator_is_a_callable_or_a_clear_error():
    try:
        estimator = learned_offset_estimator()
    except ModelUnavailableError as err:
        assert "sync" in str(err)
    else:
        assert callable(estimator)
