"""Transcript parsing (plain, SRT, WebVTT), clear errors, and placing lines on cues or mouth spans."""

from __future__ import annotations

import itertools
import logging

import pytest

from v2a.dialogue.planner import PAUSE_S, Line, parse_transcript, plan_lines
from v2a.errors import InputError

SRT = """\ufeff1
00:00:01,000 --> 00:00:02,500
<i>Hello there.</i>

2
00:00:03,250 --> 00:00:05,000
How are you
today?
"""

VTT = """WEBVTT - a test

NOTE this is a comment
spanning two lines

intro
00:01.000 --> 00:02.500 align:start
<v Alice>Hello &amp; welcome.</v>

00:00:03.250 --> 00:00:05.000
<c.loud>Nice</c> to <00:00:04.000>see you.
"""


def test_srt_cues_keep_their_times_and_lose_their_markup() -> None:
    assert parse_transcript(SRT) == [
        Line("Hello there.", 1.0, 2.5),
        Line("How are you today?", 3.25, 5.0),
    ]


def test_webvtt_cues_skip_notes_ids_settings_and_tags() -> None:
    assert parse_transcript(VTT) == [
        Line("Hello & welcome.", 1.0, 2.5),
        Line("Nice to see you.", 3.25, 5.0),
    ]


def test_plain_text_is_one_utterance_per_line() -> None:
    lines = parse_transcript("  Look out!\r\n\r\nThat was   really loud.\n")
    assert lines == [Line("Look out!"), Line("That was really loud.")]
    assert not lines[0].timed


def test_srt_cues_out_of_order_are_sorted() -> None:
    text = "1\n00:00:04,000 --> 00:00:05,000\nsecond\n\n2\n00:00:01,000 --> 00:00:02,000\nfirst\n"
    assert [line.text for line in parse_transcript(text)] == ["first", "second"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no words"),
        ("\n \n\t\n", "no words"),
        ("hello\x00world", "not a text file"),
        ("1\n00:00:01 --> 00:00:02\nhi\n", "line 2: '00:00:01' is not a time"),
        ("1\n00:00:03,000 --> 00:00:02,000\nhi\n", "line 2: the cue ends"),
        ("1\n00:00:01,000 --> 00:00:02,000\n\n", "line 2: the cue has no text"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\nno times here\n", "line 5: a cue needs"),
        ("one\ntwo\n00:00:01,000 --> 00:00:02,000\nhi\n", "expected a cue number"),
        ("1\n00:00:01,000 --> 00:01:75,000\nhi\n", "above 59"),
        ("1\n00:00:01,000 -> 00:00:02,000 --> x\nhi\n", "cannot read the time line"),
        ("WEBVTT\n\n00:01.000 --> 00:00.500\nhi\n", "WebVTT transcript line 3: the cue ends"),
        ("x\n" * 501, "at most 500"),
    ],
)
def test_malformed_transcripts_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_transcript(text)


def test_timed_lines_are_placed_on_their_cues_inside_the_window() -> None:
    lines = parse_transcript(SRT + "\n3\n00:00:09,000 --> 00:00:10,000\nlater\n")
    placed = plan_lines(lines, [1.2, 1.5, 0.5], start_s=0.0, duration_s=8.0)
    assert [(p.text, p.start_s, p.target_s, p.source) for p in placed] == [
        ("Hello there.", 1.0, 1.5, "cue"),
        ("How are you today?", 3.25, 1.75, "cue"),
    ]  # the cue at 9 s is outside the 8 s window


def test_one_line_per_mouth_span_when_counts_match() -> None:
    lines = [Line("a"), Line("b")]
    placed = plan_lines(lines, [1.0, 1.5], spans=[(0.5, 1.6), (3.0, 4.4)], duration_s=6.0)
    assert [p.start_s for p in placed] == [0.5, 3.0]
    assert [p.source for p in placed] == ["mouth", "mouth"]
    assert placed[0].target_s == pytest.approx(1.1) and placed[1].target_s == pytest.approx(1.4)


def test_short_lines_share_a_long_span_and_a_short_stray_span_stays_silent() -> None:
    lines = [Line("a"), Line("b"), Line("c")]
    spans = [(0.2, 0.45), (1.0, 4.5)]  # a flicker of the lips, then a long speech
    placed = plan_lines(lines, [1.0, 1.0, 1.0], spans=spans, duration_s=6.0)
    assert placed[0].start_s == pytest.approx(1.0)
    for a, b in itertools.pairwise(placed):
        assert b.start_s == pytest.approx(a.start_s + a.target_s + PAUSE_S)
    assert placed[-1].start_s + placed[-1].target_s == pytest.approx(4.5)  # the span is filled


def test_a_long_line_covers_two_spans_split_by_a_breath() -> None:
    placed = plan_lines([Line("long")], [3.0], spans=[(1.0, 2.4), (2.7, 4.0)], duration_s=6.0)
    assert len(placed) == 1 and placed[0].start_s == 1.0 and placed[0].target_s == pytest.approx(3.0)


def test_rates_stay_within_bounds_and_lines_never_overlap() -> None:
    lines = [Line(str(i)) for i in range(4)]
    spans = [(0.5, 0.9), (1.0, 1.3), (5.0, 5.4)]  # far too short for 2 s lines
    placed = plan_lines(lines, [2.0] * 4, spans=spans, duration_s=8.0, min_rate=0.8, max_rate=1.35)
    assert len(placed) == 4
    for p in placed:
        assert 2.0 / 1.35 - 1e-6 <= p.target_s <= 2.0 / 0.8 + 1e-6
    for a, b in itertools.pairwise(placed):
        assert b.start_s >= a.start_s + a.target_s


def test_without_mouths_lines_follow_each_other_from_the_start(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="v2a.dialogue.planner"):
        placed = plan_lines([Line("a"), Line("b")], [1.0, 2.0], spans=[], start_s=2.0, duration_s=6.0)
    assert "no moving mouth" in caplog.text
    assert [p.source for p in placed] == ["sequential"] * 2
    assert placed[0].start_s == 2.0 and placed[1].start_s == pytest.approx(3.4)


def test_without_mouths_too_many_lines_are_sped_up(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="v2a.dialogue.planner"):
        fits = plan_lines([Line("a"), Line("b")], [3.0, 3.0], spans=[], duration_s=6.0)
    assert "fastest" not in caplog.text
    assert fits[1].start_s + fits[1].target_s == pytest.approx(6.0)  # sped up to end with the window
    with caplog.at_level(logging.WARNING, logger="v2a.dialogue.planner"):
        placed = plan_lines([Line("a"), Line("b")], [4.0, 4.0], spans=[], duration_s=5.0)
    assert placed[0].target_s == pytest.approx(4.0 / 1.35)
    assert "even at the fastest rate" in caplog.text
