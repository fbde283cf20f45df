"""The one AudioSpec: sample rate, STFT and mel settings. Every other module reads these from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class AudioSpec:
    """How audio is represented everywhere in Foley (mono waveform -> log-mel frames).

    Attributes:
        name: id stored in checkpoints, so a model never meets audio of another spec.
        sample_rate: waveform rate in Hz.
        n_fft: FFT size of the STFT.
        hop_length: samples between mel frames.
        win_length: analysis window length in samples.
        n_mels: mel bands.
        f_min: lowest mel frequency in Hz.
        f_max: highest mel frequency in Hz.
        log_floor: amplitude floor before the log (sets the dB range the mel can express).
    """

    name: str
    sample_rate: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    f_min: float
    f_max: float
    log_floor: float = 1e-5

    @property
    def mel_fps(self) -> float:
        """Mel frames per second."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Mel frames for ``num_samples`` samples (centred STFT: one frame per hop, rounded up)."""
        return num_samples // self.hop_length + 1

    def num_samples(self, duration_s: float) -> int:
        """Samples in ``duration_s`` seconds."""
        return round(duration_s * self.sample_rate)

    def replace(self, **changes: object) -> AudioSpec:
        """A copy with some fields changed (specs are never mutated)."""
        return dataclasses.replace(self, **changes)


SPEC_24K = AudioSpec(
    name="mel24k",
    sample_rate=24_000,
    n_fft=1024,
    hop_length=256,
    win_length=1024,
    n_mels=100,
    f_min=0.0,
    f_max=12_000.0,
)
SPEC_48K = AudioSpec(
    name="mel48k",
    sample_rate=48_000,
    n_fft=2048,
    hop_length=512,
    win_length=2048,
    n_mels=128,
    f_min=0.0,
    f_max=24_000.0,
)

SPECS: dict[str, AudioSpec] = {spec.name: spec for spec in (SPEC_24K, SPEC_48K)}
DEFAULT_SPEC = SPEC_24K


def get_spec(name: str) -> AudioSpec:
    """Look up a spec by name; an unknown name raises with the known ones listed."""
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown audio spec {name!r}; known: {sorted(SPECS)}") from None
