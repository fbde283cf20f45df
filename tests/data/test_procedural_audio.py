from __future__ import annotations

import numpy as np
import pytest

from v2a.data.procedural_audio import MATERIALS, impact


def _dominant_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / sr)[spectrum.argmax()])


def test_impact_pitch_follows_size_and_loudness_follows_speed():
    sr = 24_000
    small = impact("wood", size_m=0.05, velocity=2.0, sample_rate=sr, rng=np.random.default_rng(0))
    large = impact("wood", size_m=0.2, velocity=2.0, sample_rate=sr, rng=np.random.default_rng(0))
    assert _dominant_hz(small, sr) > 2 * _dominant_hz(large, sr)
    soft = impact("metal", velocity=0.5, sample_rate=sr, rng=np.random.default_rng(1))
    hard = impact("metal", velocity=3.0, sample_rate=sr, rng=np.random.default_rng(1))
    assert np.abs(hard).max() > 4 * np.abs(soft).max()


def test_metal_rings_longer_than_wood_and_attack_is_at_zero():
    sr = 24_000
    for name in MATERIALS:
        wave = impact(name, sample_rate=sr, rng=np.random.default_rng(2))
        assert wave.dtype == np.float32 and np.isfinite(wave).all()
        onset = np.argmax(np.abs(wave) > 0.3 * np.abs(wave).max())
        assert onset < 0.01 * sr, f"{name}: impact must start at t=0, onset at {onset / sr:.3f}s"

    def ring_s(wave):  # time until the envelope falls 40 dB below its peak
        env = np.abs(wave)
        return np.nonzero(env > env.max() * 0.01)[0][-1] / sr

    metal = impact("metal", sample_rate=sr, rng=np.random.default_rng(3))
    wood = impact("wood", sample_rate=sr, rng=np.random.default_rng(3))
    assert ring_s(metal) > 3 * ring_s(wood)
    with pytest.raises(ValueError, match="unknown material"):
        impact("cheese")
