"""The dialogue track of a video window: transcript -> timed lines -> speech, on the video timeline.

``dialogue_track`` is what the pipeline calls; ``plan_dialogue`` also returns the plan (where each line
went, at which rate, and the mouth activity it was fitted to) for reports and benchmarks.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.dialogue.mouth import MouthActivity, video_mouth
from v2a.dialogue.planner import Placement, parse_transcript, plan_lines
from v2a.dialogue.tts import MAX_RATE, MIN_RATE, Speech, fit_speech, synthesize
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.video import probe

__all__ = ["DialoguePlan", "dialogue_track", "plan_dialogue"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialoguePlan:
    """The spoken lines of a window.

    Attributes:
        placements: where each line goes (video timeline), in time order.
        speeches: the synthesised line for each placement.
        mouth: the mouth activity the lines were fitted to (None: timed transcript, no video, or no face
            mesh installed).
        start_s: window start on the video timeline.
        duration_s: window length.
        sample_rate: rate of the speech in Hz.
    """

    placements: list[Placement]
    speeches: list[Speech]
    mouth: MouthActivity | None
    start_s: float
    duration_s: float
    sample_rate: int

    def track(self) -> np.ndarray:
        """(S,) float32 speech of the window, S = round(duration_s * sample_rate); lines past its edges are cut."""
        sr = self.sample_rate
        out = np.zeros(round(self.duration_s * sr), np.float32)
        for place, speech in zip(self.placements, self.speeches, strict=True):
            at = round((place.start_s - self.start_s) * sr)
            wav = speech.wav[max(0, -at) :]
            at = max(0, at)
            piece = wav[: max(0, out.size - at)]
            if piece.size < wav.size:
                log.warning("the line %r runs past the end of the window and is cut", _short(place.text))
            out[at : at + piece.size] += piece
        return out


def plan_dialogue(
    video: str | os.PathLike | None,
    transcript: str,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int = DEFAULT_SPEC.sample_rate,
    engine: str = "auto",
    mouth: MouthActivity | None = None,
) -> DialoguePlan:
    """Parse a transcript, place its lines on the window and speak each at its fitted rate.

    Args:
        video: the video whose mouths time untimed lines (None: no picture, lines follow each other).
        transcript: plain text (a line per utterance), SRT or WebVTT content.
        start_s: window start on the video timeline.
        duration_s: window length (None: to the end of the video; required without a video).
        sample_rate: output rate in Hz.
        engine: speech engine, ``auto``, ``piper`` or ``espeak-ng``.
        mouth: precomputed mouth activity of the window (None: measured here when needed).

    Returns:
        The plan; ``plan.track()`` is the speech.

    Raises:
        InputError: a malformed transcript, or a bad window.
        ModelUnavailableError: no speech engine is installed.
    """
    lines = parse_transcript(transcript)
    start_s, duration_s = _window(video, start_s, duration_s)
    if mouth is None and video is not None and not lines[0].timed:
        try:
            mouth = video_mouth(video, start_s=start_s, duration_s=duration_s)
        except ModelUnavailableError as err:
            log.warning("cannot see mouths (%s); lines are placed one after another", err)
    natural = [synthesize(line.text, sample_rate=sample_rate, engine=engine) for line in lines]
    spans = mouth.spans() if mouth is not None else []
    placements = plan_lines(
        lines, [s.duration_s for s in natural], spans=spans, start_s=start_s, duration_s=duration_s,
        min_rate=MIN_RATE, max_rate=MAX_RATE,
    )  # fmt: skip
    speeches = [fit_speech(p.text, p.target_s, sample_rate=sample_rate, engine=engine) for p in placements]
    return DialoguePlan(placements, speeches, mouth, start_s, duration_s, sample_rate)


def dialogue_track(
    video: str | os.PathLike | None,
    transcript: str,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int = DEFAULT_SPEC.sample_rate,
    engine: str = "auto",
) -> np.ndarray:
    """The speech of a transcript on a window of a video, timed to its visible mouths (or to SRT/VTT cues).

    Args: as :func:`plan_dialogue`.

    Returns:
        (S,) float32 speech, S = round(duration_s * sample_rate), sample 0 at ``start_s``.
    """
    plan = plan_dialogue(
        video, transcript, start_s=start_s, duration_s=duration_s, sample_rate=sample_rate, engine=engine
    )
    return plan.track()


def _window(video: str | os.PathLike | None, start_s: float, duration_s: float | None) -> tuple[float, float]:
    """The window (start, length), checked against the video when there is one."""
    if not (isinstance(start_s, int | float) and math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"start_s must be a finite number >= 0, got {start_s!r}")
    if duration_s is not None and not (
        isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0
    ):
        raise InputError(f"duration_s must be a finite number > 0, got {duration_s!r}")
    if video is None:
        if duration_s is None:
            raise InputError("a dialogue track without a video needs duration_s")
        return float(start_s), float(duration_s)
    length = probe(video).duration_s
    if start_s >= length:
        raise InputError(f"start_s {start_s:g} s is past the end of the video ({length:.3f} s)")
    rest = length - start_s
    return float(start_s), float(rest if duration_s is None else min(duration_s, rest))


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
