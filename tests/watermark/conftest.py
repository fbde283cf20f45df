"""Test audio for the watermark: real speech (espeak-ng), ambience textures, impacts and a tune, made here."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from v2a.data.procedural_audio import impact, noise_texture

SR = 24_000


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 8 s of espeak-ng speech with short pauses, peak 0.7."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (APT package, installed by `make install`) is missing")
    from v2a.data.foley_world.speech import speak

    lines = [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please open the door slowly, and turn on the lights in the hall.",
        "Seven small boats sailed across the bay before the storm arrived.",
    ]
    pause = np.zeros(SR // 4, dtype=np.float32)
    wav = np.concatenate([part for line in lines for part in (speak(line, sample_rate=SR), pause)])
    return (0.7 * wav / np.max(np.abs(wav))).astype(np.float32)


@pytest.fixture(scope="session")
def rain() -> np.ndarray:
    """8 s of rain texture (broadband hiss and drops), peak 0.5."""
    return 0.5 / 0.9 * noise_texture("rain", 8.0, sample_rate=SR, rng=np.random.default_rng(1))


@pytest.fixture(scope="session")
def foley() -> np.ndarray:
    """8 s of impacts of several materials on a quiet wind bed: a typical sparse effects track."""
    rng = np.random.default_rng(2)
    out = 0.05 / 0.9 * noise_texture("wind", 8.0, sample_rate=SR, rng=rng)
    for start in np.arange(0.1, 7.5, 0.45):
        hit = impact(
            str(rng.choice(["wood", "metal", "glass", "stone"])), velocity=2.0, sample_rate=SR, rng=rng
        )
        begin = int(start * SR)
        out[begin : begin + hit.size] += hit[: out.size - begin]
    return (0.8 * out / np.max(np.abs(out))).astype(np.float32)


@pytest.fixture(scope="session")
def tune() -> np.ndarray:
    """8 s of a plucked harmonic melody (quarter notes at 120 bpm), peak 0.6."""
    t = np.arange(int(0.5 * SR)) / SR
    notes = [220.0 * 2 ** (k / 12) for k in (0, 4, 7, 12, 7, 4, 2, 5, 9, 12, 9, 5, 0, 7, 4, 0)]
    pluck = [sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 8)) * np.exp(-4 * t) for f in notes]
    wav = np.concatenate(pluck)
    return (0.6 * wav / np.max(np.abs(wav))).astype(np.float32)
