"""Round trip through the audio representation: waveform -> log-mel -> (codec ->) vocoder -> waveform.

What ``v2a reconstruct`` runs, so anyone can listen to what the representation keeps. ``via`` picks the path:

* ``vocoder``: mel -> neural vocoder (what the vocoder loses);
* ``codec``: mel -> codec latent -> mel -> vocoder (what the generator's representation keeps);
* ``griffinlim``: mel -> Griffin-Lim (the phase-less baseline; no checkpoint needed).

The output has exactly the input's number of samples at the AudioSpec's rate. Long inputs are processed in
overlapping windows (30 s, 1 s linear crossfade), so memory stays bounded for any duration.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from v2a.audio.codec import Codec
from v2a.audio.griffinlim import griffin_lim
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.audio.vocoder import Vocoder
from v2a.errors import InputError
from v2a.io.atomic import check_output_path
from v2a.io.audio import load_audio, save_audio

VIA = ("vocoder", "codec", "griffinlim")
CHUNK_SECONDS = 30.0
OVERLAP_SECONDS = 1.0


def reconstruct_mel(
    mel: torch.Tensor,
    *,
    via: str = "vocoder",
    vocoder: Vocoder | None = None,
    codec: Codec | None = None,
    spec: AudioSpec = DEFAULT_SPEC,
) -> torch.Tensor:
    """Waveform from a log-mel along the chosen path.

    Args:
        mel: (n_mels, T) or (B, n_mels, T) log-mel of ``spec``.
        via: ``vocoder``, ``codec`` or ``griffinlim``.
        vocoder: the vocoder (needed unless ``via`` is ``griffinlim``).
        codec: the codec (needed for ``via="codec"``).
        spec: the AudioSpec of the mel.

    Returns:
        (S,) or (B, S) float32 waveform on the CPU, S = (T - 1) * hop, in [-1, 1].
    """
    _check_via(via, vocoder, codec)
    if via == "griffinlim":
        return griffin_lim(mel, spec, n_iter=32).cpu()
    assert vocoder is not None
    if via == "codec":
        assert codec is not None
        mel = codec.decode(codec.encode(mel), num_frames=mel.shape[-1])
    return vocoder.decode(mel).float().cpu()


def reconstruct_waveform(
    wav: np.ndarray | torch.Tensor,
    *,
    via: str = "vocoder",
    vocoder: Vocoder | None = None,
    codec: Codec | None = None,
    spec: AudioSpec = DEFAULT_SPEC,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
) -> np.ndarray:
    """Round trip of a mono waveform: same length out as in.

    Args:
        wav: (S,) waveform at ``spec.sample_rate``, any S >= 0.
        via: ``vocoder``, ``codec`` or ``griffinlim`` (see the module docstring).
        vocoder: the vocoder (needed unless ``via`` is ``griffinlim``).
        codec: the codec (needed for ``via="codec"``).
        spec: the AudioSpec.
        chunk_seconds: window length for long inputs (whole codec frames).
        overlap_seconds: linear crossfade between consecutive windows (at most half a window).

    Returns:
        (S,) float32 waveform in [-1, 1].
    """
    _check_via(via, vocoder, codec)
    x = wav.float() if isinstance(wav, torch.Tensor) else torch.tensor(np.asarray(wav, dtype=np.float32))
    if x.dim() != 1:
        raise InputError(f"reconstruct expects a mono (S,) waveform, got shape {tuple(x.shape)}")
    total = x.shape[0]
    # windows start on whole codec frames (downsample * hop samples), so every window sees the same grid
    grid = spec.hop_length * (codec.config.downsample if codec is not None else 1)
    chunk = max(grid, round(chunk_seconds * spec.sample_rate) // grid * grid)
    overlap = min(chunk // 2, max(grid, round(overlap_seconds * spec.sample_rate) // grid * grid))
    if total <= chunk:
        return _round_trip(x, via, vocoder, codec, spec)
    out = np.zeros(total, dtype=np.float32)
    step = chunk - overlap
    starts = list(range(0, total - overlap, step))
    fade_in = np.linspace(0.0, 1.0, overlap, endpoint=False, dtype=np.float32)
    for i, start in enumerate(starts):
        end = total if i == len(starts) - 1 else start + chunk
        piece = _round_trip(x[start:end], via, vocoder, codec, spec)
        if i > 0:
            piece[:overlap] *= fade_in
        if end < total:
            piece[-overlap:] *= 1.0 - fade_in  # the next window's fade-in and this fade-out sum to 1
        out[start:end] += piece
    return np.clip(out, -1.0, 1.0)


def _round_trip(
    x: torch.Tensor, via: str, vocoder: Vocoder | None, codec: Codec | None, spec: AudioSpec
) -> np.ndarray:
    """One window: (S,) -> (S,). One extra hop of silence at the end lets the output cover every sample."""
    padded = torch.nn.functional.pad(x, (0, spec.hop_length))
    device = vocoder.head.window.device if vocoder is not None else torch.device("cpu")
    mel = log_mel(padded.to(device), spec)  # (n_mels, T), T = S // hop + 2
    wav = reconstruct_mel(mel, via=via, vocoder=vocoder, codec=codec, spec=spec)
    return wav[: x.shape[0]].numpy().astype(np.float32, copy=True)


def reconstruct(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    via: str = "vocoder",
    vocoder_checkpoint: str | os.PathLike | None = None,
    codec_checkpoint: str | os.PathLike | None = None,
    overwrite: bool = True,
    device: str = "cpu",
) -> Path:
    """Read the sound of an audio or video file, round-trip it, and write the result (``v2a reconstruct``).

    Args:
        src: audio file, or a video file with an audio stream (its channels are mixed to mono).
        out: output audio file (.wav, .flac, ...), written atomically at the AudioSpec's rate (24 kHz).
        via: ``vocoder``, ``codec`` or ``griffinlim``.
        vocoder_checkpoint: a vocoder release folder; None uses the bundled default.
        codec_checkpoint: a codec release folder; None uses the bundled default.
        overwrite: replace an existing ``out`` (never the input).
        device: where the networks run.

    Returns:
        The written file.

    Raises:
        InputError: unknown ``via``, unreadable input or no audio in it, or an unusable checkpoint.
        ModelUnavailableError: a bundled checkpoint that is needed is missing.
        OutputError: ``out`` is the input, is in a missing folder, or exists without ``overwrite``.
    """
    from v2a.audio.bundled import default_codec, default_vocoder

    if via not in VIA:
        raise InputError(f"unknown reconstruction path {via!r}; choose one of {', '.join(VIA)}")
    target = check_output_path(out, inputs=[src], overwrite=overwrite)
    spec = DEFAULT_SPEC
    wav, _ = load_audio(src, sr=spec.sample_rate)
    vocoder = codec = None
    if via != "griffinlim":
        vocoder = (
            Vocoder.from_checkpoint(vocoder_checkpoint, spec=spec, device=device)
            if vocoder_checkpoint is not None
            else default_vocoder(spec=spec, device=device)
        )
    if via == "codec":
        codec = (
            Codec.from_checkpoint(codec_checkpoint, spec=spec, device=device)
            if codec_checkpoint is not None
            else default_codec(spec=spec, device=device)
        )
    result = reconstruct_waveform(wav, via=via, vocoder=vocoder, codec=codec, spec=spec)
    return save_audio(target, result, spec.sample_rate, overwrite=overwrite)


def _check_via(via: str, vocoder: Vocoder | None, codec: Codec | None) -> None:
    if via not in VIA:
        raise InputError(f"unknown reconstruction path {via!r}; choose one of {', '.join(VIA)}")
    if via != "griffinlim" and vocoder is None:
        raise InputError(f"reconstruction via {via!r} needs a vocoder")
    if via == "codec" and codec is None:
        raise InputError("reconstruction via 'codec' needs a codec")
