"""The dialogue track end to end: cues honoured, lines timed to a talking head's mouth, fallbacks, errors."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from v2a.dialogue import dialogue_track, plan_dialogue
from v2a.errors import InputError
from v2a.eval.speech import lip_sync

SR = 24_000
SRT = """1
00:00:01,000 --> 00:00:02,600
Hello there, my friend.

2
00:00:03,500 --> 00:00:05,000
How are you today?
"""


def _onsets(track: np.ndarray) -> list[float]:
    """Start times of the lines in a track (silences of 0.6 s or more split them; pauses inside a line
    are shorter)."""
    loud = np.flatnonzero(np.abs(track) > 0.01)
    starts = [loud[0]] + [b for a, b in itertools.pairwise(loud) if b - a > 0.6 * SR]
    return [s / SR for s in starts]


def test_srt_cues_are_spoken_at_their_times() -> None:
    track = dialogue_track(None, SRT, duration_s=6.0)
    assert track.shape == (6 * SR,) and track.dtype == np.float32
    onsets = _onsets(track)
    assert len(onsets) == 2
    np.testing.assert_allclose(onsets, [1.0, 3.5], atol=0.03)
    loud = np.flatnonzero(np.abs(track) > 0.01) / SR
    assert loud.max() < 5.05  # the second line was fitted into its cue


def test_a_window_shifts_the_cues_and_drops_those_outside() -> None:
    track = dialogue_track(None, SRT, start_s=3.0, duration_s=3.0)
    np.testing.assert_allclose(_onsets(track), [0.5], atol=0.03)


def test_a_plain_line_is_timed_to_the_talking_heads_mouth(talking_head) -> None:
    pytest.importorskip("mediapipe", reason="the face mesh is not installed")
    plan = plan_dialogue(talking_head.video, talking_head.transcript)
    (place,) = plan.placements
    assert place.source == "mouth"
    assert abs(place.start_s - talking_head.speech[0]) < 0.25
    track = plan.track()
    assert track.shape == (5 * SR,)
    # the speech follows the drawn mouth (ground truth) much better than the same speech at another time
    r = lip_sync(talking_head.mouth, talking_head.fps, track, SR)["lip_corr"]
    speech = plan.speeches[0].wav
    rng = np.random.default_rng(0)
    control = []
    for at in rng.uniform(0, 5.0 - speech.size / SR, 10):
        moved = np.zeros_like(track)
        moved[round(at * SR) : round(at * SR) + speech.size] = speech
        control.append(lip_sync(talking_head.mouth, talking_head.fps, moved, SR)["lip_corr"])
    assert r > 0.3 and r > np.mean(control) + 0.2, (r, control)


def test_without_a_face_lines_follow_each_other(sample_video, caplog) -> None:
    pytest.importorskip("mediapipe", reason="the face mesh is not installed")
    with caplog.at_level(logging.WARNING):
        plan = plan_dialogue(sample_video, "Look out!\nThat was really loud.", duration_s=4.0)
    assert "no moving mouth" in caplog.text
    assert [p.source for p in plan.placements] == ["sequential"] * 2
    assert plan.placements[0].start_s == 0.0
    np.testing.assert_allclose(_onsets(plan.track())[0], 0.0, atol=0.03)


def test_bad_inputs_are_input_errors(sample_video) -> None:
    with pytest.raises(InputError, match="cue ends"):
        dialogue_track(None, "1\n00:00:02,000 --> 00:00:01,000\nhi\n", duration_s=3.0)
    with pytest.raises(InputError, match="needs duration_s"):
        dialogue_track(None, "hello")
    with pytest.raises(InputError, match="past the end"):
        dialogue_track(sample_video, "hello", start_s=1e4)
    with pytest.raises(InputError, match="duration_s"):
        dialogue_track(None, "hello", duration_s=-1.0)
