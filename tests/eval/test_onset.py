"""Onset metrics: ground truth scores 1, and shifts, shuffles, noise and silence score lower."""

from __future__ import annotations

import numpy as np
import pytest
from eval_clips import SR, impacts_at

from v2a.eval.onset import (
    average_precision,
    detect_scored_onsets,
    onset_metrics,
    reference_onsets,
    score_onsets,
)

TIMES = np.array([0.4, 1.5, 2.6, 3.4])  # 1.1 s apart: a 0.5 s shift lands between them
EVENTS = [{"start_s": float(t), "label": "impact/wood"} for t in TIMES]


def _shifted(wav: np.ndarray, seconds: float) -> np.ndarray:
    n = round(seconds * SR)
    return np.concatenate([np.zeros(n, np.float32), wav[: wav.size - n]])


def test_ground_truth_scores_perfectly_and_corruptions_score_lower():
    truth = impacts_at(TIMES, 4.0, "wood")
    gt = onset_metrics(truth, SR, EVENTS)
    assert gt == {k: 1.0 for k in gt} and len(gt) == 6

    late = onset_metrics(_shifted(truth, 0.5), SR, EVENTS)  # outside even the loose window
    assert late["onset_acc"] < 0.5 and late["onset_f1"] < 0.5 and late["onset_ap"] < gt["onset_ap"]

    slightly_late = onset_metrics(_shifted(truth, 0.12), SR, EVENTS)  # inside ±0.3 s, outside ±0.05 s
    assert slightly_late["onset_acc"] == 1.0 and slightly_late["onset_acc_strict"] == 0.0
    assert slightly_late["onset_f1_strict"] == 0.0

    shuffled = onset_metrics(impacts_at(np.array([0.1, 0.9, 2.0, 3.0]), 4.0, "wood"), SR, EVENTS)
    assert shuffled["onset_acc_strict"] == 0.0 and shuffled["onset_f1_strict"] == 0.0

    rng = np.random.default_rng(0)
    noisy = truth + 0.3 * rng.standard_normal(truth.size).astype(np.float32)
    assert onset_metrics(noisy, SR, EVENTS)["onset_ap"] < 0.95

    silent = onset_metrics(np.zeros_like(truth), SR, EVENTS)
    assert silent == {k: 0.0 for k in gt}


def test_extra_onsets_lower_precision_but_not_accuracy():
    extra = impacts_at(np.r_[TIMES, [0.9, 2.0, 3.0, 3.8]], 4.0, "wood")
    scores = onset_metrics(extra, SR, EVENTS)
    assert scores["onset_acc"] == 1.0 and scores["onset_f1"] < 0.9


def test_clips_without_onset_events_are_not_scored():
    wav = impacts_at(TIMES, 4.0, "wood")
    assert onset_metrics(wav, SR, []) == {}
    assert onset_metrics(wav, SR, [{"start_s": 0.0, "label": "weather/rain", "onset": False}]) == {}


def test_reference_onsets_skip_sustained_events_and_merge_close_ones():
    events = [
        {"start_s": 1.0},
        {"start_s": 1.01},
        {"start_s": 2.0, "onset": False},
        {"start_s": 3.0, "onset": True},
    ]
    assert reference_onsets(events).tolist() == [1.0, 3.0]


def test_matching_takes_the_most_confident_detection_in_the_window():
    scores = score_onsets(np.array([1.0]), np.array([0.8, 1.1]), np.array([0.9, 0.2]), window_s=0.3)
    assert scores.acc == 1.0 and scores.f1 == pytest.approx(2 / 3) and scores.ap == 1.0
    missed = score_onsets(np.array([1.0, 3.0]), np.array([1.05, 2.0]), np.array([0.5, 0.9]), window_s=0.3)
    assert missed.acc == 0.5 and missed.ap == pytest.approx(0.5 * 0.5)  # false alarm first, then a hit
    with pytest.raises(ValueError, match="reference"):
        score_onsets(np.zeros(0), np.zeros(0), np.zeros(0))


def test_average_precision_matches_the_step_definition():
    # ranking: hit, false alarm, hit; a fourth reference was never detected
    truth = np.array([True, False, True])
    scores = np.array([0.9, 0.8, 0.7])
    expected = (1 / 4) * 1.0 + (1 / 4) * (2 / 3)
    assert average_precision(truth, scores, positives=4) == pytest.approx(expected)
    assert average_precision(np.array([True, True]), np.array([0.5, 0.4])) == 1.0
    assert average_precision(np.zeros(0, bool), np.zeros(0), positives=3) == 0.0
    tie = average_precision(np.array([True, False]), np.array([0.5, 0.5]), positives=1)
    assert tie == pytest.approx(0.5)  # a tie is admitted as a whole


def test_detections_carry_confidence_relative_to_the_peak():
    wav = impacts_at(np.array([0.5]), 2.0, "metal") + 0.3 * impacts_at(np.array([1.5]), 2.0, "metal")
    times, conf = detect_scored_onsets(wav, SR)
    assert np.abs(times - [0.5, 1.5]).max() < 0.01
    assert conf[0] == pytest.approx(1.0, abs=0.05) and 0.15 < conf[1] < 0.5
    assert detect_scored_onsets(np.zeros(SR, np.float32), SR)[0].size == 0
