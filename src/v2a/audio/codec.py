"""Latent codec: log-mel frames <-> the compact latent the generator works in (bundled: PCA; or a 1-D conv VAE).

Contract: mel (B, n_mels, T) at ``spec.mel_fps`` (93.75/s at 24 kHz) -> latent (B, C, L) at
``mel_fps / downsample`` (31.25/s) -> mel (B, n_mels, L * downsample).

Lengths: :meth:`Codec.encode` pads the mel at its end with silent frames (``log(log_floor)``) to a multiple
of ``downsample``, so ``L = ceil(T / downsample)``; :meth:`Codec.decode` returns ``L * downsample`` frames, or
exactly ``num_frames`` when given. A clip of S samples has ``T = S // hop + 1`` mel frames; L generated
latents give ``downsample * L`` mel frames and ``(downsample * L - 1) * hop`` samples from the vocoder.

Latent scale: ``encode`` returns the posterior mean normalised per channel by the ``latent_mean`` /
``latent_std`` buffers (statistics of the training data, set after training and saved in the state dict),
so the generator sees latents of about zero mean and unit variance; ``decode`` undoes the normalisation.

Architectures (``CodecConfig.architecture``):

- ``vae``: ConvNeXt blocks (the vocoder's) at the mel rate, a learned stride-``downsample`` merge of frames,
  ConvNeXt blocks at the latent rate, then a Gaussian posterior (mean, log-variance) regularised by a small
  KL term in training; the decoder mirrors it with a learned frame split. Losses live in ``v2a.train``.
- ``patch``: no network: the latent *is* the log-mel, ``downsample`` neighbouring frames stacked into one
  latent frame of ``n_mels * downsample`` channels (the "normalised patched mel" of DESIGN.md §4). It is
  lossless, so the generator is judged against the vocoder-only ceiling; only its normalisation
  statistics are learned (``v2a train codec --preset patch``).
- ``pca``: the patched mel projected on its ``latent_dim`` leading principal components (a linear
  autoencoder fitted in closed form to the training mels by :func:`fit_pca`, ``v2a train codec --preset
  pca``): as compact as the VAE, and on held-out real recordings closer to the mel than the CPU-trained VAE.
- ``pca_residual``: the ``pca`` encoder (so the same latent space) with a learned decoder: the projection
  back, then ConvNeXt blocks at the mel rate that add what the dropped components most likely held, read
  from the context of neighbouring frames (``v2a train codec --preset pca_residual --decoder-from PCA``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from v2a.audio.spec import DEFAULT_SPEC, AudioSpec, get_spec
from v2a.audio.vocoder import ConvNeXtBackbone, ConvNeXtBlock
from v2a.errors import InputError
from v2a.model.checkpoint import check_audio_spec, load_checkpoint

CHECKPOINT_KIND = "codec"
LATENT_SCALES = ("channel", "global")  # per-channel or one shared latent normalisation scale
_LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite in float32 early in training


@dataclass(frozen=True)
class CodecConfig:
    """Sizes of the codec; the audio settings come from the named AudioSpec.

    Attributes:
        spec_name: the AudioSpec whose mels this codec compresses.
        architecture: ``vae`` (learned compression), ``patch`` (stacked mel frames, no weights; then
            ``latent_dim`` must be ``n_mels * downsample``), ``pca`` (the stacked frames' leading principal
            components; ``latent_dim`` at most ``n_mels * downsample``) or ``pca_residual`` (``pca`` with a
            learned correction in the decoder). The network sizes are used by ``vae`` and, for the
            correction (``dim``, ``intermediate_dim``, ``mel_layers``, ``kernel_size``), ``pca_residual``.
        latent_dim: channels C of the latent (what the generator models).
        downsample: mel frames per latent frame (3 gives 31.25 latents/s at 24 kHz, hop 256).
        dim: channels D of the ConvNeXt stacks.
        intermediate_dim: hidden width of each ConvNeXt block's pointwise MLP.
        mel_layers: ConvNeXt blocks at the mel rate, in the encoder and again in the decoder.
        latent_layers: ConvNeXt blocks at the latent rate, in the encoder and again in the decoder.
        kernel_size: depthwise convolution width in frames (odd).
        layer_scale_init: initial per-channel residual scale.
        mel_offset, mel_scale: the decoder predicts ``(mel - mel_offset) / mel_scale`` (about the corpus
            log-mel mean and std), so its output layer starts near the right range.
        latent_scale: how latents are normalised: ``channel`` (each channel to unit variance) or ``global``
            (one scale for all channels, each still centred): a ``pca`` latent then keeps its components'
            relative sizes, so a generator's loss weighs the leading components more than the small ones.
    """

    spec_name: str = DEFAULT_SPEC.name
    architecture: str = "vae"
    latent_dim: int = 24
    downsample: int = 3
    dim: int = 192
    intermediate_dim: int = 576
    mel_layers: int = 2
    latent_layers: int = 3
    kernel_size: int = 7
    layer_scale_init: float = 0.125
    mel_offset: float = -5.0
    mel_scale: float = 3.0
    latent_scale: str = "channel"

    @property
    def spec(self) -> AudioSpec:
        """The AudioSpec named by ``spec_name``."""
        return get_spec(self.spec_name)

    @property
    def latent_fps(self) -> float:
        """Latent frames per second (the generator's audio token rate)."""
        return self.spec.mel_fps / self.downsample

    def latent_frames(self, mel_frames: int) -> int:
        """Latent frames L for ``mel_frames`` mel frames: ``ceil(T / downsample)``."""
        return -(-mel_frames // self.downsample)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, object]) -> CodecConfig:
        """Rebuild from :meth:`to_dict`; unknown fields or an unknown spec raise InputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InputError(f"codec config has unknown fields {unknown}")
        try:
            get_spec(str(fields.get("spec_name", DEFAULT_SPEC.name)))
        except ValueError as exc:
            raise InputError(f"codec config: {exc}") from None
        return cls(**fields)  # type: ignore[arg-type]


def codec_config(preset: str = "tiny", spec: AudioSpec = DEFAULT_SPEC) -> CodecConfig:
    """A named size preset for ``spec``.

    Presets: ``tiny`` (the default: 2.6 M parameters, trains on CPU; encode + decode run about twice as fast
    as the tiny vocoder), ``base`` (17 M parameters, for GPU training), ``patch`` (no parameters: the
    normalised mel, three frames per latent frame, ``3 * n_mels`` channels), ``pca`` (the 32 leading
    principal components of those stacked frames), ``pca_residual`` (those components with a learned
    decoder correction of 4 ConvNeXt blocks: 1.8 M parameters).

    Raises:
        InputError: unknown preset name.
    """
    presets = {
        "tiny": CodecConfig(spec_name=spec.name),
        "base": CodecConfig(
            spec_name=spec.name, dim=384, intermediate_dim=1152, mel_layers=3, latent_layers=6
        ),
        "patch": CodecConfig(spec_name=spec.name, architecture="patch", latent_dim=3 * spec.n_mels),
        "pca": CodecConfig(spec_name=spec.name, architecture="pca", latent_dim=32),
        "pca_residual": CodecConfig(
            spec_name=spec.name,
            architecture="pca_residual",
            latent_dim=32,
            dim=256,
            intermediate_dim=768,
            mel_layers=4,
        ),
    }
    if preset not in presets:
        raise InputError(f"unknown codec preset {preset!r}; known: {sorted(presets)}")
    return presets[preset]


def _blocks(config: CodecConfig, count: int) -> nn.ModuleList:
    return nn.ModuleList(
        ConvNeXtBlock(
            dim=config.dim,
            intermediate_dim=config.intermediate_dim,
            kernel_size=config.kernel_size,
            layer_scale_init=config.layer_scale_init,
        )
        for _ in range(count)
    )


class CodecEncoder(nn.Module):
    """Mel (B, n_mels, T) -> posterior mean and log-variance, each (B, C, T / downsample)."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.factor = config.downsample
        self.embed = nn.Conv1d(n_mels, config.dim, config.kernel_size, padding=config.kernel_size // 2)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.mel_blocks = _blocks(config, config.mel_layers)
        # merging `downsample` neighbouring frames by a linear map is a stride-r convolution, channels-last
        self.merge = nn.Linear(config.downsample * config.dim, config.dim)
        self.merge_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.latent_blocks = _blocks(config, config.latent_layers)
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.proj = nn.Linear(config.dim, 2 * config.latent_dim)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: mel (B, n_mels, T), T a multiple of ``downsample``. Returns: mean, logvar (B, C, L)."""
        B, _, T = mel.shape
        assert T % self.factor == 0, f"{T=} {self.factor=}"
        x = self.norm(self.embed(mel).transpose(1, 2))  # (B, D, T) -> (B, T, D)
        for block in self.mel_blocks:
            x = block(x)
        x = self.merge_norm(self.merge(x.reshape(B, T // self.factor, -1)))  # (B, L, r * D) -> (B, L, D)
        for block in self.latent_blocks:
            x = block(x)
        stats = self.proj(self.final_norm(x)).transpose(1, 2)  # (B, L, 2C) -> (B, 2C, L)
        mean, logvar = stats.chunk(2, dim=1)  # (B, C, L) each
        return mean, logvar.clamp(*_LOGVAR_RANGE)


class CodecDecoder(nn.Module):
    """Latent (B, C, L) on the raw scale -> mel (B, n_mels, L * downsample)."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.factor = config.downsample
        self.offset, self.scale = config.mel_offset, config.mel_scale
        self.embed = nn.Conv1d(config.latent_dim, config.dim, 3, padding=1)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.latent_blocks = _blocks(config, config.latent_layers)
        self.split = nn.Linear(config.dim, config.downsample * config.dim)
        self.split_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.mel_blocks = _blocks(config, config.mel_layers)
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = nn.Linear(config.dim, n_mels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, C, L). Returns: (B, n_mels, L * downsample) log-mel."""
        B, _, L = z.shape
        x = self.norm(self.embed(z).transpose(1, 2))  # (B, D, L) -> (B, L, D)
        for block in self.latent_blocks:
            x = block(x)
        x = self.split_norm(self.split(x).reshape(B, L * self.factor, -1))  # (B, L, r * D) -> (B, T, D)
        for block in self.mel_blocks:
            x = block(x)
        out = self.head(self.final_norm(x)).transpose(1, 2)  # (B, T, n_mels) -> (B, n_mels, T)
        return out * self.scale + self.offset


class PatchEncoder(nn.Module):
    """Mel (B, n_mels, T) -> the frames stacked by ``downsample`` (B, n_mels * r, T / r), log-variance at its floor.

    Channel ``k * n_mels + m`` holds mel bin ``m`` of frame ``k`` within each group of ``r`` frames.
    """

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.factor = config.downsample

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: mel (B, n_mels, T), T a multiple of ``downsample``. Returns: mean, logvar (B, C, L)."""
        B, M, T = mel.shape
        assert T % self.factor == 0, f"{T=} {self.factor=}"
        # (B, M, L, r) -> (B, r, M, L) -> (B, r * M, L)
        mean = (
            mel.reshape(B, M, T // self.factor, self.factor)
            .permute(0, 3, 1, 2)
            .reshape(B, -1, T // self.factor)
        )
        return mean, torch.full_like(mean, _LOGVAR_RANGE[0])


class PatchDecoder(nn.Module):
    """Stacked frames (B, n_mels * r, L) -> mel (B, n_mels, L * r): the inverse of :class:`PatchEncoder`."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.factor, self.n_mels = config.downsample, n_mels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, n_mels * r, L). Returns: (B, n_mels, L * r) log-mel."""
        B, _, L = z.shape
        # (B, r, M, L) -> (B, M, L, r) -> (B, M, L * r)
        return z.reshape(B, self.factor, self.n_mels, L).permute(0, 2, 3, 1).reshape(B, self.n_mels, -1)


class PcaBasis(nn.Module):
    """The centre (P,) and orthonormal rows (C, P) of a projection of stacked frames (P = n_mels * r)."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        width = n_mels * config.downsample
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("components", torch.eye(config.latent_dim, width))


class PcaEncoder(nn.Module):
    """Mel (B, n_mels, T) -> the principal components (B, C, T / r) of its stacked frames."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.patch = PatchEncoder(config, n_mels)
        self.basis = PcaBasis(config, n_mels)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: mel (B, n_mels, T), T a multiple of ``downsample``. Returns: mean, logvar (B, C, L)."""
        stacked, _ = self.patch(mel)  # (B, P, L)
        centered = stacked - self.basis.center[:, None]
        mean = torch.einsum("cp,bpl->bcl", self.basis.components, centered)
        return mean, torch.full_like(mean, _LOGVAR_RANGE[0])


class PcaDecoder(nn.Module):
    """Principal components (B, C, L) -> mel (B, n_mels, L * r): projection back, then unstacking."""

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__()
        self.unpatch = PatchDecoder(config, n_mels)
        self.basis = PcaBasis(config, n_mels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, C, L). Returns: (B, n_mels, L * r) log-mel."""
        stacked = torch.einsum("cp,bcl->bpl", self.basis.components, z) + self.basis.center[:, None]
        return self.unpatch(stacked)


class PcaResidualDecoder(PcaDecoder):
    """The projection back of :class:`PcaDecoder`, then a learned correction of the mel it gives.

    ConvNeXt blocks at the mel rate read the projected log-mel (floored like a real one) and add what the
    dropped components most likely held, from the context of neighbouring frames. The output layer starts
    at zero, so an untrained correction is the plain PCA decoder; the basis buffers are shared with the
    encoder's, so the latent space is the ``pca`` codec's.
    """

    def __init__(self, config: CodecConfig, n_mels: int):
        super().__init__(config, n_mels)
        self.offset, self.scale = config.mel_offset, config.mel_scale
        self.floor = math.log(config.spec.log_floor)
        self.backbone = ConvNeXtBackbone(
            n_mels,
            dim=config.dim,
            intermediate_dim=config.intermediate_dim,
            num_layers=config.mel_layers,
            kernel_size=config.kernel_size,
            layer_scale_init=config.layer_scale_init,
        )
        self.head = nn.Linear(config.dim, n_mels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, C, L). Returns: (B, n_mels, L * r) log-mel."""
        mel = super().forward(z).clamp(min=self.floor)
        features = self.backbone((mel - self.offset) / self.scale)  # (B, T, D)
        return mel + self.head(features).transpose(1, 2) * self.scale


_ARCHITECTURES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "vae": (CodecEncoder, CodecDecoder),
    "patch": (PatchEncoder, PatchDecoder),
    "pca": (PcaEncoder, PcaDecoder),
    "pca_residual": (PcaEncoder, PcaResidualDecoder),
}
PCA_ARCHITECTURES = ("pca", "pca_residual")  # the latent is the stacked frames' principal components


class Codec(nn.Module):
    """Mel autoencoder (or the patched mel itself) with a normalised latent.

    Args:
        config: architecture, sizes and the AudioSpec name (see :class:`CodecConfig`).
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        if config.latent_scale not in LATENT_SCALES:
            raise InputError(
                f"codec latent_scale must be one of {LATENT_SCALES}, got {config.latent_scale!r}"
            )
        if config.kernel_size % 2 == 0 or config.downsample < 1 or config.latent_dim < 1:
            raise InputError(
                f"codec config needs an odd kernel_size, downsample >= 1 and latent_dim >= 1, got {config}"
            )
        if config.architecture not in _ARCHITECTURES:
            raise InputError(
                f"unknown codec architecture {config.architecture!r}; known: {sorted(_ARCHITECTURES)}"
            )
        n_mels = config.spec.n_mels
        if config.architecture == "patch" and config.latent_dim != n_mels * config.downsample:
            raise InputError(
                f"a patch codec's latent_dim must be n_mels * downsample = {n_mels * config.downsample}, "
                f"got {config.latent_dim}"
            )
        if config.architecture in PCA_ARCHITECTURES and config.latent_dim > n_mels * config.downsample:
            raise InputError(
                f"a pca codec keeps at most n_mels * downsample = {n_mels * config.downsample} components, "
                f"got latent_dim={config.latent_dim}"
            )
        self.config = config
        self.spec = config.spec
        encoder, decoder = _ARCHITECTURES[config.architecture]
        self.encoder = encoder(config, n_mels)
        self.decoder = decoder(config, n_mels)
        # per-channel statistics of the raw posterior means over training data (set by the trainer)
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_std", torch.ones(config.latent_dim))

    # ---- raw (unnormalised) network, used in training ----

    def pad(self, mel: torch.Tensor) -> torch.Tensor:
        """Append silent frames so T becomes a multiple of ``downsample``: (B, n_mels, T) -> (B, n_mels, r*L)."""
        extra = -mel.shape[-1] % self.config.downsample
        if extra == 0:
            return mel
        return nn.functional.pad(mel, (0, extra), value=math.log(self.spec.log_floor))

    def posterior(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw posterior mean and log-variance, each (B, C, L), of a mel (B, n_mels, T) of any length T."""
        assert mel.dim() == 3 and mel.shape[1] == self.spec.n_mels, f"{mel.shape=} {self.spec.n_mels=}"
        return self.encoder(self.pad(mel))

    def forward(
        self, mel: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: encode, draw from the posterior (or take its mean), decode.

        Args:
            mel: (B, n_mels, T) log-mel, any T >= 1.
            sample: draw z ~ N(mean, exp(logvar)); False decodes the mean.
            generator: random source of the draw.

        Returns:
            ``(reconstruction (B, n_mels, T), mean (B, C, L), logvar (B, C, L))``, all raw scale.
        """
        mean, logvar = self.posterior(mel)
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * noise
        return self.decoder(z)[..., : mel.shape[-1]], mean, logvar

    # ---- inference on the normalised scale ----

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the per-channel (C,) mean and std of raw latents over training data.

        With ``latent_scale == "global"`` every channel gets the root mean square of the stds instead.
        """
        std = std.reshape(-1)
        if self.config.latent_scale == "global":
            std = std.square().mean().sqrt().expand_as(std)
        self.latent_mean.copy_(mean.reshape(-1))
        self.latent_std.copy_(std.clamp_min(1e-5))

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, C, L) -> normalised latents (a new tensor)."""
        return (raw - self.latent_mean[:, None]) / self.latent_std[:, None]

    def unnormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, L) -> raw latents (a new tensor)."""
        return latent * self.latent_std[:, None] + self.latent_mean[:, None]

    @torch.inference_mode()
    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised latent of a log-mel (the posterior mean; deterministic).

        Args:
            mel: (n_mels, T) or (B, n_mels, T) log-mel from :func:`v2a.audio.mel.log_mel`, any T >= 1.

        Returns:
            (C, L) or (B, C, L) float latent matching the input's batch layout, L = ceil(T / downsample).
        """
        batch, squeeze = self._batched(mel, self.spec.n_mels, "mel", "n_mels")
        mean, _ = self.posterior(batch)
        latent = self.normalize(mean)
        return latent[0] if squeeze else latent

    @torch.inference_mode()
    def decode(self, latent: torch.Tensor, *, num_frames: int | None = None) -> torch.Tensor:
        """Log-mel from normalised latents.

        Args:
            latent: (C, L) or (B, C, L) normalised latent.
            num_frames: trim the output to this many mel frames (at most ``L * downsample``); None keeps all.

        Returns:
            (n_mels, T) or (B, n_mels, T) log-mel, T = ``num_frames`` or ``L * downsample``, at or above
            ``log(spec.log_floor)`` like any log-mel.
        """
        batch, squeeze = self._batched(latent, self.config.latent_dim, "latent", "latent_dim")
        total = batch.shape[-1] * self.config.downsample
        if num_frames is not None and not 1 <= num_frames <= total:
            raise InputError(
                f"num_frames={num_frames} is outside 1..{total} for {batch.shape[-1]} latent frames"
            )
        mel = self.decoder(self.unnormalize(batch))[..., : num_frames or total]
        # a real log-mel never goes below the floor; the decoder can undershoot it by a little in silence
        mel = mel.clamp(min=math.log(self.spec.log_floor))
        return mel[0] if squeeze else mel

    def _batched(self, x: torch.Tensor, channels: int, what: str, name: str) -> tuple[torch.Tensor, bool]:
        if x.dim() not in (2, 3) or x.shape[-2] != channels or x.shape[-1] < 1:
            raise InputError(
                f"codec expects {what} of shape ({name}={channels}, T) or (B, {name}={channels}, T) with "
                f"T >= 1, got {tuple(x.shape)}"
            )
        param = self.latent_mean
        batch = x.reshape(1, *x.shape) if x.dim() == 2 else x
        return batch.to(device=param.device, dtype=param.dtype), x.dim() == 2

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, *, spec: AudioSpec | None = DEFAULT_SPEC, device: str = "cpu"
    ) -> Codec:
        """Load a released codec (``config.json`` + ``model.safetensors``), strictly, in eval mode.

        Args:
            path: the checkpoint directory (or either file inside it).
            spec: the AudioSpec the caller works in; a checkpoint for another spec is refused.
                None accepts the checkpoint's own spec.
            device: where to put the weights.

        Raises:
            InputError: missing or malformed checkpoint, not a codec, or made for another spec.
        """
        ckpt = load_checkpoint(path, kind=CHECKPOINT_KIND)
        config = CodecConfig.from_dict(ckpt.config)
        check_audio_spec("codec", ckpt.path, config.spec_name, spec.name if spec is not None else None)
        model = cls(config)
        ckpt.load_into(model)
        return model.to(device).eval()


@torch.no_grad()
def fit_pca(codec: Codec, mels: list[torch.Tensor]) -> float:
    """Fit a pca codec's basis to log-mels: centre and leading principal components of the stacked frames.

    Args:
        codec: a codec of architecture ``pca`` or ``pca_residual`` (its basis is overwritten in place).
        mels: (B, n_mels, T) log-mel batches of the training audio.

    Returns:
        The fraction of the stacked frames' variance the kept components explain.

    Raises:
        InputError: not a pca codec, or fewer stacked frames than components.
    """
    if codec.config.architecture not in PCA_ARCHITECTURES:
        raise InputError(f"fit_pca needs a pca codec, got architecture {codec.config.architecture!r}")
    stacked = torch.cat(
        [
            codec.encoder.patch(codec.pad(m))[0]
            .transpose(1, 2)
            .reshape(-1, codec.encoder.basis.center.numel())
            for m in mels
        ]
    ).double()  # (frames, P)
    if stacked.shape[0] <= codec.config.latent_dim:
        raise InputError(
            f"fitting {codec.config.latent_dim} components needs more than {stacked.shape[0]} stacked frames"
        )
    center = stacked.mean(dim=0)
    variances, vectors = torch.linalg.eigh(torch.cov((stacked - center).T))  # ascending
    kept = vectors[:, -codec.config.latent_dim :].flip(1).T  # (C, P), largest variance first
    # fix each component's sign (its largest entry positive) so refits give the same latents
    peak = kept.abs().argmax(dim=1)
    kept = kept * torch.sign(kept[torch.arange(len(kept)), peak])[:, None]
    for basis in (codec.encoder.basis, codec.decoder.basis):
        basis.center.copy_(center.to(basis.center))
        basis.components.copy_(kept.to(basis.components))
    return float(variances[-codec.config.latent_dim :].sum() / variances.sum())
