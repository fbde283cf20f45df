"""Shared builders of the generator tests: a micro config, random conditions, non-zero weights."""

from __future__ import annotations

import torch
from torch import nn

from v2a.model.conditions import Conditions, TextFeatures
from v2a.model.config import ModelConfig, model_config


def micro_config(**changes: object) -> ModelConfig:
    """A very small generator (fast on CPU) with small input dims."""
    fields: dict[str, object] = dict(
        width=64,
        heads=2,
        joint_depth=2,
        audio_depth=1,
        latent_dim=8,
        semantic_dim=16,
        sync_dim=8,
        text_dim=12,
        null_text_tokens=2,
    )
    fields.update(changes)
    return model_config("tiny", **fields)


def text_features(cfg: ModelConfig, batch: int, length: int, g: torch.Generator) -> TextFeatures:
    """A random prompt of ``length`` tokens for each sample."""
    return TextFeatures(
        tokens=torch.randn(batch, length, cfg.text_dim, generator=g),
        mask=torch.ones(batch, length, dtype=torch.bool),
        pooled=torch.randn(batch, cfg.text_dim, generator=g),
    )


def random_conditions(
    cfg: ModelConfig,
    *,
    batch: int,
    duration: float,
    seed: int = 0,
    semantic: bool = True,
    sync: bool = True,
    text_len: int | None = 5,
) -> Conditions:
    """Random encoder features of ``batch`` clips of ``duration`` seconds at the config's rates."""
    g = torch.Generator().manual_seed(seed)
    seq = cfg.sequence(duration)
    return Conditions(
        semantic=torch.randn(batch, seq.semantic_frames, cfg.semantic_dim, generator=g) if semantic else None,
        sync=torch.randn(batch, seq.sync_frames, cfg.sync_dim, generator=g) if sync else None,
        text=text_features(cfg, batch, text_len, g) if text_len else None,
    )


def randomize(net: nn.Module, seed: int = 0, std: float = 0.1) -> nn.Module:
    """Give the zero-initialised (adaLN-Zero) weights random values, so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(std * torch.randn(p.shape, generator=g))
    return net
