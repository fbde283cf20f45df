"""Talking characters: espeak-ng speech for a generated line, and the mouth opening that follows it.

The mouth is driven by the speech's own short-time loudness (RMS over 40 ms around each frame), which
opens the mouth on vowels and closes it in pauses and on stops, the way real lips track the envelope.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from v2a.errors import InputError
from v2a.io.audio import load_audio

VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5")

_SUBJECTS = (
    "I",
    "We",
    "You",
    "My sister",
    "The neighbour",
    "Our teacher",
    "Somebody",
    "The old man",
    "Everyone",
)
_VERBS = ("heard", "saw", "found", "dropped", "painted", "fixed", "lost", "carried", "forgot", "wanted")
_OBJECTS = (
    "the red box", "a bottle of water", "the old door", "my keys", "a little dog", "the blue car", "some bread",
    "the wooden chair", "a broken glass", "the garden gate", "an umbrella", "the kitchen window",
)  # fmt: skip
_PLACES = (
    "in the kitchen", "near the river", "at the station", "behind the house", "on the table", "this morning",
    "after the rain", "in the park", "by the fire", "yesterday", "down the road", "before dinner",
)  # fmt: skip
_LINES = (
    "Did you hear that?", "Look out!", "Be careful, it is slippery.", "Wait for me!", "What a noise!",
    "Can you close the door, please?", "It is getting cold outside.", "I think it is going to rain.",
    "Where did you put it?", "Come here and look at this.", "That was really loud.", "Let's go home.",
    "Hello, how are you today?", "I told you so.", "Nice weather, isn't it?", "Stop right there.",
)  # fmt: skip


def random_line(rng: np.random.Generator) -> str:
    """A short English sentence: a stock phrase or a subject-verb-object-place sentence."""
    if rng.random() < 0.35:
        return str(rng.choice(_LINES))
    parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if rng.random() < 0.7:
        parts.append(rng.choice(_PLACES))
    return " ".join(str(p) for p in parts) + str(rng.choice([".", ".", "!", "?"]))


def random_voice(rng: np.random.Generator) -> dict:
    """espeak-ng settings: voice+variant, words per minute and pitch."""
    return {
        "voice": f"{rng.choice(VOICES)}+{rng.choice(VARIANTS)}",
        "wpm": int(rng.integers(130, 190)),
        "pitch": int(rng.integers(25, 75)),
    }


@functools.lru_cache(maxsize=1)
def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise InputError(
            "espeak-ng is not installed; install it with apt-get install espeak-ng (make install does)"
        )
    return path


def speak(
    text: str, *, voice: str = "en-us", wpm: int = 160, pitch: int = 50, sample_rate: int = 24_000
) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng.

    Args:
        text: what to say.
        voice: espeak-ng voice, optionally with a variant (``en-gb+f3``).
        wpm: speaking rate in words per minute.
        pitch: 0..99.
        sample_rate: output rate in Hz.

    Returns:
        (S,) float32 waveform with leading and trailing silence removed.

    Raises:
        InputError: espeak-ng is missing or fails.
    """
    cmd = [_espeak(), "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        raise InputError(f"espeak-ng failed for voice {voice}: {err}") from None
    wav, _ = load_audio(done.stdout, sr=sample_rate)
    loud = np.flatnonzero(np.abs(wav) > 0.02 * (np.abs(wav).max() + 1e-9))
    return wav[loud[0] : loud[-1] + 1] if loud.size else wav


def envelope(wav: np.ndarray, sample_rate: int, times: np.ndarray, *, window_s: float = 0.04) -> np.ndarray:
    """RMS of ``wav`` in a window centred at each of ``times`` (seconds from the start of ``wav``).

    Returns:
        (T,) float64 RMS values (0 outside the waveform).
    """
    half = max(1, round(window_s * sample_rate / 2))
    power = np.concatenate([[0.0], np.cumsum(np.asarray(wav, dtype=np.float64) ** 2)])
    centre = np.round(np.asarray(times) * sample_rate).astype(int)
    lo = np.clip(centre - half, 0, wav.size)
    hi = np.clip(centre + half, 0, wav.size)
    return np.sqrt((power[hi] - power[lo]) / (2 * half))


def mouth_track(wav: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """Mouth opening 0..1 at ``times`` (seconds from the speech start): the envelope over its 95th percentile."""
    env = envelope(wav, sample_rate, times)
    ref = np.percentile(envelope(wav, sample_rate, np.arange(0, wav.size / sample_rate, 0.01)), 95) or 1.0
    return np.clip(env / ref, 0.0, 1.0) ** 0.7
