"""Log-mel features: the one function that turns a waveform into mel frames, for training and inference.

The recipe (fixed by the AudioSpec): centred STFT with zero padding of ``n_fft // 2`` on both sides and a
periodic Hann window of ``win_length``, magnitude (not power), a Slaney-scale mel filterbank with Slaney area
normalisation (librosa's default), then ``log(clamp(mel, log_floor))``. A waveform of S samples gives
``spec.num_frames(S) = S // hop + 1`` frames.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.errors import InputError

_SLANEY_F_SP = 200.0 / 3  # Hz per mel below the break frequency (linear part of the Slaney scale)
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = np.log(6.4) / 27.0  # log-spaced part: 27 mels per factor 6.4 above 1 kHz


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    min_log_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    linear = freq / _SLANEY_F_SP
    log = min_log_mel + np.log(np.maximum(freq, 1e-10) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(freq >= _SLANEY_BREAK_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    min_log_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    linear = mel * _SLANEY_F_SP
    log = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log, linear)


def mel_filterbank_np(spec: AudioSpec) -> np.ndarray:
    """Triangular Slaney mel filters with area normalisation.

    Returns:
        (n_mels, n_fft // 2 + 1) float64 weights: row m sums the STFT magnitudes into mel band m.
    """
    fft_freqs = np.linspace(0.0, spec.sample_rate / 2, spec.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(spec.f_min), hz_to_mel(spec.f_max), spec.n_mels + 2))
    widths = np.diff(edges)  # (n_mels + 1,)
    ramps = edges[:, None] - fft_freqs[None, :]  # (n_mels + 2, F)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each triangle has unit area in Hz, so band energy is comparable across widths
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


@functools.lru_cache(maxsize=16)
def _filterbank(spec: AudioSpec, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank_np(spec)).to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=16)
def _window(win_length: int, device: torch.device) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, device=device, dtype=torch.float32)


def mel_filterbank(spec: AudioSpec = DEFAULT_SPEC, device: torch.device | str = "cpu") -> torch.Tensor:
    """The cached (n_mels, n_fft // 2 + 1) float32 filterbank of ``spec`` on ``device`` (do not modify)."""
    return _filterbank(spec, torch.device(device))


def stft_window(spec: AudioSpec = DEFAULT_SPEC, device: torch.device | str = "cpu") -> torch.Tensor:
    """The cached periodic Hann analysis window of ``spec`` (win_length samples) on ``device``."""
    return _window(spec.win_length, torch.device(device))


def log_mel(wav: torch.Tensor | np.ndarray, spec: AudioSpec = DEFAULT_SPEC) -> torch.Tensor:
    """Log-mel spectrogram of a mono waveform at ``spec.sample_rate``.

    Computed in float32 whatever the input dtype or an enclosing autocast, so training and inference
    see the same numbers.

    Args:
        wav: (S,) or (B, S) waveform, tensor or ndarray, nominally in [-1, 1]. S may be any length >= 0.
        spec: the AudioSpec giving rate, STFT and mel settings.

    Returns:
        float32 tensor on the input's device: (n_mels, T) for a (S,) input, (B, n_mels, T) for (B, S),
        with T = spec.num_frames(S).
    """
    x = torch.from_numpy(np.ascontiguousarray(wav)) if isinstance(wav, np.ndarray) else wav
    if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2):
        shape = tuple(getattr(x, "shape", ()))
        raise InputError(f"log_mel expects a (S,) or (B, S) waveform, got shape {shape}")
    if not x.is_floating_point():
        raise InputError(f"log_mel expects real float samples in [-1, 1], got dtype {x.dtype}")
    squeeze = x.dim() == 1
    x = x.reshape(1, -1) if squeeze else x
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        pad = spec.n_fft // 2
        # zero padding (not reflect) works for any length, even shorter than the window
        x = torch.nn.functional.pad(x, (pad, pad))  # (B, S + n_fft)
        stft = torch.stft(
            x,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.win_length,
            window=stft_window(spec, x.device),
            center=False,
            return_complex=True,
        )  # (B, F, T)
        mag = stft.abs()
        mel = torch.matmul(mel_filterbank(spec, x.device), mag)  # (B, n_mels, T)
        out = torch.log(torch.clamp(mel, min=spec.log_floor))
    return out[0] if squeeze else out


@functools.lru_cache(maxsize=8)
def _inverse_filterbank(spec: AudioSpec, device: torch.device) -> torch.Tensor:
    return torch.linalg.pinv(mel_filterbank(spec, device).double()).float()  # (F, n_mels)


def mel_to_magnitude(mel: torch.Tensor, spec: AudioSpec = DEFAULT_SPEC) -> torch.Tensor:
    """Least-squares STFT magnitude of a log-mel (pseudo-inverse of the filterbank, clipped at 0).

    Args:
        mel: (B, n_mels, T) log-mel.

    Returns:
        (B, n_fft // 2 + 1, T) non-negative magnitudes.
    """
    amp = torch.exp(mel.float())
    return torch.matmul(_inverse_filterbank(spec, mel.device), amp).clamp(min=0.0)
