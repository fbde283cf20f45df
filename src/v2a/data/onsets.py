"""Audio onset detection (log spectral flux) and onset matching: the sync check of Foley world and evaluation.

The detector follows the usual recipe (Bello et al. 2005; Böck & Widmer 2013): a short-window STFT,
log-compressed magnitudes, the positive frame-to-frame change summed over frequency bins (with a small maximum
filter across bins so that a gliding pitch does not look like a new onset), then peak picking against a moving
average.
A short window (512 samples at 24 kHz, hop 128) keeps the time error within a few milliseconds; the constant
lead of the flux peak before the true onset is measured on synthetic impacts and removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, uniform_filter1d


@dataclass(frozen=True)
class OnsetParams:
    """Detector settings (times in seconds, so one setting fits any sample rate).

    Attributes:
        window_s: STFT window length.
        hop_s: STFT hop (the time grid of the detection function).
        compression: gamma of ``log(1 + gamma * |X|)``.
        delta: threshold above the local mean, as a fraction of the detection function's 99th percentile.
        floor_db: frames whose short-time level is this far below the loudest frame never hold an onset.
        mean_s: half width of the moving average the peaks must rise above.
        min_gap_s: two onsets are at least this far apart.
    """

    window_s: float = 512 / 24_000
    hop_s: float = 128 / 24_000
    compression: float = 10.0
    delta: float = 0.45
    floor_db: float = 50.0
    mean_s: float = 0.06
    min_gap_s: float = 0.03


DEFAULT_PARAMS = OnsetParams()


@dataclass(frozen=True)
class OnsetScore:
    """How well estimated onsets match reference onsets.

    Attributes:
        precision: matched / estimated (1.0 when nothing was estimated).
        recall: matched / reference (1.0 when there is no reference).
        f1: harmonic mean of precision and recall.
        matched: number of one-to-one matches within the tolerance.
        offsets_s: estimate minus reference time of each match (positive: the estimate is late).
    """

    precision: float
    recall: float
    f1: float
    matched: int
    offsets_s: np.ndarray


def onset_strength(
    wav: np.ndarray, sample_rate: int, params: OnsetParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Log spectral flux of a mono waveform.

    Args:
        wav: (S,) waveform.
        sample_rate: rate in Hz.
        params: detector settings.

    Returns:
        ``(flux, level_db)``, both (T,) with T = S // hop + 1; frame t is centred on sample t * hop.
        ``level_db`` is the frame's energy in dB relative to the loudest frame.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected a mono (S,) waveform, got {wav.shape=}")
    n_fft = max(16, round(params.window_s * sample_rate))
    hop = max(1, round(params.hop_s * sample_rate))
    padded = np.pad(wav, (n_fft // 2, n_fft // 2 + hop))
    frames = sliding_window_view(padded, n_fft)[::hop][: wav.size // hop + 1]  # (T, n_fft)
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))  # (T, F)
    energy = (mag**2).sum(axis=1)
    level_db = 10 * np.log10(energy + 1e-12)
    level_db -= level_db.max()
    logmag = np.log1p(params.compression * mag)
    reference = maximum_filter1d(logmag, size=3, axis=1)  # vibrato suppression (SuperFlux)
    diff = logmag[1:] - reference[:-1]
    flux = np.concatenate([[0.0], np.maximum(diff, 0.0).sum(axis=1)])
    return flux.astype(np.float64), level_db


def detect_onsets(wav: np.ndarray, sample_rate: int, params: OnsetParams = DEFAULT_PARAMS) -> np.ndarray:
    """Times of the onsets in a mono waveform.

    Args:
        wav: (S,) waveform.
        sample_rate: rate in Hz.
        params: detector settings.

    Returns:
        (N,) float64 onset times in seconds, ascending.
    """
    flux, level_db = onset_strength(wav, sample_rate, params)
    if flux.size < 3 or not np.any(flux > 0):
        return np.zeros(0)
    hop = max(1, round(params.hop_s * sample_rate))
    frame_s = hop / sample_rate
    scale = np.percentile(flux, 99) or flux.max()
    local = uniform_filter1d(flux, size=max(1, 2 * round(params.mean_s / frame_s) + 1), mode="nearest")
    gap = max(1, round(params.min_gap_s / frame_s))
    is_max = flux == maximum_filter1d(flux, size=2 * gap + 1, mode="nearest")
    loud = maximum_filter1d(level_db, size=5) > -params.floor_db
    # frames whose window runs past the end see the signal cut off: a broadband step that is no onset
    inside = np.arange(flux.size) * hop + max(16, round(params.window_s * sample_rate)) // 2 <= wav.size
    peaks = np.flatnonzero(is_max & (flux > local + params.delta * scale) & loud & (flux > 0) & inside)
    kept: list[int] = []
    for p in peaks:  # equal neighbours of a plateau: keep the first
        if not kept or p - kept[-1] >= gap:
            kept.append(int(p))
    return np.asarray(kept, dtype=np.float64) * frame_s - _delay_s(params)


def _delay_s(params: OnsetParams) -> float:
    """Systematic lead of the flux peak over the true onset: with centred frames a sharp attack already enters
    the front of the window before the frame centre. Measured on modal impacts: ~0.15 window."""
    return -0.15 * params.window_s


def merge_onsets(times: np.ndarray, *, min_gap_s: float = 0.03) -> np.ndarray:
    """Collapse onsets closer than ``min_gap_s`` to the first of each group: two hits 10 ms apart are one
    perceptual onset, and no detector with that minimum gap can report both.

    Args:
        times: (N,) onset times in seconds, any order.
        min_gap_s: smallest separation kept.

    Returns:
        (M,) sorted onset times, M <= N.
    """
    kept: list[float] = []
    for t in np.sort(np.asarray(times, dtype=np.float64)):
        if not kept or t - kept[-1] >= min_gap_s:
            kept.append(float(t))
    return np.asarray(kept, dtype=np.float64)


def match_onsets(reference: np.ndarray, estimate: np.ndarray, *, tolerance_s: float = 0.03) -> OnsetScore:
    """One-to-one matching of onsets within a tolerance, closest pairs first.

    Args:
        reference: (N,) true onset times in seconds.
        estimate: (M,) detected onset times in seconds.
        tolerance_s: largest allowed |estimate - reference|.

    Returns:
        Precision, recall, F1, the match count and the offsets of the matches.
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    est = np.sort(np.asarray(estimate, dtype=np.float64))
    pairs = []
    if ref.size and est.size:
        diff = est[None, :] - ref[:, None]  # (N, M)
        i, j = np.nonzero(np.abs(diff) <= tolerance_s)
        order = np.argsort(np.abs(diff[i, j]), kind="stable")
        used_r, used_e = set(), set()
        for k in order:
            r, e = int(i[k]), int(j[k])
            if r not in used_r and e not in used_e:
                used_r.add(r)
                used_e.add(e)
                pairs.append(diff[r, e])
    matched = len(pairs)
    precision = matched / est.size if est.size else 1.0
    recall = matched / ref.size if ref.size else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return OnsetScore(precision, recall, f1, matched, np.asarray(pairs, dtype=np.float64))
