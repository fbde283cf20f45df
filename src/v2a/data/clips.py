"""Clean-up of recorded sounds for the corpus: trim silence, split long files at quiet points, fingerprint.

All functions take mono float32 waveforms (S,) at one rate and are pure numpy, so they run in worker
processes without any shared state.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np

_FRAME_S = 0.02  # analysis frame for level envelopes
_FP_BANDS, _FP_FRAMES = 24, 24  # fingerprint = coarse log-mel image, bands x time cells


def frame_db(wav: np.ndarray, sr: int, frame_s: float = _FRAME_S) -> np.ndarray:
    """RMS level in dBFS of consecutive frames (the last partial frame included); (F,) float32."""
    hop = max(1, round(frame_s * sr))
    n = int(np.ceil(wav.size / hop))
    padded = np.zeros(n * hop, dtype=np.float32)
    padded[: wav.size] = wav
    power = np.mean(padded.reshape(n, hop).astype(np.float64) ** 2, axis=1)
    return (10.0 * np.log10(np.maximum(power, 1e-12))).astype(np.float32)


def trim_silence(wav: np.ndarray, sr: int, *, rel_db: float = -45.0, pad_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``rel_db`` below the loudest frame.

    Args:
        wav: (S,) waveform.
        sr: its rate in Hz.
        rel_db: threshold relative to the peak frame level (negative dB).
        pad_s: keep this much audio beyond the first and last loud frame, so onsets stay intact.

    Returns:
        The trimmed (S',) view; empty when the input is empty or digitally silent.
    """
    if wav.size == 0 or not np.any(wav):
        return wav[:0]
    levels = frame_db(wav, sr)
    loud = np.flatnonzero(levels >= levels.max() + rel_db)
    hop = max(1, round(_FRAME_S * sr))
    pad = round(pad_s * sr)
    start = max(0, loud[0] * hop - pad)
    end = min(wav.size, (loud[-1] + 1) * hop + pad)
    return wav[start:end]


def split_points(
    wav: np.ndarray, sr: int, *, max_s: float = 10.0, min_s: float = 4.0
) -> list[tuple[int, int]]:
    """Cut a long waveform into pieces of at most ``max_s`` seconds, each cut at the quietest moment.

    Each cut is placed at the latest frame within 3 dB of the quietest one between ``min_s`` and
    ``max_s`` after the previous cut, so pieces are long and rarely split a sound event in two.

    Returns:
        (start, end) sample ranges that cover the whole waveform in order.
    """
    max_n, min_n = round(max_s * sr), round(min_s * sr)
    if wav.size <= max_n:
        return [(0, wav.size)]
    hop = max(1, round(_FRAME_S * sr))
    levels = frame_db(wav, sr)
    spans, start = [], 0
    while wav.size - start > max_n:
        lo, hi = (start + min_n) // hop, (start + max_n) // hop
        if hi > lo:
            window = levels[lo:hi]
            quiet = np.flatnonzero(window <= window.min() + 3.0)  # near-quietest frames; take the latest
            cut = (lo + int(quiet[-1])) * hop
        else:
            cut = start + max_n
        spans.append((start, cut))
        start = cut
    spans.append((start, wav.size))
    return spans


def _mel_matrix(sr: int, n_fft: int, bands: int) -> np.ndarray:
    """Triangular mel filters (bands, n_fft // 2 + 1), enough for a coarse fingerprint."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges_mel = np.linspace(mel(40.0), mel(sr / 2), bands + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((bands, freqs.size), dtype=np.float32)
    for i in range(bands):
        left, centre, right = edges[i : i + 3]
        rise = (freqs - left) / max(centre - left, 1e-6)
        fall = (right - freqs) / max(right - centre, 1e-6)
        fb[i] = np.clip(np.minimum(rise, fall), 0.0, None)
    return fb


def fingerprint(wav: np.ndarray, sr: int) -> np.ndarray:
    """A level-independent unit vector describing the sound's coarse spectro-temporal shape.

    The log-mel spectrogram is pooled into a fixed ``bands x cells`` grid (so clips of different length
    compare), its mean is removed (so gain does not matter) and it is L2-normalised: near-duplicate
    files (re-encodes, resampled or slightly trimmed copies) have cosine similarity close to 1.

    Returns:
        (bands * cells,) float32 unit vector (zeros for an empty input).
    """
    n_fft, hop = 512, 256
    if wav.size < n_fft:
        wav = np.pad(wav, (0, n_fft - wav.size))
    frames = np.lib.stride_tricks.sliding_window_view(wav, n_fft)[::hop]  # (T, n_fft)
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2  # (T, F)
    mel = spec @ _mel_matrix(sr, n_fft, _FP_BANDS).T  # (T, bands)
    logmel = np.log10(mel + 1e-6 * max(float(mel.max()), 1e-12))  # 60 dB range: faint noise does not count
    edges = np.linspace(0, logmel.shape[0], _FP_FRAMES + 1).astype(int)
    cells = np.stack([logmel[a : max(b, a + 1)].mean(axis=0) for a, b in itertools.pairwise(edges)])
    vec = (cells - cells.mean()).ravel().astype(np.float32)  # (cells * bands,)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def pcm_digest(wav: np.ndarray) -> str:
    """Hash of the 16-bit quantised samples: equal for bit-identical clips after conversion."""
    pcm = np.clip(np.round(wav * 32767.0), -32768, 32767).astype("<i2")
    return hashlib.sha1(pcm.tobytes()).hexdigest()


def find_duplicates(
    vectors: np.ndarray, durations: np.ndarray, *, threshold: float = 0.97, max_ratio: float = 1.15
) -> np.ndarray:
    """Indices of clips that nearly duplicate an earlier clip (the first of each group is kept).

    Two clips are near-duplicates when their fingerprints' cosine similarity is at least ``threshold``
    and their durations differ by less than the factor ``max_ratio``. Clips are compared only with
    clips of similar duration (a sorted sweep), so the cost stays far below all pairs.

    Args:
        vectors: (N, D) unit fingerprints, in keep-priority order.
        durations: (N,) seconds.
        threshold: cosine similarity from which two clips count as the same sound.
        max_ratio: largest duration ratio two duplicates may have.

    Returns:
        Sorted int array of the indices to drop.
    """
    n = len(durations)
    if n == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(durations, kind="stable")
    sorted_d = durations[order]
    dropped = np.zeros(n, dtype=bool)
    block = 512
    for b0 in range(0, n, block):
        rows = order[b0 : b0 + block]
        hi = np.searchsorted(sorted_d, sorted_d[min(b0 + block, n) - 1] * max_ratio, side="right")
        lo = np.searchsorted(sorted_d, sorted_d[b0] / max_ratio, side="left")
        cols = order[lo:hi]
        sims = vectors[rows] @ vectors[cols].T  # (block, window)
        ratio = durations[rows][:, None] / durations[cols][None, :]
        close = (sims >= threshold) & (ratio < max_ratio) & (ratio > 1 / max_ratio)
        for r, row in enumerate(rows):
            earlier = cols[close[r] & (cols < row)]
            if earlier.size and not dropped[row]:
                dropped[row] = True
    return np.flatnonzero(dropped)
