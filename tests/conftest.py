"""Test-wide settings: never reach a model hub; the repo root for bundled files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The bundled sample video that `make demo` uses."""
    return REPO_ROOT / "examples" / "bounce.mp4"


@pytest.fixture(scope="session")
def random_generator_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generator checkpoint with random, UNTRAINED weights (the zero-initialised adaLN-Zero layers get
    random values so conditions reach the output): for plumbing tests, never for sound quality."""
    import torch

    from v2a.model.config import model_config
    from v2a.model.dit import AudioDiT, save_generator

    torch.manual_seed(0)
    net = AudioDiT(model_config("tiny"))
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("ckpt") / "random-tiny"
    save_generator(net, path)
    return path
