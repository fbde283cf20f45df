"""Onset accuracy, AP and F1 against known event times, after the Greatest Hits protocol.

The protocol (Owens et al. 2016, "Visually Indicated Sounds"; as scored by CondFoleyGen and later V2A
papers): detect onsets in the audio, give each a confidence (its peak amplitude relative to the clip's
peak), suppress weaker onsets within 50 ms of a stronger one, then walk the reference onsets in time order
and match each to the most confident unused detection within ``±window``. Per clip:

- ``acc`` = matched references / references (the detection rate),
- ``ap`` = average precision of the detections ranked by confidence, recall counted against all
  references,
- ``f1`` = 2 TP / (2 TP + FN + FP).

One deliberate difference from the published scripts: they pass missed references to scikit-learn's AP as
positives with score 0, which the lowest threshold then "retrieves", so a silent track scores AP 1.0 and
misses inflate AP in general. Here a missed reference is never retrieved (detection-style AP), so silence
scores 0 and AP never exceeds what the detections earn.

The usual window is ±0.3 s; ``STRICT_WINDOW_S`` (±0.05 s, about one video frame at 25 fps) is the strict
variant, since ±0.3 s accepts audio that is visibly out of sync. Onsets come from the project's one
detector, ``v2a.data.onsets``; nothing here has weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from v2a.data.onsets import detect_onsets, merge_onsets

WINDOW_S = 0.3
STRICT_WINDOW_S = 0.05
NMS_S = 0.05  # detections closer than this to a more confident one are dropped
_CONFIDENCE_S = 0.05  # confidence = peak |x| within this distance of the onset


@dataclass(frozen=True)
class OnsetScores:
    """Onset scores of one clip at one tolerance window.

    Attributes:
        acc: matched references / references.
        ap: average precision of the detections ranked by confidence (recall over all references).
        f1: 2 TP / (2 TP + FN + FP).
        n_ref: reference onsets.
        n_est: detected onsets (after suppression).
    """

    acc: float
    ap: float
    f1: float
    n_ref: int
    n_est: int


def reference_onsets(events: Iterable[Mapping[str, Any]], *, min_gap_s: float = 0.03) -> np.ndarray:
    """Onset times of a clip's events: every event's ``start_s`` except those marked ``"onset": false``
    (sustained sounds such as rain or an engine), with onsets closer than ``min_gap_s`` merged."""
    times = [float(e["start_s"]) for e in events if e.get("onset", True) is not False]
    return merge_onsets(np.asarray(times, dtype=np.float64), min_gap_s=min_gap_s)


def detect_scored_onsets(wav: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Onsets of a waveform with confidences, after non-maximum suppression.

    Args:
        wav: (S,) mono waveform.
        sr: its rate in Hz.

    Returns:
        ``(times, confidence)``: (N,) ascending onset times in seconds and (N,) confidences in [0, 1].
    """
    wav = np.asarray(wav, dtype=np.float32)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak <= 0:
        return np.zeros(0), np.zeros(0)
    times = detect_onsets(wav, sr)
    half = max(1, round(_CONFIDENCE_S * sr))
    conf = np.array(
        [np.max(np.abs(wav[max(0, round(t * sr) - half) : round(t * sr) + half + 1]), initial=0.0) / peak
         for t in times]
    )  # fmt: skip
    keep: list[int] = []
    for i in np.argsort(-conf, kind="stable"):
        if all(abs(times[i] - times[j]) >= NMS_S for j in keep):
            keep.append(int(i))
    keep.sort()
    return times[keep], conf[keep]


def score_onsets(
    reference: np.ndarray, times: np.ndarray, confidence: np.ndarray, *, window_s: float = WINDOW_S
) -> OnsetScores:
    """Score detections against reference onsets (see the module docstring).

    Args:
        reference: (R,) reference onset times in seconds, R >= 1.
        times: (N,) detected onset times in seconds.
        confidence: (N,) their confidences (> 0).
        window_s: tolerance: a match has |detection - reference| <= window_s.

    Returns:
        The clip's scores.
    """
    reference = np.sort(np.asarray(reference, dtype=np.float64))
    times = np.asarray(times, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if reference.size == 0:
        raise ValueError("score_onsets needs at least one reference onset")
    free = np.ones(times.size, dtype=bool)
    for ref in reference:
        near = np.flatnonzero(free & (np.abs(times - ref) <= window_s))
        if near.size:
            free[near[np.argmax(confidence[near])]] = False
    hits = int(times.size - free.sum())
    misses = reference.size - hits
    false_alarms = int(free.sum())
    return OnsetScores(
        acc=hits / reference.size,
        ap=average_precision(~free, confidence, positives=reference.size),
        f1=2 * hits / (2 * hits + misses + false_alarms),
        n_ref=int(reference.size),
        n_est=int(times.size),
    )


def average_precision(truth: np.ndarray, scores: np.ndarray, *, positives: int | None = None) -> float:
    """Area under the precision-recall curve of ranked detections, as a step function over distinct score
    thresholds: sum over thresholds of (recall gain) x precision.

    Args:
        truth: (N,) bool, True for detections that match a reference.
        scores: (N,) their confidences; higher means more confident.
        positives: number of references (None: ``truth.sum()``); references no detection matched are never
            retrieved, so they cap the recall below 1.

    Returns:
        AP in [0, 1] (0 when nothing is detected).
    """
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(truth.sum()) if positives is None else positives
    if positives <= 0:
        raise ValueError("average_precision needs at least one positive")
    if truth.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # a threshold admits a whole tie
    tp = np.cumsum(t)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def onset_metrics(
    wav: np.ndarray, sr: int, events: Iterable[Mapping[str, Any]], *, window_s: float = WINDOW_S,
    strict_window_s: float = STRICT_WINDOW_S,
) -> dict[str, float]:  # fmt: skip
    """All onset metrics of one clip.

    Args:
        wav: (S,) mono waveform to score.
        sr: its rate in Hz.
        events: the clip's events (``start_s``, optional ``onset``).
        window_s: the protocol window.
        strict_window_s: the strict window.

    Returns:
        ``onset_acc``, ``onset_ap``, ``onset_f1`` at ``window_s`` and ``onset_acc_strict``,
        ``onset_ap_strict``, ``onset_f1_strict`` at ``strict_window_s``; empty when the clip has no
        reference onsets (the metric is undefined there, as in the protocol).
    """
    reference = reference_onsets(events)
    if reference.size == 0:
        return {}
    times, conf = detect_scored_onsets(wav, sr)
    loose = score_onsets(reference, times, conf, window_s=window_s)
    strict = score_onsets(reference, times, conf, window_s=strict_window_s)
    return {
        "onset_acc": loose.acc,
        "onset_ap": loose.ap,
        "onset_f1": loose.f1,
        "onset_acc_strict": strict.acc,
        "onset_ap_strict": strict.ap,
        "onset_f1_strict": strict.f1,
    }
