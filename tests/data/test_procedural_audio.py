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


def _band_energy(wave: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / sr)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum() / spec.sum())


def test_noise_textures_are_stationary_and_shaped_by_kind():
    from v2a.data.procedural_audio import TEXTURES, noise_texture

    sr = 24_000
    waves = {
        k: noise_texture(k, 2.0, intensity=0.6, sample_rate=sr, rng=np.random.default_rng(4))
        for k in TEXTURES
    }
    for kind, wave in waves.items():
        assert wave.shape == (2 * sr,) and wave.dtype == np.float32 and np.isfinite(wave).all()
        halves = [np.sqrt(np.mean(h**2)) for h in np.split(wave, 2)]
        assert 0.3 < halves[0] / halves[1] < 3.0, f"{kind} should sound the same all through"
    assert _band_energy(waves["rain"], sr, 2000, 12000) > 3 * _band_energy(waves["wind"], sr, 2000, 12000)
    assert _band_energy(waves["fire"], sr, 0, 300) > _band_energy(waves["rain"], sr, 0, 300)
    with pytest.raises(ValueError, match="unknown texture"):
        noise_texture("lava", 1.0)


def test_engine_firing_rate_follows_rpm():
    from v2a.data.procedural_audio import engine

    sr = 24_000

    def firing_hz(wave):  # strongest periodicity between 20 and 200 Hz from the autocorrelation
        env = np.abs(wave) - np.abs(wave).mean()
        ac = np.correlate(env[:12000], env[:12000], mode="full")[11999:]
        lags = np.arange(sr // 200, sr // 20)
        return sr / lags[np.argmax(ac[lags])]

    slow = engine(1.0, rpm=1200.0, cylinders=4, sample_rate=sr, rng=np.random.default_rng(0))
    fast = engine(1.0, rpm=2400.0, cylinders=4, sample_rate=sr, rng=np.random.default_rng(0))
    assert firing_hz(slow) == pytest.approx(40.0, rel=0.1)
    assert firing_hz(fast) == pytest.approx(80.0, rel=0.1)


def test_event_sounds_start_at_sample_zero():
    from v2a.data.procedural_audio import SURFACES, door, footstep, glass_break

    sr = 24_000
    rng = np.random.default_rng(5)
    waves = [footstep(s, sample_rate=sr, rng=rng) for s in SURFACES]
    waves += [door("open", rng=rng), door("close", rng=rng), glass_break(rng=rng)]
    for wave in waves:
        assert np.isfinite(wave).all() and 0 < np.abs(wave).max() <= 0.9 + 1e-6
        onset = np.argmax(np.abs(wave) > 0.2 * np.abs(wave).max())
        assert onset < 0.012 * sr
    heavy = footstep("wood", weight=1.8, rng=np.random.default_rng(1))
    light = footstep("wood", weight=0.4, rng=np.random.default_rng(1))
    assert np.abs(heavy).max() > 2 * np.abs(light).max()
    with pytest.raises(ValueError, match="unknown surface"):
        footstep("lava")
    with pytest.raises(ValueError, match="door action"):
        door("slam")
