"""Speech over Foley: ducking under the speech, its timing, and a peak-safe sum."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.dialogue.mixer import PEAK, duck_gain, mix_dialogue
from v2a.dialogue.tts import synthesize

SR = 24_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """4 s track: a real synthesised line from 1.0 s on."""
    line = synthesize("Wait for me!").wav
    track = np.zeros(4 * SR, np.float32)
    track[SR : SR + line.size] = line
    return track


def _at(gain: np.ndarray, t: float) -> float:
    return float(gain[round(t * SR)])


def test_foley_is_ducked_while_speech_is_on_and_only_then(speech) -> None:
    end = np.flatnonzero(np.abs(speech) > 0.02)[-1] / SR
    gain = duck_gain(speech, SR, duck_db=-12.0, attack_s=0.05, release_s=0.3)
    low = 10 ** (-12 / 20)
    assert _at(gain, 0.5) == pytest.approx(1.0)
    assert _at(gain, 1.0) == pytest.approx(low, abs=0.02)  # already down at the first word
    assert 0.3 < _at(gain, 0.97) < 1.0  # ramping down just before it
    assert gain[round(1.0 * SR) : round(end * SR)].max() == pytest.approx(low, abs=0.02)  # held between words
    assert _at(gain, end + 0.2) == pytest.approx(low, abs=0.02)  # released only after release_s
    assert _at(gain, end + 0.5) == pytest.approx(1.0)


def test_mix_adds_speech_and_stays_under_the_peak(speech) -> None:
    rng = np.random.default_rng(0)
    foley = (0.89 * np.clip(rng.standard_normal((2, speech.size)) / 3, -1, 1)).astype(np.float32)
    foley[1] *= 0.1  # a quiet variant
    mix = mix_dialogue(foley, speech, SR)
    assert mix.shape == foley.shape and mix.dtype == np.float32
    assert np.abs(mix).max() <= PEAK + 1e-6
    # before the speech the loud variant is untouched; the quiet one is never scaled at all
    np.testing.assert_allclose(mix[0, : SR // 2], foley[0, : SR // 2], atol=1e-6)
    gain = duck_gain(speech, SR)
    np.testing.assert_allclose(mix[1], foley[1] * gain + speech, atol=1e-6)
    # in the loud variant the speech now dominates: Foley 12 dB down, the whole sum scaled as one
    scale = PEAK / np.abs(foley[0] * gain + speech).max()
    np.testing.assert_allclose(mix[0], (foley[0] * gain + speech) * scale, atol=1e-6)


def test_speech_is_fitted_to_the_foley_length_and_silence_changes_nothing(speech) -> None:
    foley = np.full(SR, 0.25, np.float32)
    np.testing.assert_array_equal(mix_dialogue(foley, np.zeros(SR // 2, np.float32), SR), foley)
    short = mix_dialogue(np.zeros(5 * SR, np.float32), speech, SR)
    np.testing.assert_array_equal(short[: speech.size], speech)
    assert not short[speech.size :].any()
    assert mix_dialogue(foley, speech, SR).shape == (SR,)


def test_bad_shapes_are_refused(speech) -> None:
    with pytest.raises(ValueError, match="foley"):
        mix_dialogue(np.zeros((1, 2, 3), np.float32), speech, SR)
    with pytest.raises(ValueError, match="duck_db"):
        duck_gain(speech, SR, duck_db=6.0)
