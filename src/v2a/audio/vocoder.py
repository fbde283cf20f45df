"""Neural vocoder: log-mel frames -> waveform, Vocos-style (ConvNeXt backbone + iSTFT head).

Contract of the three parts: mel (B, n_mels, T) -> backbone (B, T, D) -> head: STFT (B, F, T) -> wav (B, S)
with S = (T - 1) * hop. The network runs at the mel frame rate; the inverse STFT does the upsampling, which
is why it is fast on CPU (Siuzdak, "Vocos", 2023). This module holds inference only: the losses and
discriminators live in ``v2a.train``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
from torch import nn

from v2a.audio.mel import mel_to_magnitude
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec, get_spec
from v2a.errors import InputError
from v2a.model.checkpoint import check_audio_spec, load_checkpoint

CHECKPOINT_KIND = "vocoder"
PHASE_HEADS = ("angle", "complex")


@dataclass(frozen=True)
class VocoderConfig:
    """Sizes of the vocoder; the audio settings come from the named AudioSpec.

    Attributes:
        spec_name: the AudioSpec this vocoder was built for (its mel bins, hop and rate).
        dim: channels D of the ConvNeXt backbone.
        intermediate_dim: hidden width of each ConvNeXt block's pointwise MLP.
        num_layers: ConvNeXt blocks.
        kernel_size: depthwise convolution width in frames (odd).
        head_n_fft: FFT size of the iSTFT head; 0 means the spec's n_fft.
        layer_scale_init: initial per-channel residual scale (small keeps deep stacks stable early on).
        phase_head: ``angle`` (Vocos) or ``complex`` (real + imaginary part per bin; see ``ISTFTHead``).
        magnitude_prior: predict the log-magnitude as a correction to the mel's least-squares magnitude.
    """

    spec_name: str = DEFAULT_SPEC.name
    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 6
    kernel_size: int = 7
    head_n_fft: int = 0
    layer_scale_init: float = 0.125
    phase_head: str = "angle"
    magnitude_prior: bool = False

    @property
    def spec(self) -> AudioSpec:
        """The AudioSpec named by ``spec_name``."""
        return get_spec(self.spec_name)

    @property
    def n_fft(self) -> int:
        """FFT size used by the iSTFT head."""
        return self.head_n_fft or self.spec.n_fft

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, object]) -> VocoderConfig:
        """Rebuild from :meth:`to_dict`; unknown fields raise InputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InputError(f"vocoder config has unknown fields {unknown}")
        try:
            get_spec(str(fields.get("spec_name", DEFAULT_SPEC.name)))
        except ValueError as exc:
            raise InputError(f"vocoder config: {exc}") from None
        return cls(**fields)  # type: ignore[arg-type]


def vocoder_config(preset: str = "tiny", spec: AudioSpec = DEFAULT_SPEC) -> VocoderConfig:
    """A named size preset for ``spec``.

    Presets: ``tiny`` (the default: 3.0 M parameters, about 200x real time on 2 CPU cores at 24 kHz),
    ``base`` (Vocos-base size, 13.8 M parameters, for GPU training and GPU or many-core inference); both
    with the magnitude prior and the complex phase output. ``tiny-vocos`` is ``tiny`` with the plain Vocos
    head (the ablation baseline, and the architecture of checkpoints trained before the prior existed).

    Raises:
        InputError: unknown preset name.
    """
    improved = {"phase_head": "complex", "magnitude_prior": True}
    presets = {
        "tiny": VocoderConfig(spec_name=spec.name, **improved),
        "base": VocoderConfig(spec_name=spec.name, dim=512, intermediate_dim=1536, num_layers=8, **improved),
        "tiny-vocos": VocoderConfig(spec_name=spec.name),  # the plain Vocos head: the ablation baseline
    }
    if preset not in presets:
        raise InputError(f"unknown vocoder preset {preset!r}; known: {sorted(presets)}")
    return presets[preset]


class DepthwiseConv(nn.Module):
    """Per-channel 1-D convolution over frames, "same" length, on channels-last input.

    Written as unfold + weighted sum: on CPU this is several times faster than a grouped ``nn.Conv1d``
    (whose depthwise kernel also forces (B, D, T) transposes around every block).
    """

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise InputError(f"depthwise kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.randn(dim, kernel_size) / kernel_size**0.5)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        half = self.kernel_size // 2
        x = nn.functional.pad(x, (0, 0, half, half))  # (B, T + K - 1, D)
        windows = x.unfold(1, self.kernel_size, 1)  # (B, T, D, K)
        return (windows * self.weight).sum(-1) + self.bias


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU), scaled residual; channels-last (B, T, D)."""

    def __init__(self, *, dim: int, intermediate_dim: int, kernel_size: int, layer_scale_init: float):
        super().__init__()
        self.dwconv = DepthwiseConv(dim, kernel_size)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))
        return x + self.gamma * y


class ConvNeXtBackbone(nn.Module):
    """Embedding conv, ConvNeXt blocks, final LayerNorm: frames (B, C, T) -> features (B, T, D).

    Args:
        in_channels: C, the channels of each input frame (mel bins).
        dim: D, the blocks' width.
        intermediate_dim: hidden width of each block's pointwise MLP.
        num_layers: ConvNeXt blocks.
        kernel_size: width in frames of the embedding and depthwise convolutions (odd).
        layer_scale_init: initial per-channel residual scale.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        kernel_size: int,
        layer_scale_init: float,
    ):
        super().__init__()
        self.embed = nn.Conv1d(in_channels, dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(
                dim=dim,
                intermediate_dim=intermediate_dim,
                kernel_size=kernel_size,
                layer_scale_init=layer_scale_init,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, T, D)."""
        x = self.norm(self.embed(mel).transpose(1, 2))  # (B, D, T) -> (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)


class ISTFTHead(nn.Module):
    """Predicts the STFT of the waveform (magnitude and phase per bin); the inverse STFT makes the waveform.

    Two phase parametrisations: ``angle`` (Vocos: one angle per bin, used through cos and sin) and
    ``complex`` (a real and an imaginary part per bin, normalised to unit length: the phase is their
    angle, which has no wrap-around for the network to learn; Ai & Ling, "APNet", 2023).
    With ``magnitude_prior`` the log-magnitude is predicted as a correction to the least-squares magnitude
    of the mel itself (the filterbank's pseudo-inverse, as in FreeV, Lv et al. 2024): the network starts
    from the right spectral envelope and spends its capacity on phase and fine structure.
    """

    def __init__(
        self,
        *,
        dim: int,
        n_fft: int,
        hop_length: int,
        phase: str = "angle",
        prior_spec: AudioSpec | None = None,
    ):
        super().__init__()
        if phase not in PHASE_HEADS:
            raise InputError(f"unknown vocoder phase head {phase!r}; known: {PHASE_HEADS}")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.phase = phase
        self.prior_spec = prior_spec
        bins = n_fft // 2 + 1
        self.proj = nn.Linear(dim, bins * (2 if phase == "angle" else 3))
        if prior_spec is not None:  # start exactly at the prior: the log-magnitude correction begins at 0
            with torch.no_grad():
                self.proj.weight[:bins].zero_()
                self.proj.bias[:bins].zero_()
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def spectrum(self, x: torch.Tensor, mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F, T) complex spectrum, F = n_fft // 2 + 1, from backbone features (B, T, D).

        Args:
            x: backbone features.
            mel: (B, n_mels, T) the input log-mel; needed when the head has a magnitude prior.
        """
        bins = self.n_fft // 2 + 1
        x = self.proj(x).transpose(1, 2).float()  # (B, T, k * F) -> (B, k * F, T)
        log_mag = x[:, :bins]
        if self.phase == "angle":
            angle = x[:, bins:]
            real, imag = torch.cos(angle), torch.sin(angle)
        else:
            real, imag = x[:, bins : 2 * bins], x[:, 2 * bins :]
            norm = torch.rsqrt(real.square() + imag.square() + 1e-8)
            real, imag = real * norm, imag * norm
        if self.prior_spec is not None:
            assert mel is not None, "a head with a magnitude prior needs the mel"
            prior = mel_to_magnitude(mel, self.prior_spec).clamp(min=self.prior_spec.log_floor)
            log_mag = log_mag + torch.log(prior)
        # safeguard: exp of an untrained projection can overflow; 100 is far above any real magnitude
        mag = torch.exp(log_mag).clamp(max=1e2)
        return torch.complex(mag * real, mag * imag)

    def forward(self, x: torch.Tensor, mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, S) waveform, S = (T - 1) * hop."""
        return istft(self.spectrum(x, mel), n_fft=self.n_fft, hop_length=self.hop_length, window=self.window)


def istft(spec: torch.Tensor, *, n_fft: int, hop_length: int, window: torch.Tensor) -> torch.Tensor:
    """Centred inverse STFT of a complex spectrum, in float32.

    Args:
        spec: (B, F, T) complex spectrum, F = n_fft // 2 + 1.
        n_fft: FFT size; hop_length: hop in samples; window: (n_fft,) synthesis window.

    Returns:
        (B, S) waveform with S = (T - 1) * hop_length.
    """
    with torch.autocast(device_type=spec.device.type, enabled=False):
        length = (spec.shape[-1] - 1) * hop_length
        if length == 0:  # one frame spans no hop: an empty waveform (torch.istft cannot make one)
            return spec.real.new_zeros(spec.shape[0], 0)
        return torch.istft(
            spec, n_fft=n_fft, hop_length=hop_length, window=window.float(), center=True, length=length
        )


class Vocoder(nn.Module):
    """Mel -> waveform network.

    Args:
        config: sizes and the AudioSpec name (see :class:`VocoderConfig`).
    """

    def __init__(self, config: VocoderConfig):
        super().__init__()
        spec = config.spec
        if config.n_fft < spec.hop_length or config.n_fft % 2:
            raise InputError(f"vocoder head_n_fft={config.n_fft} must be even and >= hop {spec.hop_length}")
        self.config = config
        self.spec = spec
        self.backbone = ConvNeXtBackbone(
            spec.n_mels,
            dim=config.dim,
            intermediate_dim=config.intermediate_dim,
            num_layers=config.num_layers,
            kernel_size=config.kernel_size,
            layer_scale_init=config.layer_scale_init,
        )
        if config.magnitude_prior and config.n_fft != spec.n_fft:
            raise InputError(f"a vocoder magnitude prior needs head_n_fft = the spec's n_fft ({spec.n_fft})")
        self.head = ISTFTHead(
            dim=config.dim,
            n_fft=config.n_fft,
            hop_length=spec.hop_length,
            phase=config.phase_head,
            prior_spec=spec if config.magnitude_prior else None,
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Waveform from log-mel frames.

        Args:
            mel: (B, n_mels, T) log-mel from :func:`v2a.audio.mel.log_mel` with this vocoder's spec.

        Returns:
            (B, S) waveform at ``spec.sample_rate``, S = (T - 1) * hop.
        """
        assert mel.dim() == 3 and mel.shape[1] == self.spec.n_mels, f"{mel.shape=} {self.spec.n_mels=}"
        return self.head(self.backbone(mel), mel)

    @torch.inference_mode()
    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Inference call used by the pipeline: no gradients, float32, output clipped to [-1, 1].

        Args:
            mel: (n_mels, T) or (B, n_mels, T) log-mel.

        Returns:
            (S,) or (B, S) waveform matching the input's batch layout, S = (T - 1) * hop.
        """
        if mel.dim() not in (2, 3) or mel.shape[-2] != self.spec.n_mels:
            raise InputError(
                f"vocoder expects mel of shape (n_mels={self.spec.n_mels}, T) or (B, n_mels, T), "
                f"got {tuple(mel.shape)}"
            )
        squeeze = mel.dim() == 2
        param = next(self.parameters())
        batch = mel.reshape(1, *mel.shape) if squeeze else mel
        wav = self(batch.to(device=param.device, dtype=param.dtype)).clamp(-1.0, 1.0)
        return wav[0] if squeeze else wav

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, *, spec: AudioSpec | None = DEFAULT_SPEC, device: str = "cpu"
    ) -> Vocoder:
        """Load a released vocoder (``config.json`` + ``model.safetensors``), strictly, in eval mode.

        Args:
            path: the checkpoint directory (or either file inside it).
            spec: the AudioSpec the caller works in; a checkpoint for another spec is refused.
                None accepts the checkpoint's own spec.
            device: where to put the weights.

        Raises:
            InputError: missing or malformed checkpoint, not a vocoder, or made for another spec.
        """
        ckpt = load_checkpoint(path, kind=CHECKPOINT_KIND)
        config = VocoderConfig.from_dict(ckpt.config)
        check_audio_spec("vocoder", ckpt.path, config.spec_name, spec.name if spec is not None else None)
        model = cls(config)
        ckpt.load_into(model)
        return model.to(device).eval()
