"""GAN discriminators for waveform training: multi-period (HiFi-GAN) and multi-resolution (UnivNet).

A sub-discriminator maps a waveform (B, S) to scores (B, N) and the list of its intermediate activations
(for feature matching). The periodic ones see the waveform folded by a prime period, so they judge
pitch-periodic structure; the resolution ones see STFT magnitudes, so they judge spectral texture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from v2a.audio.spec import AudioSpec
from v2a.train.losses import stft_resolutions

DiscOutput = tuple[
    list[torch.Tensor], list[list[torch.Tensor]]
]  # (scores per sub-disc, features per sub-disc)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the discriminators.

    Attributes:
        periods: folding periods of the multi-period discriminator (primes avoid overlap).
        period_channels: channels of the five period-conv layers.
        resolution_channels: channels of the resolution-discriminator conv layers.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    resolution_channels: int = 32


def discriminator_config(preset: str) -> DiscriminatorConfig:
    """Size presets.

    ``base`` is the HiFi-GAN/UnivNet size (about 41 M + 0.3 M parameters), for GPU runs. ``tiny`` (0.7 M)
    is for CPU runs; even so a GAN step costs about 7x a generator-only step on one CPU core, mostly in
    the resolution discriminators (2-D convs over the full spectrogram).
    """
    presets = {
        "tiny": DiscriminatorConfig(period_channels=(16, 32, 64, 128, 128), resolution_channels=8),
        "base": DiscriminatorConfig(),
    }
    if preset not in presets:
        raise ValueError(f"unknown discriminator preset {preset!r}; known: {sorted(presets)}")
    return presets[preset]


class PeriodDiscriminator(nn.Module):
    """2-D convs over the waveform folded into (S / period, period)."""

    def __init__(self, period: int, channels: Sequence[int]):
        super().__init__()
        self.period = period
        layers, previous = [], 1
        for i, ch in enumerate(channels):
            stride = 3 if i < len(channels) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(previous, ch, (5, 1), (stride, 1), padding=(2, 0))))
            previous = ch
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(previous, 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, S) -> scores (B, N), features."""
        batch, length = wav.shape
        pad = (-length) % self.period
        x = nn.functional.pad(wav, (0, pad), mode="reflect") if pad else wav
        x = x.reshape(batch, 1, -1, self.period)  # (B, 1, S / p, p)
        features = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class ResolutionDiscriminator(nn.Module):
    """2-D convs over a log-compressed STFT magnitude laid out as (time, frequency)."""

    def __init__(self, resolution: tuple[int, int, int], channels: int):
        super().__init__()
        self.n_fft, self.hop, self.win = resolution
        self.register_buffer("window", torch.hann_window(self.win, periodic=True), persistent=False)
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
            ]
        )
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, S) -> scores (B, N), features."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(),
                self.n_fft,
                self.hop,
                self.win,
                window=self.window,
                center=True,
                return_complex=True,
            )  # (B, F, T)
            # log compression keeps quiet high bands visible next to loud low ones
            mag = torch.log1p(spec.abs())
        x = mag.transpose(1, 2).unsqueeze(1).to(wav.dtype)  # (B, F, T) -> (B, 1, T, F)
        features = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class VocoderDiscriminators(nn.Module):
    """The multi-period and multi-resolution discriminators together (one module, one DDP wrapper).

    Args:
        config: sizes; spec: the AudioSpec (its rate sets the STFT resolutions).
    """

    def __init__(self, config: DiscriminatorConfig, spec: AudioSpec):
        super().__init__()
        self.period = nn.ModuleList(PeriodDiscriminator(p, config.period_channels) for p in config.periods)
        self.resolution = nn.ModuleList(
            ResolutionDiscriminator(r, config.resolution_channels) for r in stft_resolutions(spec)
        )

    def forward(self, wav: torch.Tensor) -> dict[str, DiscOutput]:
        """Score a waveform batch.

        Args:
            wav: (B, S) waveform.

        Returns:
            ``{"mpd": (scores, features), "mrd": (scores, features)}``, one entry per sub-discriminator.
        """
        out: dict[str, DiscOutput] = {}
        for name, group in (("mpd", self.period), ("mrd", self.resolution)):
            scores, features = [], []
            for disc in group:
                s, f = disc(wav)
                scores.append(s)
                features.append(f)
            out[name] = (scores, features)
        return out
