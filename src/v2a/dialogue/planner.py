"""Read a transcript and decide when each line is spoken.

Transcripts come in three forms (``parse_transcript`` tells them apart):

- **plain text**: one utterance per line, no times;
- **SRT**: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` followed by their text;
- **WebVTT**: a ``WEBVTT`` header, then cues ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]``
  (``NOTE``/``STYLE``/``REGION`` blocks and ``<v Name>``/``<i>`` tags are skipped).

Timed cues are honoured: a line starts at its cue and its speaking rate is fitted to the cue's length.
Untimed lines go, in order, onto the spans of visible mouth movement (``MouthActivity.spans``): a
dynamic programme assigns consecutive lines to consecutive spans (several short lines may share a span,
one long line may cover several spans with short pauses between them, a span may stay silent) so that
the speaking rate each line needs stays closest to natural, cost ``|log(span / speech)|`` per group plus
a price for every second of moving mouth left silent. Without visible mouths the lines follow each
other from the start of the window, with a warning.
"""

from __future__ import annotations

import html
import itertools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from v2a.errors import InputError

__all__ = ["Line", "Placement", "parse_transcript", "plan_lines"]

log = logging.getLogger(__name__)

MAX_LINES = 500
MAX_TRANSCRIPT_CHARS = 100_000
PAUSE_S = 0.25  # between two lines spoken in one span
SEQUENTIAL_PAUSE_S = 0.4  # between lines placed without mouths
_SILENT_MOUTH_COST = 0.3  # per second of mouth movement that gets no speech (vs |log rate| of a line)
_GROUP_COST = 0.05  # per extra line or span in a group: prefer one line per span when it fits as well
_MAX_GROUP = 4  # lines (and spans) one step of the assignment may join
_TIME = re.compile(r"^\s*(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*$")
_ARROW = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # <i>, <v Name>, <00:01.000>, {\an8}


@dataclass(frozen=True)
class Line:
    """One utterance of a transcript.

    Attributes:
        text: the words.
        start_s: cue start on the video timeline (None: untimed).
        end_s: cue end (None: untimed).
    """

    text: str
    start_s: float | None = None
    end_s: float | None = None

    @property
    def timed(self) -> bool:
        return self.start_s is not None


@dataclass(frozen=True)
class Placement:
    """Where one line goes.

    Attributes:
        text: the words.
        start_s: when the speech starts, on the video timeline.
        target_s: how long it should last (its rate is fitted to this).
        source: ``cue`` (transcript times), ``mouth`` (a span of mouth movement) or ``sequential``.
    """

    text: str
    start_s: float
    target_s: float
    source: str


# ---- parsing ----


def parse_transcript(text: str) -> list[Line]:
    """Lines of a plain-text, SRT or WebVTT transcript.

    Args:
        text: the file's content.

    Returns:
        The lines; timed ones are sorted by start.

    Raises:
        InputError: empty, binary or over-long content, or a malformed cue (the message names its line).
    """
    if not isinstance(text, str):
        raise InputError(f"a transcript must be text, got {type(text).__name__}")
    if "\x00" in text:
        raise InputError("the transcript is not a text file (it contains NUL bytes)")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise InputError(f"the transcript is longer than {MAX_TRANSCRIPT_CHARS} characters")
    rows = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((r.strip() for r in rows if r.strip()), "")
    if first.startswith("WEBVTT"):
        lines = _parse_cues(rows, vtt=True)
    elif any("-->" in r for r in rows):
        lines = _parse_cues(rows, vtt=False)
    else:
        lines = [Line(t) for t in (_clean(r) for r in rows) if t]
    if not lines:
        raise InputError("the transcript has no words to speak")
    if len(lines) > MAX_LINES:
        raise InputError(f"the transcript has {len(lines)} lines; at most {MAX_LINES} are supported")
    if lines[0].timed:
        lines.sort(key=lambda line: line.start_s)
        for a, b in itertools.pairwise(lines):
            if b.start_s < a.end_s - 1e-6:
                log.warning("transcript cues overlap at %.2f s: both lines are spoken at once", b.start_s)
    return lines


def _parse_cues(rows: list[str], *, vtt: bool) -> list[Line]:
    """Cues of an SRT or WebVTT file: blocks separated by blank lines."""
    kind = "WebVTT" if vtt else "SRT"
    lines: list[Line] = []
    blocks = _blocks(rows)
    if vtt:
        blocks = blocks[1:]  # the header block (WEBVTT and its metadata)
    for lineno, block in blocks:
        if vtt and re.match(r"^(NOTE|STYLE|REGION)\b", block[0]):
            continue
        at = next((i for i, r in enumerate(block[:3]) if "-->" in r), None)
        if at is None:
            raise InputError(f"{kind} transcript line {lineno}: a cue needs a 'start --> end' time line")
        if at and not vtt and (at > 1 or not block[0].strip().isdigit()):
            raise InputError(f"{kind} transcript line {lineno}: expected a cue number, got {block[0]!r}")
        where = lineno + at
        match = _ARROW.match(block[at])
        if match is None:
            raise InputError(f"{kind} transcript line {where}: cannot read the time line {block[at]!r}")
        start, end = _seconds(match.group(1), kind, where), _seconds(match.group(2), kind, where)
        if end <= start:
            raise InputError(
                f"{kind} transcript line {where}: the cue ends ({end:g} s) before it starts ({start:g} s)"
            )
        words = " ".join(t for t in (_clean(r) for r in block[at + 1 :]) if t)
        if not words:
            raise InputError(f"{kind} transcript line {where}: the cue has no text")
        lines.append(Line(words, start, end))
    return lines


def _blocks(rows: list[str]) -> list[tuple[int, list[str]]]:
    """Groups of non-blank rows with the 1-based line number of their first row."""
    blocks: list[tuple[int, list[str]]] = []
    for i, row in enumerate(rows, start=1):
        if not row.strip():
            continue
        if blocks and rows[i - 2].strip():
            blocks[-1][1].append(row)
        else:
            blocks.append((i, [row]))
    return blocks


def _seconds(stamp: str, kind: str, where: int) -> float:
    match = _TIME.match(stamp)
    if match is None:
        raise InputError(f"{kind} transcript line {where}: {stamp!r} is not a time like 00:01:02,500")
    h, m, s, frac = match.groups()
    if int(m) > 59 or int(s) > 59:
        raise InputError(f"{kind} transcript line {where}: {stamp!r} has minutes or seconds above 59")
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac) / 10 ** len(frac)


def _clean(row: str) -> str:
    """Words of a text row: markup tags removed, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(_TAG.sub("", row)).split())


# ---- planning ----


def plan_lines(
    lines: Sequence[Line],
    natural_s: Sequence[float],
    *,
    spans: Sequence[tuple[float, float]] = (),
    start_s: float = 0.0,
    duration_s: float,
    min_rate: float = 0.8,
    max_rate: float = 1.35,
) -> list[Placement]:
    """Place the lines of a transcript on a window of the video timeline.

    Args:
        lines: the transcript (all timed or all untimed).
        natural_s: each line's length at the natural speaking rate, in seconds.
        spans: ``(start_s, end_s)`` of visible mouth movement, in time order (untimed lines only).
        start_s: window start on the video timeline.
        duration_s: window length.
        min_rate: slowest speaking rate a line may be fitted to.
        max_rate: fastest.

    Returns:
        One placement per line spoken in the window, in time order. Timed lines outside the window are
        left out; a placement may run past the window's end (the caller cuts it).
    """
    if len(lines) != len(natural_s):
        raise ValueError(f"{len(lines)} lines but {len(natural_s)} natural durations")
    if not lines:
        return []
    end_s = start_s + duration_s
    if lines[0].timed:
        inside = [
            (ln, d)
            for ln, d in zip(lines, natural_s, strict=True)
            if ln.end_s > start_s and ln.start_s < end_s
        ]
        if len(inside) < len(lines):
            left = len(lines) - len(inside)
            log.info("%d transcript cues fall outside %.2f-%.2f s: not spoken", left, start_s, end_s)
        return [Placement(ln.text, ln.start_s, ln.end_s - ln.start_s, "cue") for ln, _ in inside]
    clipped = [(max(a, start_s), min(b, end_s)) for a, b in spans if min(b, end_s) - max(a, start_s) > 0.05]
    if not clipped:
        log.warning("no moving mouth is visible: the lines are spoken one after another from %.2f s", start_s)
        return _sequential(lines, natural_s, start_s, duration_s, max_rate)
    groups = _assign(list(natural_s), clipped, min_rate, max_rate)
    return _place(lines, natural_s, clipped, groups, min_rate, max_rate)


def _sequential(
    lines: Sequence[Line], natural_s: Sequence[float], start_s: float, duration_s: float, max_rate: float
) -> list[Placement]:
    """Lines one after another from the window start, sped up (up to ``max_rate``) when they would not fit."""
    speech, pauses = sum(natural_s), SEQUENTIAL_PAUSE_S * (len(lines) - 1)
    rate = min(max(speech / max(duration_s - pauses, 1e-6), 1.0), max_rate)
    if speech / rate + pauses > duration_s + 1e-6:
        need = speech / rate + pauses
        log.warning("the lines need %.1f s even at the fastest rate; the window has %.1f s", need, duration_s)
    out, t = [], start_s
    for line, d in zip(lines, natural_s, strict=True):
        out.append(Placement(line.text, t, d / rate, "sequential"))
        t += d / rate + SEQUENTIAL_PAUSE_S
    return out


def _assign(
    natural: list[float], spans: list[tuple[float, float]], min_rate: float, max_rate: float
) -> list[tuple[int, int, int, int]]:
    """Monotone assignment of line groups to span groups; returns ``(i, k, j, l)``: lines i..k-1 on spans j..l-1.

    Dynamic programme over (lines placed, spans used). A step puts lines i..k-1 on spans j..l-1 (at most
    four of each; their union from the first start to the last end) at cost ``|log(available / needed)|``
    with rates beyond the bounds counted double, plus ``_GROUP_COST`` per extra line or span; or leaves span j silent at
    ``_SILENT_MOUTH_COST`` per second. Lines left over when the spans run out are put after the last one.
    """
    n, m = len(natural), len(spans)
    cost = np.full((n + 1, m + 1), math.inf)
    back: dict[tuple[int, int], tuple[int, int, bool]] = {}
    cost[0, 0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i, j]
            if not math.isfinite(here):
                continue
            if j < m:  # span j stays silent
                c = here + _SILENT_MOUTH_COST * (spans[j][1] - spans[j][0])
                if c < cost[i, j + 1]:
                    cost[i, j + 1], back[(i, j + 1)] = c, (i, j, False)
            for k in range(i + 1, min(n, i + _MAX_GROUP) + 1):
                need = sum(natural[i:k]) + PAUSE_S * (k - i - 1)
                for l in range(j + 1, min(m, j + _MAX_GROUP) + 1):  # noqa: E741
                    have = spans[l - 1][1] - spans[j][0]
                    c = (
                        here
                        + _fit_cost(have / need, min_rate, max_rate)
                        + _GROUP_COST * (k - i - 1 + l - j - 1)
                    )
                    if c < cost[k, l]:
                        cost[k, l], back[(k, l)] = c, (i, j, True)
    # the best end state: every line placed, or some left over to go after the last span
    best = min(
        ((i, m) for i in range(n + 1) if math.isfinite(cost[i, m])),
        key=lambda s: cost[s] + 2.0 * (n - s[0]),
    )
    groups = []
    state = best
    while state != (0, 0):
        i, j, used = back[state]
        if used:
            groups.append((i, state[0], j, state[1]))
        state = (i, j)
    groups.reverse()
    if best[0] < n:
        groups.append((best[0], n, m, m))  # no span left: after the last one
    return groups


def _fit_cost(ratio: float, min_rate: float, max_rate: float) -> float:
    """Cost of speaking at ``1 / ratio`` of the natural length: |log ratio|, doubled beyond the rate bounds."""
    rate = 1.0 / ratio
    base = abs(math.log(ratio))
    over = max(0.0, math.log(rate / max_rate)) + max(0.0, math.log(min_rate / rate))
    return base + 2 * over


def _place(
    lines: Sequence[Line],
    natural_s: Sequence[float],
    spans: list[tuple[float, float]],
    groups: list[tuple[int, int, int, int]],
    min_rate: float,
    max_rate: float,
) -> list[Placement]:
    """Times and target lengths of each line from the assignment, never overlapping."""
    out: list[Placement] = []
    free_at = -math.inf  # when the previous line ends
    for i, k, j, l in groups:  # noqa: E741
        if j < l:
            t0, t1, source = spans[j][0], spans[l - 1][1], "mouth"
        else:  # after the last span
            t0, t1, source = spans[-1][1] + PAUSE_S, math.inf, "sequential"
        need = sum(natural_s[i:k])
        pauses = PAUSE_S * (k - i - 1)
        rate = (
            1.0 if math.isinf(t1) else float(np.clip(need / max(t1 - t0 - pauses, 1e-3), min_rate, max_rate))
        )
        t = t0
        for line, d in zip(lines[i:k], natural_s[i:k], strict=True):
            t = max(t, free_at + PAUSE_S)
            out.append(Placement(line.text, t, d / rate, source))
            free_at = t + d / rate
            t = free_at + PAUSE_S
    return out
