"""What happens to audio on its way to a listener, as functions: the robustness tests' and benchmark's attacks.

Every attack takes ``(wav, sr, rng)`` (mono (S,) float32 waveform, rate, numpy Generator) and an optional
``other`` waveform to mix with, and returns ``(wav, sr)`` after the attack, decoded back to float samples
and rounded to 16 bits, as a file would hold them. Codecs run through PyAV (libmp3lame, FFmpeg's aac,
libopus); time-stretching with the pitch kept uses Rubber Band through ``pedalboard``.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from scipy.signal import butter, sosfilt

from v2a.io.audio import encode_waveform, load_audio, resample
from v2a.io.writer import write_video

Attack = Callable[..., tuple[np.ndarray, int]]


def identity(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
    """No attack (16-bit rounding only)."""
    return _pcm16(wav), sr


def codec(name: str, bitrate: int) -> Attack:
    """Encode with an FFmpeg encoder ("libmp3lame", "aac", "libopus") at ``bitrate`` b/s, decode back."""
    container = {"libmp3lame": "mp3", "aac": "adts", "libopus": "ogg"}[name]

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        rate = sr if name != "libopus" or sr in (8000, 12000, 16000, 24000, 48000) else 48_000
        data = wav if rate == sr else resample(wav, sr, rate)
        decoded, out_rate = load_audio(_encode(data, rate, container, name, bitrate))
        return _pcm16(decoded), out_rate

    attack.__doc__ = f"{name} at {bitrate // 1000} kb/s."
    return attack


def resample_16k(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
    """Resample to 16 kHz and back."""
    return _pcm16(resample(resample(wav, sr, 16_000), 16_000, sr)), sr


def white_noise(snr_db: float) -> Attack:
    """Add white Gaussian noise ``snr_db`` below the signal's mean power."""

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        power = float(np.mean(np.square(wav, dtype=np.float64)))
        noise = rng.standard_normal(wav.size) * math.sqrt(power / 10 ** (snr_db / 10))
        return _pcm16(wav + noise), sr

    return attack


def lowpass(cutoff_hz: float) -> Attack:
    """8th-order Butterworth low-pass."""
    return _filter("lowpass", cutoff_hz)


def highpass(cutoff_hz: float) -> Attack:
    """8th-order Butterworth high-pass."""
    return _filter("highpass", cutoff_hz)


def random_eq(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
    """10-band graphic EQ (octave bands 31 Hz .. 16 kHz, peaking filters, Q 1.41), gains uniform in +/-6 dB."""
    out = np.asarray(wav, dtype=np.float64)
    for centre in 31.25 * 2.0 ** np.arange(10):
        gain_db = rng.uniform(-6.0, 6.0)
        if centre < 0.45 * sr:
            out = sosfilt(_peaking(centre, gain_db, 1.41, sr), out)
    return _pcm16(out), sr


def speed(factor: float) -> Attack:
    """Play ``factor`` times faster by resampling: duration / factor, every frequency times factor."""

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        return _pcm16(resample(wav, round(sr * factor), sr)), sr

    return attack


def time_stretch(factor: float) -> Attack:
    """Play ``factor`` times faster with the pitch kept (Rubber Band)."""

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        import pedalboard  # only the attacks need it

        out = pedalboard.time_stretch(np.asarray(wav, dtype=np.float32), sr, stretch_factor=factor)
        return _pcm16(out[0]), sr

    return attack


def crop(seconds: float) -> Attack:
    """Keep a random ``seconds``-long excerpt."""

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        n = round(seconds * sr)
        start = int(rng.integers(0, max(1, wav.size - n + 1)))
        return _pcm16(wav[start : start + n]), sr

    return attack


def mix_under(level_db: float) -> Attack:
    """Mix with ``other`` audio so that the marked track sits ``level_db`` dB (RMS) below it."""

    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        if other is None or other.size == 0:
            raise ValueError("mix_under needs other audio to mix with")
        other = np.resize(other, wav.size)  # loop or cut to the same length
        gain = _rms(wav) / max(_rms(other), 1e-9) * 10 ** (-level_db / 20)  # other sits -level_db above
        mixed = wav + gain * other
        return _pcm16(mixed / max(1.0, float(np.max(np.abs(mixed))))), sr

    return attack


def video_reencode(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
    """Mux into an H.264/AAC mp4, then decode and re-encode the whole file through PyAV; return its audio."""
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "marked.mp4", Path(tmp) / "reencoded.mp4"
        seconds = wav.size / sr
        frames = _moving_frames(max(1, round(seconds * 12.5)))
        write_video(first, frames, fps=12.5, audio=wav, sample_rate=sr, audio_codec="aac")
        _reencode(first, second)
        decoded, rate = load_audio(second)
    return _pcm16(decoded), rate


def standard_attacks(seed: int = 0) -> dict[str, Attack]:
    """The benchmark's attacks by name (speed and stretch factors alternate between the two directions)."""
    return {
        "none": identity,
        "mp3_64k": codec("libmp3lame", 64_000),
        "mp3_128k": codec("libmp3lame", 128_000),
        "aac_64k": codec("aac", 64_000),
        "opus_32k": codec("libopus", 32_000),
        "resample_16k": resample_16k,
        "noise_20db": white_noise(20.0),
        "lowpass_4k": lowpass(4000.0),
        "highpass_500": highpass(500.0),
        "eq_10band_6db": random_eq,
        "speed_+5%": speed(1.05),
        "speed_-5%": speed(0.95),
        "stretch_+5%": time_stretch(1.05),
        "stretch_-5%": time_stretch(0.95),
        "crop_3s": crop(3.0),
        "mix_under_-6db": mix_under(-6.0),
        "video_reencode": video_reencode,
    }


def _encode(wav: np.ndarray, sr: int, container: str, codec_name: str, bitrate: int) -> bytes:
    """Bytes of ``wav`` encoded with ``codec_name`` in a ``container`` stream."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec_name, rate=sr)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        for packet in encode_waveform(stream, _pcm16(wav)[None], sr):
            out.mux(packet)
    return buffer.getvalue()


def _reencode(src: Path, dst: Path) -> None:
    """Decode every frame and sample of ``src`` and encode them again (libx264 + aac) into ``dst``."""
    with av.open(str(src)) as inp, av.open(str(dst), mode="w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        aout = out.add_stream("aac", rate=ain.codec_context.sample_rate)
        aout.layout = ain.codec_context.layout.name
        aout.bit_rate = 128_000
        for frame in inp.decode(vin, ain):
            frame.pts = None
            target = vout if isinstance(frame, av.VideoFrame) else aout
            out.mux(target.encode(frame))
        out.mux(vout.encode(None))
        out.mux(aout.encode(None))


def _moving_frames(count: int) -> np.ndarray:
    """(count, 64, 96, 3) uint8 frames of a moving gradient: something for the video encoder to code."""
    y, x = np.mgrid[0:64, 0:96]
    t = np.arange(count)[:, None, None]
    base = ((x[None] * 2 + y[None] + 4 * t) % 256).astype(np.uint8)
    return np.stack([base, base[:, ::-1], np.full_like(base, 90)], axis=-1)


def _filter(kind: str, cutoff_hz: float) -> Attack:
    def attack(wav: np.ndarray, sr: int, rng: np.random.Generator, other: np.ndarray | None = None):
        sos = butter(8, min(cutoff_hz, 0.45 * sr), btype=kind, fs=sr, output="sos")
        return _pcm16(sosfilt(sos, np.asarray(wav, dtype=np.float64))), sr

    attack.__doc__ = f"8th-order Butterworth {kind} at {cutoff_hz:g} Hz."
    return attack


def _peaking(centre: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """(1, 6) second-order section of a peaking EQ (RBJ audio-EQ cookbook)."""
    amp = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * centre / sr
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * math.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * math.cos(w0), 1 - alpha / amp])
    return np.concatenate([b / a[0], a / a[0]])[None]


def _rms(wav: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0


def _pcm16(wav: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1] and round to 16-bit steps, as a 16-bit file would hold the samples."""
    return (np.round(np.clip(np.asarray(wav, dtype=np.float64), -1.0, 1.0) * 32767) / 32767).astype(
        np.float32
    )
