"""Griffin-Lim mel inversion: a debug fallback and the quality baseline the neural vocoder must beat."""

from __future__ import annotations

import torch

from v2a.audio.mel import mel_to_magnitude, stft_window
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.errors import InputError


def griffin_lim(
    mel: torch.Tensor,
    spec: AudioSpec = DEFAULT_SPEC,
    *,
    n_iter: int = 32,
    momentum: float = 0.99,
    seed: int = 0,
) -> torch.Tensor:
    """Waveform from log-mel by fast Griffin-Lim (Perraudin et al., 2013: GL with momentum).

    Args:
        mel: (n_mels, T) or (B, n_mels, T) log-mel made by :func:`v2a.audio.mel.log_mel` with ``spec``.
        spec: the AudioSpec of the mel.
        n_iter: phase-refinement iterations.
        momentum: 0 gives plain Griffin-Lim; 0.99 converges much faster.
        seed: seed of the random initial phase (the output is deterministic for a seed).

    Returns:
        (S,) or (B, S) float32 waveform, S = (T - 1) * hop, clipped to [-1, 1].
    """
    if mel.dim() not in (2, 3) or mel.shape[-2] != spec.n_mels:
        raise InputError(
            f"griffin_lim expects mel (n_mels={spec.n_mels}, T) or (B, n_mels, T), got {tuple(mel.shape)}"
        )
    squeeze = mel.dim() == 2
    batch = mel.reshape(1, *mel.shape) if squeeze else mel
    mag = mel_to_magnitude(batch, spec)  # (B, F, T)
    length = (mag.shape[-1] - 1) * spec.hop_length
    if length == 0:  # a single frame covers no samples
        wav = mag.new_zeros(mag.shape[0], 0)
        return wav[0] if squeeze else wav
    window = stft_window(spec, mag.device)
    stft_args = {
        "n_fft": spec.n_fft,
        "hop_length": spec.hop_length,
        "win_length": spec.win_length,
        "window": window,
    }

    def inverse(spectrum: torch.Tensor) -> torch.Tensor:
        return torch.istft(spectrum, center=True, length=length, **stft_args)

    def forward(wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav, center=True, pad_mode="constant", return_complex=True, **stft_args)

    generator = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=generator).to(mag.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = forward(inverse(mag * angles))
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
        previous = rebuilt
    wav = inverse(mag * angles).clamp(-1.0, 1.0)
    return wav[0] if squeeze else wav
