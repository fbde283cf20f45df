"""Waveform losses for vocoder and codec training: spectral distances, feature matching, GAN objectives.

Every function computes in float32 (under bf16 autocast too): STFTs and logs lose too much in bf16.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from v2a.audio.mel import log_mel
from v2a.audio.spec import AudioSpec

# (n_fft, hop, win) at 24 kHz; scaled with the sample rate so other specs keep the same time resolutions
STFT_RESOLUTIONS_24K: tuple[tuple[int, int, int], ...] = (
    (512, 128, 512),
    (1024, 256, 1024),
    (2048, 512, 2048),
)
ADVERSARIAL_KINDS = ("hinge", "lsgan")


def stft_resolutions(spec: AudioSpec) -> tuple[tuple[int, int, int], ...]:
    """The multi-resolution STFT settings for ``spec``'s sample rate (powers of two)."""
    factor = max(1, round(spec.sample_rate / 24_000))
    return tuple((n * factor, h * factor, w * factor) for n, h, w in STFT_RESOLUTIONS_24K)


def _magnitude(wav: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    window = torch.hann_window(win, periodic=True, device=wav.device)
    spec = torch.stft(
        wav, n_fft, hop, win, window=window, center=True, pad_mode="constant", return_complex=True
    )
    # the floor keeps sqrt's gradient finite on digital silence
    return torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)  # (B, F, T)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions (Yamamoto et al., 2020).

    Args:
        resolutions: (n_fft, hop, win) triples.
    """

    def __init__(self, resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS_24K):
        super().__init__()
        self.resolutions = tuple(tuple(r) for r in resolutions)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Distance between waveforms.

        Args:
            fake: (B, S) generated waveform.
            real: (B, S) reference waveform.

        Returns:
            Scalar loss (0 for identical inputs).
        """
        assert fake.shape == real.shape, f"{fake.shape=} {real.shape=}"
        with torch.autocast(device_type=fake.device.type, enabled=False):
            fake, real = fake.float(), real.float()
            total = fake.new_zeros(())
            for n_fft, hop, win in self.resolutions:
                mag_f, mag_r = _magnitude(fake, n_fft, hop, win), _magnitude(real, n_fft, hop, win)
                convergence = torch.linalg.vector_norm(mag_r - mag_f) / torch.linalg.vector_norm(mag_r).clamp(
                    min=1e-6
                )
                log_l1 = nn.functional.l1_loss(torch.log(mag_f), torch.log(mag_r))
                total = total + convergence + log_l1
            return total / len(self.resolutions)


def mel_l1_loss(fake: torch.Tensor, real_mel: torch.Tensor, spec: AudioSpec) -> torch.Tensor:
    """L1 between the log-mel of ``fake`` (B, S) and a target log-mel (B, n_mels, T) of the same spec."""
    fake_mel = log_mel(fake, spec)
    assert fake_mel.shape == real_mel.shape, f"{fake_mel.shape=} {real_mel.shape=}"
    return nn.functional.l1_loss(fake_mel, real_mel.float())


def feature_matching_loss(
    real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """L1 between discriminator activations on real and generated audio (Larsen et al., 2016).

    Args:
        real_features: per sub-discriminator, its list of intermediate activations on real audio.
        fake_features: the same on generated audio (gradients flow through these only).

    Returns:
        Sum over layers, mean over sub-discriminators.
    """
    total = None
    for real_maps, fake_maps in zip(real_features, fake_features, strict=True):
        for real, fake in zip(real_maps, fake_maps, strict=True):
            term = nn.functional.l1_loss(fake.float(), real.detach().float())
            total = term if total is None else total + term
    assert total is not None, "feature matching needs at least one feature map"
    return total / len(real_features)


def discriminator_loss(
    real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor], *, kind: str = "hinge"
) -> torch.Tensor:
    """Loss a discriminator minimises: real scored high, generated scored low.

    Args:
        real_logits: per sub-discriminator, scores on real audio.
        fake_logits: the same on generated (detached) audio.
        kind: ``hinge`` (relu(1 - real) + relu(1 + fake)) or ``lsgan`` ((1 - real)^2 + fake^2).

    Returns:
        Scalar, mean over sub-discriminators.
    """
    _check_kind(kind)
    total = None
    for real, fake in zip(real_logits, fake_logits, strict=True):
        real, fake = real.float(), fake.float()
        if kind == "hinge":
            term = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
        else:
            term = (1 - real).square().mean() + fake.square().mean()
        total = term if total is None else total + term
    assert total is not None, "no discriminator outputs"
    return total / len(real_logits)


def generator_adversarial_loss(fake_logits: Sequence[torch.Tensor], *, kind: str = "hinge") -> torch.Tensor:
    """Loss the generator minimises to fool the discriminators; mean over sub-discriminators.

    ``hinge`` uses relu(1 - fake) (as in Vocos), ``lsgan`` uses (1 - fake)^2.
    """
    _check_kind(kind)
    terms = [
        torch.relu(1 - f.float()).mean() if kind == "hinge" else (1 - f.float()).square().mean()
        for f in fake_logits
    ]
    assert terms, "no discriminator outputs"
    return torch.stack(terms).mean()


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; known: {ADVERSARIAL_KINDS}")


def phase_loss(fake: torch.Tensor, real: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Magnitude-weighted phase distance between two waveforms: phase, group delay, instantaneous frequency.

    Each term is ``1 - cos(difference)`` of an angle, computed through unit complex numbers, so it needs
    no unwrapping and has no singular gradient at silent bins (APNet's anti-wrapping losses, Ai & Ling 2023,
    in cosine form). The angles compared are the phase of every bin, its difference to the next bin in
    frequency (group delay: where in the frame the energy sits) and to the next frame in time
    (instantaneous frequency). Bins are weighted by the reference's magnitude, so silence counts for nothing.

    Args:
        fake: (B, S) generated waveform.
        real: (B, S) reference waveform.
        n_fft: STFT size; hop: STFT hop (use the vocoder's own, so frames line up with its head).

    Returns:
        Scalar in [0, 2] per term, summed over the three terms.
    """
    assert fake.shape == real.shape, f"{fake.shape=} {real.shape=}"
    with torch.autocast(device_type=fake.device.type, enabled=False):
        window = torch.hann_window(n_fft, periodic=True, device=fake.device)
        specs = [
            torch.stft(
                w.float(), n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
            )
            for w in (fake, real)
        ]
        weight = specs[1].abs()
        weight = weight / weight.mean(dim=(1, 2), keepdim=True).clamp(min=1e-8)
        units = [s * torch.rsqrt(s.real.square() + s.imag.square() + 1e-10) for s in specs]
        total = fake.new_zeros(())
        for f, r, w in (
            (units[0], units[1], weight),  # phase
            (_step(units[0], 1), _step(units[1], 1), weight[:, 1:]),  # group delay
            (_step(units[0], 2), _step(units[1], 2), weight[:, :, 1:]),  # instantaneous frequency
        ):
            agreement = (f * r.conj()).real  # cos of the angle difference where both are unit length
            total = total + (w * (1.0 - agreement)).mean()
        return total


def _step(unit: torch.Tensor, dim: int) -> torch.Tensor:
    """Unit complex of the angle difference between neighbours along ``dim`` (1: frequency, 2: time)."""
    n = unit.shape[dim]
    return unit.narrow(dim, 1, n - 1) * unit.narrow(dim, 0, n - 1).conj()
