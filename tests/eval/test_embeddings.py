"""aisfx embeddings: the packaged weights load without running pickle code, features have the paper's
shape, and similar sounds embed closer than different ones."""

from __future__ import annotations

import numpy as np
import pytest
from eval_clips import SR, impacts_at

from v2a.eval.embeddings import (
    BLOCK_FRAMES,
    EMBED_DIM,
    N_MELS,
    SfxEmbedder,
    default_embedder,
    sfx_spectrogram,
    spectrogram_blocks,
)
from v2a.eval.fad import cosine_similarity


def test_spectrogram_frames_and_blocks():
    spec = sfx_spectrogram(np.zeros(SR, np.float32), SR)  # 1 s -> 44100 samples -> 44 frames (centred)
    assert spec.shape == (44100 // 1024 + 1, N_MELS) and not spec.any()
    assert spectrogram_blocks(spec).shape == (1, BLOCK_FRAMES, N_MELS)
    long = np.ones((260, N_MELS), np.float32)
    blocks = spectrogram_blocks(long)
    assert blocks.shape == (5, BLOCK_FRAMES, N_MELS)  # starts 0, 50, 100, 150, 200; the last is padded
    assert blocks[-1, 60:].sum() == 0 and blocks[-1, :60].all()


def test_full_scale_tone_stays_within_the_training_range():
    tone = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32)
    spec = sfx_spectrogram(tone, SR)
    assert 0.5 < spec.max() <= 1.05


def test_similar_sounds_embed_closer_than_different_ones():
    embedder = default_embedder()
    wood = embedder.embed(impacts_at(np.array([0.3, 1.1, 1.9]), 2.5, "wood", seed=1), SR)
    wood2 = embedder.embed(impacts_at(np.array([0.5, 1.4]), 2.5, "wood", seed=2), SR)
    noise = embedder.embed(0.2 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32), SR)
    assert wood.blocks.shape == (2, EMBED_DIM) and wood.clip.shape == (EMBED_DIM,)
    assert wood.energy.shape == (2,) and (wood.energy > 0).all()
    assert cosine_similarity(wood.clip, wood2.clip) > cosine_similarity(wood.clip, noise.clip) + 0.1


def test_onnx_and_torch_backends_agree():
    onnx = default_embedder()
    if onnx.backend != "onnx":
        pytest.skip("onnx/onnxruntime not installed")
    torch_emb = SfxEmbedder(backend="torch")
    wav = impacts_at(np.array([0.2, 0.9]), 1.5, "metal")
    a, b = onnx.embed(wav, SR).blocks, torch_emb.embed(wav, SR).blocks
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()


def test_silence_gives_a_finite_embedding_with_zero_energy():
    emb = default_embedder().embed(np.zeros(SR, np.float32), SR)
    assert np.isfinite(emb.blocks).all() and emb.energy.tolist() == [0.0]
