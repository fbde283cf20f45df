"""Detection: find the keyed pattern in any excerpt, at any offset and speed, with an exact p-value.

For each analysis window (about 3, 6 and 12 s long, or the whole audio when shorter, overlapping, so any
3 s excerpt is covered and long marked stretches add up), the detector tries every hypothesis
h = (time scale, frequency scale, offset): 25 time scales from 0.94 to 1.06 with the bands unchanged
(time-stretch, pitch kept), 24 with the bands scaled to the nearest of 13 frequency scales (speed
change, pitch moves), and the 256 frame offsets of a block. It resamples the window's features to the
hypothesised original time axis, forms the 2 x 2 unit contrasts, folds them onto one block and
correlates the sync units with the key's signs:

    z_h = sum_u s_u x_u / sqrt(sum_u x_u**2)      (u over the sync units, s_u = +/-1 the key's signs)

For audio that does not carry this key's mark, the x_u do not depend on the signs, which are independent
fair coin flips, so z_h is a Rademacher sum and P(z_h >= z) <= (2 e^3 / 9) * P(N(0, 1) >= z) for every
audio (Pinelis 1994). The features' weights (``grid.features``) depend on the audio alone, so this holds
for them too. A weighted union bound over hypotheses and windows turns the scores into a p-value that
holds whatever the audio is: the false-positive rate it promises is a bound, not a fit (measured on
real unmarked audio by ``benchmarks/watermark_robustness.py``). The weights are fixed in advance: each
window length gets an equal share of the false-positive budget, split among its windows; within a
window, a quarter goes to the 9 offsets where an untouched (or only re-encoded, noisy or mixed) file
puts the mark, half to all offsets at unchanged speed (excerpts), a quarter to every hypothesis. Marks
that were not moved in time or speed so need z of about 5 instead of 6.

The payload is read at the best hypothesis of each detected window: the units of each coded bit give a
soft value weighted by the mark's reliability where they lie, estimated per region of about 3 s by 5
unit columns from the sync units and refined with the payload units' own posteriors (``_soft_bits``);
the longest detected windows that do not overlap are summed, and the decoder and the CRC do the rest.

The sub-bass layer (``subbass``: sync only, below the grid's bands) is searched too, with ``subbass.SHARE``
of the false-positive budget; the grid's windows share the rest. When only that layer finds the mark, as
for a rumble under noise, the segment is its best window, the speed is reported unchanged, and the payload
is read from the grid's best window (often only as ``payload_guess`` then).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.special import log_ndtr

from v2a.watermark import grid, subbass
from v2a.watermark.embed import _check_audio
from v2a.watermark.keys import DEFAULT_KEY, Layout, key_id, layout
from v2a.watermark.payload import CODED_BITS, decode, encode, payload_fields

DEFAULT_ALPHA = 1e-4  # detection threshold on the p-value: the false-positive rate per file
TIME_SCALES = tuple(round(0.94 + 0.005 * i, 3) for i in range(25))  # speed factors searched: 0.94..1.06
FREQ_SCALES = tuple(round(0.94 + 0.01 * i, 2) for i in range(13))  # band scales searched for speed changes
_UNIT_FREQ = FREQ_SCALES.index(1.0)  # the bands unmoved
CHUNK = grid.BLOCK_FRAMES // 4  # windows start and end on quarter-block boundaries (1.024 s)
_RESIDUES = grid.BLOCK_FRAMES // CHUNK
WINDOW_CHUNKS = (3, 6, 12)  # analysis window lengths: about 3, 6 and 12 s (or the whole audio if shorter)
# Share of the false-positive budget of a window spent on each family of hypotheses (weighted Bonferroni):
# the mark where it was embedded (unchanged speed, block start at the audio's start give or take an encoder
# delay), anywhere in time at unchanged speed (an excerpt), and anywhere at any speed.
FAMILY_SHARES = {"aligned": 0.25, "excerpt": 0.5, "any": 0.25}
ALIGNED_OFFSETS = tuple(o % grid.BLOCK_FRAMES for o in range(-3, 6))  # -48..+80 ms of frame -1
_SPAN_CHUNKS = 30  # long audio is scanned in spans of about 30 s (overlapping by the longest window)
_MARGIN = 32  # frames of context computed around a span (filters, window edges under a time scale)
_BATCH = 16  # windows correlated at once (bounds memory)
_PINELIS = 2.0 * math.e**3 / 9.0  # Rademacher-sum tail over Gaussian tail, at most this (Pinelis 1994)
_MIN_FRAMES = 2 * grid.CHIP_FRAMES
_RELIABILITY_REGION = (3, 5)  # (chunks, unit columns) over which the payload's reliability is estimated
_RELIABILITY_PASSES = 2  # refinements of that estimate with the payload bits' posteriors
_MIN_VARIANCE = 1e-3  # floor of a region's noise variance (a silent region has none)


def _hypotheses() -> tuple[tuple[float, int], ...]:
    """(time scale, index into FREQ_SCALES) pairs: tempo changes keep the bands, speed changes move them."""
    unit = _UNIT_FREQ
    nearest = [int(np.argmin([abs(f - t) for f in FREQ_SCALES])) for t in TIME_SCALES]
    pairs = [(t, unit) for t in TIME_SCALES] + list(zip(TIME_SCALES, nearest, strict=True))
    return tuple(dict.fromkeys(pairs))  # unique, in order


HYPOTHESES = _hypotheses()
_IDENTITY = HYPOTHESES.index((1.0, _UNIT_FREQ))  # the unchanged-speed hypothesis


@dataclass(frozen=True)
class Detection:
    """What the detector found.

    Attributes:
        detected: the p-value is below the threshold (``alpha``).
        p_value: probability that audio without this key's mark scores as high (an upper bound).
        payload: the 4 payload bytes when detected and their CRC checks, else None.
        payload_fields: readable payload (hex, model id, date) when ``payload`` is set, else None.
        segments: (start_s, end_s) stretches of the input where the mark was found.
        bit_confidence: fraction of received coded bits that agree with the decoded payload (1.0 clean,
            about 0.6 for noise); 0.0 when nothing was decoded.
        speed: estimated speed factor of the audio relative to the marked original (1.0: unchanged).
        pitch_shifted: whether the best match had frequencies moved with the speed (a resampled speed
            change) rather than kept (a tempo change).
        key_id: public id of the key that was searched for.
        note: why nothing could be found, when the audio is too short or silent; else None.
        decoded: the decoder's best guess at the payload even when the CRC fails (the per-bit most likely
            bits then, most of them right when the mark is weak); None when nothing was decoded.
    """

    @property
    def payload_guess(self) -> bytes | None:
        """The per-bit guess of a mark that was detected but whose payload failed its CRC, else None."""
        return self.decoded if self.detected and self.payload is None else None

    detected: bool
    p_value: float
    payload: bytes | None
    payload_fields: dict | None
    segments: list[tuple[float, float]] = field(default_factory=list)
    bit_confidence: float = 0.0
    speed: float = 1.0
    pitch_shifted: bool = False
    key_id: str = ""
    note: str | None = None
    decoded: bytes | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict: detected, p_value, payload (hex or null), payload_fields, segments, ...

        ``payload_guess`` (hex) is set only when the mark was found but its payload failed the CRC.
        """
        guess = self.payload_guess
        return {
            "detected": self.detected,
            "p_value": self.p_value,
            "payload": self.payload.hex() if self.payload is not None else None,
            "payload_fields": self.payload_fields,
            "payload_guess": guess.hex() if guess is not None else None,
            "segments": [[round(a, 3), round(b, 3)] for a, b in self.segments],
            "bit_confidence": round(self.bit_confidence, 4),
            "speed": self.speed,
            "pitch_shifted": self.pitch_shifted,
            "key_id": self.key_id,
            "note": self.note,
        }


@dataclass(frozen=True)
class _Match:
    """The best hypothesis of one analysis window."""

    start: int  # first frame of the window
    frames: int
    z: float
    log_p: float  # log of the window's p-value (corrected for its hypotheses, then for the windows)
    # (chunks, rows, UNIT_COLS) float32 unit values times the key's signs (``_window_units``), and their roles
    aligned: np.ndarray
    role: np.ndarray
    speed: float
    pitch_shifted: bool


def detect(
    wav: np.ndarray, sr: int, *, key: str | bytes = DEFAULT_KEY, alpha: float = DEFAULT_ALPHA
) -> Detection:
    """Look for the watermark of ``key`` in audio.

    Args:
        wav: (S,) or (C, S) float waveform at ``sr`` (channels are averaged).
        sr: sample rate in Hz.
        key: the key the mark was embedded with.
        alpha: p-value threshold for ``detected`` (the false-positive rate per call).

    Returns:
        The detection result.

    Raises:
        InputError: the waveform or rate is invalid, or the key is empty.
    """
    wav = _check_audio(wav, sr)
    keyed = layout(key)
    kid = key_id(key)
    x16 = grid.to_grid_rate(wav, sr)
    frames = 1 + max(0, x16.size - grid.N_FFT) // grid.HOP
    if x16.size < grid.N_FFT or frames < _MIN_FRAMES:
        return Detection(False, 1.0, None, None, key_id=kid, note="audio is too short to hold a watermark")
    windows = _windows(frames)
    shares = _window_shares(windows)
    grid_share = math.log(1.0 - subbass.SHARE)  # the rest of the budget goes to the sub-bass layer
    matches = [
        dataclasses.replace(
            m, log_p=m.log_p - math.log(shares[m.start // CHUNK, m.frames // CHUNK]) - grid_share
        )
        for span in _spans(windows)
        for m in _scan(x16, span, keyed)
    ]
    sub_log_p, sub_span = subbass.log_p_value(x16, key)
    sub_log_p -= math.log(subbass.SHARE)
    if not matches:  # nothing in the grid's bands: only the sub-bass layer can speak
        p_value = min(1.0, math.exp(min(0.0, sub_log_p)))
        if p_value < alpha:
            return Detection(True, p_value, None, None, segments=[sub_span], key_id=kid)
        silent = float(np.max(np.abs(x16))) < 10.0 ** (grid.SILENCE_DB / 20.0)
        note = "audio is silent" if silent else "audio has no sound above 200 Hz, where the payload lives"
        return Detection(False, p_value, None, None, key_id=kid, note=note)
    best = min(matches, key=lambda m: m.log_p)
    p_value = min(1.0, math.exp(min(0.0, best.log_p, sub_log_p)))
    detected = p_value < alpha
    found = [m for m in matches if m.log_p < math.log(alpha)]
    soft = _combine(found or [best])
    decoded, crc_ok = decode(soft)
    agreement = float(np.mean((soft > 0) == (encode(decoded) > 0)))
    payload = decoded if detected and crc_ok else None
    return Detection(
        detected=detected,
        p_value=p_value,
        payload=payload,
        payload_fields=payload_fields(payload) if payload is not None else None,
        segments=(_segments(found, x16.size) if found else [sub_span]) if detected else [],
        bit_confidence=agreement,
        speed=best.speed if found else 1.0,
        pitch_shifted=best.pitch_shifted if found else False,
        key_id=kid,
        decoded=decoded,
    )


def _windows(frames: int) -> list[tuple[int, int]]:
    """(first chunk, chunks) of every analysis window of a ``frames``-long feature sequence."""
    total = math.ceil(frames / CHUNK)
    out: list[tuple[int, int]] = []
    for length in WINDOW_CHUNKS:
        if length >= total:
            out.append((0, total))
            break
        starts = list(range(0, total - length + 1, length // 2))
        if starts[-1] + length < total:
            starts.append(total - length)
        out.extend((s, length) for s in starts)
    return out


def _window_shares(windows: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """Share of the false-positive budget of each window: equal per window length, split among its windows."""
    lengths = sorted({n for _, n in windows})
    counts = {n: sum(length == n for _, length in windows) for n in lengths}
    return {(s, n): 1.0 / (len(lengths) * counts[n]) for s, n in windows}


def _spans(windows: list[tuple[int, int]]) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Group windows into spans of at most ``_SPAN_CHUNKS`` chunks: (first chunk, end chunk, windows)."""
    spans: dict[int, list[tuple[int, int]]] = {}
    stride = _SPAN_CHUNKS - max(WINDOW_CHUNKS)
    for start, length in windows:
        spans.setdefault(start // stride, []).append(
            (start, length)
        )  # ends within the span: stride + longest
    return [
        (min(s for s, _ in group), max(s + n for s, n in group), group) for _, group in sorted(spans.items())
    ]


def _scan(x16: np.ndarray, span: tuple[int, int, list[tuple[int, int]]], keyed: Layout) -> list[_Match]:
    """Best hypothesis of each window of one span."""
    first, end, windows = span
    f0 = max(0, first * CHUNK - _MARGIN)
    piece = x16[f0 * grid.HOP : (end * CHUNK + _MARGIN) * grid.HOP + grid.N_FFT]
    feats = grid.features(grid.power_spectrogram(piece), FREQ_SCALES, floor_weights=True)
    if not feats.active[_UNIT_FREQ].any():
        return []
    prefix, chunk0 = _unit_prefix(feats.values, f0, first, end)  # (Q, H, NC + 1, S, C, CHUNK // S), (H,)
    scales = np.array([t for t, _ in HYPOTHESES])
    h = np.arange(len(HYPOTHESES))
    matches = []
    for i in range(0, len(windows), _BATCH):
        batch = windows[i : i + _BATCH]
        starts = np.array([s for s, _ in batch])[:, None]
        ends = np.array([s + n for s, n in batch])[:, None]
        j0 = np.clip(np.rint(starts * scales).astype(int) - chunk0, 0, prefix.shape[2] - 1)  # (W, H)
        j1 = np.clip(np.rint(ends * scales).astype(int) - chunk0, 0, prefix.shape[2] - 1)
        folded = np.concatenate([part[h, j1] - part[h, j0] for part in prefix], axis=-1)  # (W, H, S, C, R)
        for w, (best_h, offset, z, log_p) in enumerate(_best(folded, keyed)):
            aligned, role = _window_units(
                prefix, chunk0[best_h], (j0[w, best_h], j1[w, best_h]), best_h, offset, keyed
            )
            start, length = batch[w]
            scale, f = HYPOTHESES[best_h]
            matches.append(
                _Match(start * CHUNK, length * CHUNK, z, log_p, aligned, role, scale, f != _UNIT_FREQ)
            )
    return matches


def _unit_prefix(values: np.ndarray, f0: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit contrasts on the original time axis of every hypothesis, as running sums over chunks.

    Original frame u was heard at received frame u / scale; the features are read there by linear
    interpolation. The contrast of the unit starting at frame u is chip(u) - chip(u + 4) in the even band
    of each pair minus the same in the odd band, chip(u) being the sum of frames u..u+3. Original chunks
    of CHUNK frames are counted from the start of the audio; chunk c belongs at position c mod Q of a
    block, so summing the chunks of a window by residue folds the window onto one block. Frames are
    laid out as (S, C, rows): frame 8 * row + s of a chunk, S = 8 frames per unit row, so that a folded
    block is (S, C, UNIT_ROWS) and ``_correlate`` needs no copy.

    Args:
        values: (F, T, B) features of a piece of audio for every frequency scale.
        f0: the audio frame where the piece starts.
        first: first chunk (received time) of the span.
        end: end chunk (received time) of the span.

    Returns:
        ``(prefix, chunk0)``: (Q, H, NC + 1, S, UNIT_COLS, CHUNK // S) running sums over the chunks of
        each residue class, per hypothesis, and (H,) the global original-time index of local chunk 0.
    """
    n_frames = values.shape[1]
    scales = np.array([t for t, _ in HYPOTHESES])
    freqs = np.array([f for _, f in HYPOTHESES])
    lows = np.floor(first * scales).astype(int) - 1
    count = int(np.max(np.ceil(end * scales).astype(int) + 1 - lows))
    frames = count * CHUNK + 2 * grid.CHIP_FRAMES  # unit contrasts look 8 frames ahead
    pos = (lows[:, None] * CHUNK + np.arange(frames)[None, :]) / scales[:, None] - f0  # (H, frames)
    inside = (pos >= 0) & (pos <= n_frames - 1)
    left = np.clip(np.floor(pos).astype(int), 0, n_frames - 1)
    right = np.minimum(left + 1, n_frames - 1)
    frac = np.where(inside, pos - left, 0.0).astype(np.float32)[..., None]
    keep = inside[..., None].astype(np.float32) - frac  # weight of the left frame, 0 outside the piece
    flat = values.reshape(-1, values.shape[2])  # (F * T, B): rows gathered by np.take, fastest
    base = freqs[:, None] * n_frames
    resampled = np.take(flat, base + left, axis=0) * keep + np.take(flat, base + right, axis=0) * frac
    chips = sum(resampled[:, j : frames - grid.CHIP_FRAMES + 1 + j] for j in range(grid.CHIP_FRAMES))
    in_time = chips[:, : -grid.CHIP_FRAMES] - chips[:, grid.CHIP_FRAMES :]  # chip minus the next chip
    units = in_time[:, : count * CHUNK, 0::2] - in_time[:, : count * CHUNK, 1::2]  # (H, count * CHUNK, C)
    step = 2 * grid.CHIP_FRAMES  # frames per unit row
    units = units.reshape(len(HYPOTHESES), count, CHUNK // step, step, grid.UNIT_COLS)
    units = units.transpose(0, 1, 3, 4, 2)  # (H, count, S, C, rows per chunk)
    residue = (lows[:, None] + np.arange(count)[None, :]) % _RESIDUES  # (H, count)
    prefix = np.zeros((_RESIDUES, len(HYPOTHESES), count + 1, *units.shape[2:]), dtype=np.float32)
    rows = np.arange(len(HYPOTHESES))
    for j in range(count):  # running sums; a loop over chunks is faster than cumsum on this layout
        prefix[:, :, j + 1] = prefix[:, :, j]
        prefix[residue[:, j], rows, j + 1] += units[:, j]
    return prefix, lows


def _best(units: np.ndarray, keyed: Layout) -> list[tuple[int, int, float, float]]:
    """(hypothesis, offset, z, log p-value) of the best match of each window.

    Args:
        units: (W, H, S, UNIT_COLS, UNIT_ROWS) folded unit contrasts: [..., s, j, m] is the unit of
            column j that starts at block frame S * m + s.
        keyed: the key's layout.
    """
    sync = keyed.sync.astype(np.float32)
    num = _correlate(units, _circulant(sync * keyed.signs))  # (W, H, offsets)
    den = np.sqrt(np.maximum(_correlate(units * units, _circulant(sync)), 0.0))
    z = np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)  # (W, H, offsets)
    out = []
    for scores in z:
        h, offset, log_p = _most_significant(scores)
        out.append((h, offset, float(scores[h, offset]), log_p))
    return out


def _window_units(
    prefix: np.ndarray, low: int, chunks: tuple[int, int], h: int, offset: int, keyed: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """A window's unit contrasts at one hypothesis and offset, chunk by chunk, times the key's signs.

    Args:
        prefix: the running sums of ``_unit_prefix``.
        low: the original-time index of local chunk 0 under hypothesis ``h``.
        chunks: (first, end) local chunks of the window.
        h: the hypothesis.
        offset: the block frame where the pattern starts.
        keyed: the key's layout.

    Returns:
        ``(aligned, role)``: (chunks, rows, UNIT_COLS) unit values times their signs (a sync unit is the
        mark's amplitude plus noise) and the key's role of each unit (-1 sync, else its coded bit).
    """
    row, s = divmod(offset, 2 * grid.CHIP_FRAMES)
    rows = CHUNK // (2 * grid.CHIP_FRAMES)  # unit rows per chunk
    aligned, roles = [], []
    for j in range(int(chunks[0]), max(int(chunks[1]), int(chunks[0]) + 1)):
        residue = (low + j) % _RESIDUES
        pattern_rows = (residue * rows + np.arange(rows) - row) % grid.UNIT_ROWS
        units = prefix[residue, h, j + 1, s] - prefix[residue, h, j, s]  # (UNIT_COLS, rows)
        aligned.append(units.T * keyed.signs[pattern_rows])
        roles.append(keyed.role[pattern_rows])
    return np.stack(aligned), np.stack(roles)


def _soft_bits(aligned: np.ndarray, role: np.ndarray) -> np.ndarray:
    """(CODED_BITS,) log-likelihood ratios of the coded bits from a window's aligned units.

    A unit reads a * b + n: a the mark's amplitude where it lies, b = +/-1 (1 for a sync unit, the sign of
    its coded bit for a payload unit) and n noise of variance v. Both change in time (the host falls
    quiet, another sound starts) and across bands, so they are estimated over ``_RELIABILITY_REGION``
    around each chunk and column: v from the mean square of all units (a**2 + v), a from the sync units,
    then again with the payload units weighted by the posterior mean of their bits (decision-directed
    estimation, as pilot-aided receivers do). Each unit counts 2 a / v times its value (maximal-ratio
    combining), which makes the sums log-likelihood ratios.

    Args:
        aligned: (chunks, rows, UNIT_COLS) output of ``_window_units``.
        role: (chunks, rows, UNIT_COLS) the key's role of each unit.
    """
    aligned = aligned.astype(np.float64)
    sync = role < 0
    payload = ~sync
    bit = np.maximum(role, 0)

    def regional(values: np.ndarray) -> np.ndarray:  # (chunks, rows, C) -> (chunks, C) regional means
        return uniform_filter(values.sum(axis=1), _RELIABILITY_REGION, mode="constant")

    mean_square = regional(aligned**2) / np.maximum(regional(np.ones_like(aligned)), 1e-9)
    sign = sync.astype(np.float64)  # expected sign of each unit's mark: known for sync units only, at first
    for _ in range(_RELIABILITY_PASSES + 1):
        amplitude = np.maximum(regional(aligned * sign) / np.maximum(regional(sign**2), 1e-9), 0.0)
        variance = np.maximum(mean_square - amplitude**2, _MIN_VARIANCE)
        received = aligned * (2.0 * amplitude / variance)[:, None, :]
        soft = np.bincount(bit[payload], weights=received[payload], minlength=CODED_BITS)
        sign = np.where(sync, 1.0, np.tanh(soft / 2.0)[bit])
    return soft


def _most_significant(z: np.ndarray) -> tuple[int, int, float]:
    """(hypothesis, offset, log p-value) of the best of one window's (H, BLOCK_FRAMES) scores.

    Each family of ``FAMILY_SHARES`` gets its share of the window's budget, split evenly among its
    hypotheses (a weighted Bonferroni correction: fixed weights keep the union bound exact).
    """
    families = {
        "aligned": [(_IDENTITY, o) for o in ALIGNED_OFFSETS],
        "excerpt": [(_IDENTITY, int(np.argmax(z[_IDENTITY])))],
        "any": [divmod(int(np.argmax(z)), z.shape[1])],
    }
    sizes = {"aligned": len(ALIGNED_OFFSETS), "excerpt": z.shape[1], "any": z.size}
    best = (0, 0, math.inf)
    for name, candidates in families.items():
        h, offset = max(candidates, key=lambda c: z[c])
        log_p = math.log(_PINELIS * sizes[name] / FAMILY_SHARES[name]) + float(log_ndtr(-float(z[h, offset])))
        if log_p < best[2]:
            best = (int(h), int(offset), log_p)
    return best


def _correlate(units: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(W, H, BLOCK_FRAMES) scores sum_i,j p_i,j * u_j(o + S * i) of every offset o = S * k + s.

    Args:
        units: (W, H, S, UNIT_COLS, UNIT_ROWS) unit contrasts folded onto a block (see ``_best``).
        pattern: (UNIT_COLS * UNIT_ROWS, UNIT_ROWS) output of ``_circulant`` for a (UNIT_ROWS, UNIT_COLS)
            pattern p.
    """
    W, H, S, C, R = units.shape
    out = units.reshape(-1, C * R) @ pattern  # (W * H * S, R k): one matrix product
    return out.reshape(W, H, S, R).transpose(0, 1, 3, 2).reshape(W, H, S * R)  # offset o = S * k + s


def _circulant(pattern: np.ndarray) -> np.ndarray:
    """(UNIT_COLS * UNIT_ROWS, UNIT_ROWS) float32 matrix c[(j, m), k] = pattern[(m - k) mod UNIT_ROWS, j]."""
    rows = pattern.shape[0]
    shifted = np.stack([np.roll(pattern, k, axis=0) for k in range(rows)], axis=-1)  # (R m, C j, R k)
    return np.ascontiguousarray(shifted.transpose(1, 0, 2).reshape(-1, rows), dtype=np.float32)


def _combine(matches: list[_Match]) -> np.ndarray:
    """Sum the soft bits of the longest (then strongest) windows that do not overlap.

    A long window holds more of the mark, and ``_soft_bits`` already weighs down its weak stretches. Only
    these windows' soft bits are computed: most windows of a long file are never read for the payload.
    """
    chosen: list[_Match] = []
    for match in sorted(matches, key=lambda m: (-m.frames, -m.z)):
        if all(match.start + match.frames <= c.start or c.start + c.frames <= match.start for c in chosen):
            chosen.append(match)
    return np.sum([_soft_bits(m.aligned, m.role) for m in chosen], axis=0)


def _segments(found: list[_Match], samples: int) -> list[tuple[float, float]]:
    """Merged (start_s, end_s) spans of the shortest detected windows (or of the best longer one)."""
    shortest = min(m.frames for m in found)
    end_s = samples / grid.RATE
    spans = sorted(
        (m.start * grid.FRAME_S, min((m.start + m.frames) * grid.FRAME_S + grid.N_FFT / grid.RATE, end_s))
        for m in found
        if m.frames == shortest
    )
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
