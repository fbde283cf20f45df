"""Detection: find the keyed pattern in any excerpt, at any offset and speed, with an exact p-value.

For each analysis window (about 3 s and 6 s long, overlapping, so any 3 s excerpt is covered and long
marked stretches add up), the detector tries every hypothesis h = (time scale, frequency scale, offset):
25 time scales from 0.94 to 1.06 with the bands unchanged (time-stretch, pitch kept), 24 with the bands
scaled to the nearest of 13 frequency scales (speed change, pitch moves), and the 256 frame offsets of a
block. It resamples the window's features to the hypothesised original time axis, forms the 2 x 2 unit
contrasts, folds them onto one block and correlates the sync units with the key's signs:

    z_h = sum_u s_u x_u / sqrt(sum_u x_u**2)      (u over the sync units, s_u = +/-1 the key's signs)

For audio that does not carry this key's mark, the x_u do not depend on the signs, which are independent
fair coin flips, so z_h is a Rademacher sum and P(z_h >= z) <= (2 e^3 / 9) * P(N(0, 1) >= z) for every
audio (Pinelis 1994). A union bound over all hypotheses and windows turns the largest z into a p-value
that holds whatever the audio is: the false-positive rate it promises is a bound, not a fit (measured on
real unmarked audio by ``benchmarks/watermark_robustness.py``).

The payload is read at the best hypothesis of each detected window: the two units of each coded bit give
a soft value, windows that do not overlap are summed with their estimated signal-to-noise weights, and
the Viterbi decoder and CRC do the rest.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy.special import log_ndtr

from v2a.watermark import grid
from v2a.watermark.embed import _check_audio
from v2a.watermark.keys import DEFAULT_KEY, Layout, key_id, layout
from v2a.watermark.payload import CODED_BITS, decode, encode, payload_fields

DEFAULT_ALPHA = 1e-4  # detection threshold on the p-value: the false-positive rate per file
TIME_SCALES = tuple(round(0.94 + 0.005 * i, 3) for i in range(25))  # speed factors searched: 0.94..1.06
FREQ_SCALES = tuple(round(0.94 + 0.01 * i, 2) for i in range(13))  # band scales searched for speed changes
CHUNK = grid.BLOCK_FRAMES // 4  # windows start and end on quarter-block boundaries (1.024 s)
_RESIDUES = grid.BLOCK_FRAMES // CHUNK
WINDOW_CHUNKS = (3, 6)  # analysis window lengths: about 3 and 6 s
_SPAN_CHUNKS = 30  # long audio is scanned in spans of about 30 s (overlapping by the longest window)
_MARGIN = 32  # frames of context computed around a span (filters, window edges under a time scale)
_BATCH = 16  # windows correlated at once (bounds memory)
_PINELIS = 2.0 * math.e**3 / 9.0  # Rademacher-sum tail over Gaussian tail, at most this (Pinelis 1994)
_MIN_FRAMES = 2 * grid.CHIP_FRAMES


def _hypotheses() -> tuple[tuple[float, int], ...]:
    """(time scale, index into FREQ_SCALES) pairs: tempo changes keep the bands, speed changes move them."""
    unit = FREQ_SCALES.index(1.0)
    nearest = [int(np.argmin([abs(f - t) for f in FREQ_SCALES])) for t in TIME_SCALES]
    pairs = [(t, unit) for t in TIME_SCALES] + list(zip(TIME_SCALES, nearest, strict=True))
    return tuple(dict.fromkeys(pairs))  # unique, in order


HYPOTHESES = _hypotheses()


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
        decoded: the decoder's best guess at the payload even when the CRC fails (for measuring bit
            accuracy); None when nothing was decoded.
    """

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
        """JSON-ready dict: detected, p_value, payload (hex or null), payload_fields, segments, ..."""
        return {
            "detected": self.detected,
            "p_value": self.p_value,
            "payload": self.payload.hex() if self.payload is not None else None,
            "payload_fields": self.payload_fields,
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
    log_p: float  # log of the window's own (hypotheses-corrected) p-value
    soft: np.ndarray  # (CODED_BITS,) soft coded bits, scaled as log-likelihood ratios
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
    matches = [m for span in _spans(windows) for m in _scan(x16, span, keyed)]
    if not matches:
        return Detection(False, 1.0, None, None, key_id=kid, note="audio is silent")
    log_total = math.log(len(windows))
    best = max(matches, key=lambda m: m.z)
    p_value = min(1.0, math.exp(min(0.0, best.log_p + log_total)))
    detected = p_value < alpha
    found = [m for m in matches if m.log_p + log_total < math.log(alpha)]
    soft = _combine(found or [best])
    decoded, crc_ok = decode(soft)
    agreement = float(np.mean((soft > 0) == (encode(decoded) > 0)))
    payload = decoded if detected and crc_ok else None
    return Detection(
        detected=detected,
        p_value=p_value,
        payload=payload,
        payload_fields=payload_fields(payload) if payload is not None else None,
        segments=_segments(found, x16.size) if detected else [],
        bit_confidence=agreement,
        speed=best.speed,
        pitch_shifted=best.pitch_shifted,
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
    feats = grid.features(grid.power_spectrogram(piece), FREQ_SCALES)
    if not feats.active[FREQ_SCALES.index(1.0)].any():
        return []
    prefix, chunk0 = _unit_prefix(feats.values, f0, first, end)  # (R, H, NC + 1, UNIT_COLS, CHUNK), (H,)
    scales = np.array([t for t, _ in HYPOTHESES])
    h = np.arange(len(HYPOTHESES))
    matches = []
    for i in range(0, len(windows), _BATCH):
        batch = windows[i : i + _BATCH]
        starts = np.array([s for s, _ in batch])[:, None]
        ends = np.array([s + n for s, n in batch])[:, None]
        j0 = np.clip(np.rint(starts * scales).astype(int) - chunk0, 0, prefix.shape[2] - 1)  # (W, H)
        j1 = np.clip(np.rint(ends * scales).astype(int) - chunk0, 0, prefix.shape[2] - 1)
        folded = np.concatenate(
            [part[h, j1] - part[h, j0] for part in prefix], axis=-1
        )  # (W, H, C, BLOCK_FRAMES)
        matches.extend(_best(folded, batch, keyed))
    return matches


def _unit_prefix(values: np.ndarray, f0: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit contrasts on the original time axis of every hypothesis, as running sums over chunks.

    Original frame u was heard at received frame u / scale; the features are read there by linear
    interpolation. The contrast of the unit starting at frame u is chip(u) - chip(u + 4) in the even band
    of each pair minus the same in the odd band, chip(u) being the sum of frames u..u+3. Original chunks
    of CHUNK frames are counted from the start of the audio; chunk c belongs at position c mod R of a
    block, so summing the chunks of a window by residue folds the window onto one block.

    Args:
        values: (F, T, B) features of a piece of audio for every frequency scale.
        f0: the audio frame where the piece starts.
        first: first chunk (received time) of the span.
        end: end chunk (received time) of the span.

    Returns:
        ``(prefix, chunk0)``: (R, H, NC + 1, UNIT_COLS, CHUNK) running sums over the chunks of each
        residue class, per hypothesis, and (H,) the global original-time index of local chunk 0.
    """
    n_frames = values.shape[1]
    scales = np.array([t for t, _ in HYPOTHESES])
    freqs = np.array([f for _, f in HYPOTHESES])
    lows = np.floor(first * scales).astype(int) - 1
    count = int(np.max(np.ceil(end * scales).astype(int) + 1 - lows))
    frames = count * CHUNK + 2 * grid.CHIP_FRAMES  # unit contrasts look 8 frames ahead
    pos = (lows[:, None] * CHUNK + np.arange(frames)[None, :]) / scales[:, None] - f0  # (H, frames)
    inside = ((pos >= 0) & (pos <= n_frames - 1))[..., None]
    left = np.clip(np.floor(pos).astype(int), 0, n_frames - 1)
    right = np.minimum(left + 1, n_frames - 1)
    frac = (pos - left)[..., None].astype(np.float32)
    resampled = values[freqs[:, None], left] * (1 - frac) + values[freqs[:, None], right] * frac
    resampled = np.where(inside, resampled, 0.0).astype(np.float32)  # (H, frames, B)
    chips = sum(resampled[:, j : frames - grid.CHIP_FRAMES + 1 + j] for j in range(grid.CHIP_FRAMES))
    in_time = chips[:, : -grid.CHIP_FRAMES] - chips[:, grid.CHIP_FRAMES :]  # chip minus the next chip
    units = in_time[:, : count * CHUNK, 0::2] - in_time[:, : count * CHUNK, 1::2]  # (H, count * CHUNK, C)
    units = units.reshape(len(HYPOTHESES), count, CHUNK, grid.UNIT_COLS).transpose(0, 1, 3, 2)
    residue = (lows[:, None] + np.arange(count)[None, :]) % _RESIDUES  # (H, count)
    prefix = np.zeros((_RESIDUES, len(HYPOTHESES), count + 1, grid.UNIT_COLS, CHUNK), dtype=np.float32)
    rows = np.arange(len(HYPOTHESES))
    for j in range(count):  # running sums; a loop over chunks is faster than cumsum on this layout
        prefix[:, :, j + 1] = prefix[:, :, j]
        prefix[residue[:, j], rows, j + 1] += units[:, j]
    return prefix, lows


def _best(units: np.ndarray, windows: list[tuple[int, int]], keyed: Layout) -> list[_Match]:
    """Best (hypothesis, offset) of each window, from its unit contrasts folded onto a block.

    Args:
        units: (W, H, UNIT_COLS, BLOCK_FRAMES) folded unit contrasts; frame axis = where a unit starts.
        windows: the (first chunk, chunks) of each window.
        keyed: the key's layout.
    """
    sync_signs, sync_mask = _sync_spectra(keyed)
    num = scipy.fft.irfft(_correlate(units, sync_signs), n=grid.BLOCK_FRAMES, axis=-1)
    den = scipy.fft.irfft(_correlate(units * units, sync_mask), n=grid.BLOCK_FRAMES, axis=-1)
    den = np.sqrt(np.maximum(den, 0.0))
    z = np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)  # (W, H, offsets)
    n_sync = int(keyed.sync.sum())
    unit1 = FREQ_SCALES.index(1.0)
    out = []
    for w, (start, length) in enumerate(windows):
        h, offset = np.unravel_index(int(np.argmax(z[w])), z[w].shape)
        best_z = float(z[w, h, offset])
        log_p = math.log(_PINELIS * z[w].size) + float(log_ndtr(-best_z))
        cells = units[w, h][:, _unit_index()[offset]].T  # (UNIT_ROWS, UNIT_COLS)
        amplitude = float(num[w, h, offset]) / n_sync  # mean mark contribution per sync unit
        noise = max(float(den[w, h, offset]) ** 2 / n_sync - amplitude**2, 1e-6)  # per-unit noise variance
        received = (cells * keyed.signs)[~keyed.sync]
        soft = np.bincount(keyed.role[~keyed.sync], weights=received, minlength=CODED_BITS)
        soft *= 2 * amplitude / noise  # log-likelihood ratios
        scale, f = HYPOTHESES[h]
        out.append(_Match(start * CHUNK, length * CHUNK, best_z, log_p, soft, scale, f != unit1))
    return out


def _correlate(units: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(W, H, F) spectrum of sum_j circular-correlation(units[..., j, :], pattern j) (see ``_sync_spectra``)."""
    spectrum = scipy.fft.rfft(units, axis=-1, workers=1)  # (W, H, UNIT_COLS, F)
    return (spectrum * pattern).sum(axis=2)


@functools.cache
def _unit_index() -> np.ndarray:
    """(offsets, UNIT_ROWS) block frame where unit row i starts, for each of the BLOCK_FRAMES offsets."""
    offsets = np.arange(grid.BLOCK_FRAMES)[:, None]
    return (offsets + 2 * grid.CHIP_FRAMES * np.arange(grid.UNIT_ROWS)[None, :]) % grid.BLOCK_FRAMES


def _sync_spectra(keyed: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Conjugate spectra (UNIT_COLS, BLOCK_FRAMES // 2 + 1) of the sync signs and mask at unit starts.

    Correlating a block's unit contrasts u with them gives, for every offset o at once,
    sum_i,j sync_i,j * u[j, (o + 2 * CHIP_FRAMES * i) mod BLOCK_FRAMES].
    """
    signs = np.zeros((grid.UNIT_COLS, grid.BLOCK_FRAMES))
    mask = np.zeros((grid.UNIT_COLS, grid.BLOCK_FRAMES))
    signs[:, :: 2 * grid.CHIP_FRAMES] = (keyed.sync * keyed.signs).T
    mask[:, :: 2 * grid.CHIP_FRAMES] = keyed.sync.T
    return np.conj(scipy.fft.rfft(signs, axis=1)), np.conj(scipy.fft.rfft(mask, axis=1))


def _combine(matches: list[_Match]) -> np.ndarray:
    """Sum the soft bits of the strongest windows that do not overlap."""
    chosen: list[_Match] = []
    for match in sorted(matches, key=lambda m: -m.z):
        if all(match.start + match.frames <= c.start or c.start + c.frames <= match.start for c in chosen):
            chosen.append(match)
    return np.sum([m.soft for m in chosen], axis=0)


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
