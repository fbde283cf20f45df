"""Sizes of the generator (``ModelConfig`` with presets tiny/small/medium) and clip lengths (``SequenceConfig``).

All inputs of the generator live on one timeline whose zero is the first video frame: audio latent frame
``j`` sits at ``j / latent_fps`` seconds, semantic frame ``i`` at ``i / semantic_fps`` and sync frame ``k``
at ``k / sync_fps`` (unless explicit timestamps are given with the features).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError

# codec latent rate of the default AudioSpec: mel frames per second / the codec's temporal downsampling (3)
DEFAULT_LATENT_FPS = DEFAULT_SPEC.sample_rate / DEFAULT_SPEC.hop_length / 3


def _frames(duration: float, fps: float) -> int:
    """Frames whose timestamp ``k / fps`` lies in ``[0, duration)``; the epsilon absorbs float error."""
    return max(1, math.ceil(duration * fps - 1e-6))


@dataclass(frozen=True)
class SequenceConfig:
    """Token counts of one clip, derived from its duration and the feature rates.

    Attributes:
        duration: clip length in seconds.
        latent_fps: audio latent frames per second.
        semantic_fps: semantic (visual) feature frames per second.
        sync_fps: sync (motion) feature frames per second.
    """

    duration: float
    latent_fps: float = DEFAULT_LATENT_FPS
    semantic_fps: float = 8.0
    sync_fps: float = 25.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise InputError(f"clip duration must be a positive number of seconds, got {self.duration}")

    @property
    def latent_frames(self) -> int:
        """Audio latent frames T_a."""
        return _frames(self.duration, self.latent_fps)

    @property
    def semantic_frames(self) -> int:
        """Semantic tokens T_v."""
        return _frames(self.duration, self.semantic_fps)

    @property
    def sync_frames(self) -> int:
        """Sync feature frames T_s."""
        return _frames(self.duration, self.sync_fps)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the flow-matching transformer (``v2a.model.dit.AudioDiT``).

    Attributes:
        latent_dim: channels C of the codec latent (32: the bundled PCA codec; the trainer takes it from its codec).
        latent_fps: audio latent frames per second (the audio token rate; RoPE positions count these frames).
        semantic_dim: channels of the semantic tokens (384: EfficientNet-Lite0 features projected into the
            text space, which carries semantics from synthetic to real footage; 1280 for the raw features).
        semantic_fps: semantic tokens per second.
        sync_dim: channels of the sync (motion) features.
        sync_fps: sync feature frames per second.
        text_dim: channels of the text tokens and of the pooled text vector (all-MiniLM-L6-v2: 384).
        width: model width D.
        heads: attention heads (``width`` must divide into them; the head size must be even for RoPE).
        joint_depth: blocks of joint attention over audio, visual and text tokens.
        audio_depth: audio-only blocks after the joint ones.
        mlp_ratio: hidden width of each MLP as a multiple of ``width``.
        null_text_tokens: length of the learned null text sequence (used for a missing or dropped prompt).
        rope_base: RoPE frequency base; positions are in audio latent frames.
        input_kernel: temporal kernel of the latent input and sync projections (odd; 1 = per frame).
    """

    latent_dim: int = 32
    latent_fps: float = DEFAULT_LATENT_FPS
    semantic_dim: int = 384
    semantic_fps: float = 8.0
    sync_dim: int = 128
    sync_fps: float = 25.0
    text_dim: int = 384
    width: int = 256
    heads: int = 4
    joint_depth: int = 2
    audio_depth: int = 3
    mlp_ratio: float = 4.0
    null_text_tokens: int = 4
    rope_base: float = 10_000.0
    input_kernel: int = 3

    def __post_init__(self) -> None:
        positive = (
            "latent_dim",
            "semantic_dim",
            "sync_dim",
            "text_dim",
            "width",
            "heads",
            "null_text_tokens",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise InputError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if self.joint_depth < 1 or self.audio_depth < 0:
            raise InputError(
                f"model config: need joint_depth >= 1 and audio_depth >= 0, "
                f"got {self.joint_depth} and {self.audio_depth}"
            )
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise InputError(
                f"model config: width {self.width} must split into {self.heads} heads of even size"
            )
        if self.input_kernel < 1 or self.input_kernel % 2 == 0:
            raise InputError(f"model config: input_kernel must be odd and >= 1, got {self.input_kernel}")
        for name in ("latent_fps", "semantic_fps", "sync_fps", "mlp_ratio", "rope_base"):
            if not getattr(self, name) > 0:
                raise InputError(f"model config: {name} must be > 0, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.width // self.heads

    def sequence(self, duration: float) -> SequenceConfig:
        """Token counts of a clip of ``duration`` seconds at this model's rates."""
        return SequenceConfig(
            duration=duration,
            latent_fps=self.latent_fps,
            semantic_fps=self.semantic_fps,
            sync_fps=self.sync_fps,
        )

    def replace(self, **changes: object) -> ModelConfig:
        """A copy with some fields changed (configs are never mutated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able fields (what a checkpoint's ``config.json`` stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, object]) -> ModelConfig:
        """Rebuild from :meth:`to_dict`; unknown fields raise InputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InputError(f"generator config has unknown fields {unknown}")
        return cls(**fields)  # type: ignore[arg-type]


PRESETS: dict[str, ModelConfig] = {
    # CPU default: ~3 M parameters (6 MB in fp16), trainable on a 2-core CPU in an hour
    "tiny": ModelConfig(width=160, heads=4, audio_depth=2),
    # GPU: ~100 M parameters
    "small": ModelConfig(width=640, heads=10, joint_depth=4, audio_depth=6),
    # GPU: ~450 M parameters
    "medium": ModelConfig(width=1024, heads=16, joint_depth=8, audio_depth=8),
}


def model_config(preset: str = "tiny", **changes: object) -> ModelConfig:
    """A named size preset, optionally with some fields changed.

    Args:
        preset: ``tiny`` (CPU default), ``small`` or ``medium``.
        **changes: fields to override (e.g. ``latent_dim=32``).

    Raises:
        InputError: unknown preset or field.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown generator size {preset!r}; known: {', '.join(PRESETS)}")
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise InputError(f"generator config has unknown fields {unknown}")
    return PRESETS[preset].replace(**changes)
