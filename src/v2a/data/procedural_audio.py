"""Physically based procedural sounds: modal impacts, noise textures, engines, footsteps, doors, glass.

An impact excites an object's vibration modes; each mode is a damped sinusoid whose frequency depends on the
object's size and material and whose decay depends on the material's internal damping (van den Doel & Pai,
"The sounds of physical shapes", 1998). A short filtered noise burst adds the contact transient.
Textures (rain, wind, fire, water) are shaped noise plus random grains (drops, crackles, bubbles); an engine
is a firing pulse train through exhaust resonances; footsteps, doors and breaking glass combine these pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt


@dataclass(frozen=True)
class Material:
    """Modal parameters of a material.

    Attributes:
        name: label suffix, e.g. ``impact/wood``.
        mode_ratios: mode frequencies relative to the fundamental.
        base_hz: fundamental of a 10 cm object; scales inversely with size.
        decay_s: 60 dB decay time of the fundamental; higher modes decay faster.
        noise: relative level of the contact noise burst.
    """

    name: str
    mode_ratios: tuple[float, ...]
    base_hz: float
    decay_s: float
    noise: float


MATERIALS: dict[str, Material] = {
    "wood": Material("wood", (1.0, 2.76, 5.40, 8.93), 420.0, 0.09, 0.5),
    "metal": Material("metal", (1.0, 2.32, 4.25, 6.63, 9.38), 900.0, 0.9, 0.15),
    "glass": Material("glass", (1.0, 2.61, 4.86, 7.72), 1800.0, 0.5, 0.2),
    "plastic": Material("plastic", (1.0, 2.2, 3.9, 6.1), 520.0, 0.05, 0.6),
    "stone": Material("stone", (1.0, 1.9, 3.1, 4.6), 300.0, 0.04, 0.9),
}


def impact(
    material: str,
    *,
    size_m: float = 0.1,
    velocity: float = 1.0,
    sample_rate: int = 24_000,
    duration_s: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Synthesise one impact.

    Args:
        material: a key of ``MATERIALS``.
        size_m: object size in metres (bigger objects ring lower).
        velocity: impact speed in m/s; sets loudness (amplitude ~ velocity) and brightness.
        sample_rate: output rate in Hz.
        duration_s: output length; default long enough for the slowest mode to decay 60 dB.
        rng: randomness for mode amplitudes and the noise burst (seeded by the caller for determinism).

    Returns:
        (S,) float32 waveform, peak at most ``min(1, 0.25 * velocity)``.
    """
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; known: {sorted(MATERIALS)}")
    mat = MATERIALS[material]
    rng = rng or np.random.default_rng(0)
    length = duration_s if duration_s is not None else min(2.0, mat.decay_s * 1.2 + 0.03)
    t = np.arange(int(length * sample_rate)) / sample_rate
    f0 = mat.base_hz * (0.1 / max(size_m, 1e-3))
    wave = np.zeros_like(t)
    brightness = np.clip(velocity / 3.0, 0.2, 1.0)
    nyquist = sample_rate / 2
    for k, ratio in enumerate(mat.mode_ratios):
        freq = f0 * ratio * rng.uniform(0.97, 1.03)
        if freq >= nyquist * 0.95:
            break
        tau = mat.decay_s / 6.91 / (1 + 0.6 * k)  # 60 dB = e^-6.91
        amp = rng.uniform(0.4, 1.0) * brightness**k
        wave += amp * np.exp(-t / tau) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    burst_len = int(0.004 * sample_rate)
    burst = rng.standard_normal(burst_len) * np.hanning(burst_len * 2)[burst_len:] * mat.noise
    wave[:burst_len] += burst
    wave[: int(0.001 * sample_rate)] *= np.linspace(0, 1, int(0.001 * sample_rate))  # click-free attack
    peak = np.max(np.abs(wave)) or 1.0
    return (wave / peak * min(1.0, 0.25 * velocity)).astype(np.float32)


# --------------------------------------------------------------------------------------------------------
# Noise textures, engines and compound events. Each generator takes an explicit rng, so a caller's seed fixes
# the sound, and returns float32 with peak <= 1. The onset of every event-like sound is at sample 0.
# --------------------------------------------------------------------------------------------------------

TEXTURES = ("rain", "wind", "fire", "water")
SURFACES = ("wood", "stone", "metal", "gravel", "grass", "dirt", "sand", "snow", "water", "generic")


def _sos(kind: str, freq: float | tuple[float, float], sample_rate: int, order: int = 2) -> np.ndarray:
    """Butterworth second-order sections; frequencies are clipped into (10 Hz, 0.45 * rate)."""
    nyq = sample_rate / 2
    if isinstance(freq, tuple):
        lo, hi = (min(max(f, 10.0), 0.9 * nyq) for f in freq)
        return butter(order, (lo, max(hi, lo * 1.05)), btype=kind, fs=sample_rate, output="sos")
    return butter(order, min(max(freq, 10.0), 0.9 * nyq), btype=kind, fs=sample_rate, output="sos")


def _filtered(noise: np.ndarray, kind: str, freq, sample_rate: int, order: int = 2) -> np.ndarray:
    return sosfilt(_sos(kind, freq, sample_rate, order), noise)


def _smooth_random(n: int, rate_hz: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A slowly varying random curve in [0, 1] (control points every 1/rate_hz s, cosine-interpolated)."""
    points = max(2, int(n / sample_rate * rate_hz) + 2)
    knots = rng.uniform(0.0, 1.0, points)
    pos = np.linspace(0, points - 1, n)
    i = np.minimum(pos.astype(int), points - 2)
    w = (1 - np.cos(np.pi * (pos - i))) / 2
    return knots[i] * (1 - w) + knots[i + 1] * w


def _normalise(wave: np.ndarray, peak: float = 0.9) -> np.ndarray:
    top = float(np.max(np.abs(wave))) if wave.size else 0.0
    return (wave * (peak / top) if top > 0 else wave).astype(np.float32)


def _bubble(freq: float, duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A resonating air bubble: a decaying sine whose pitch rises near the surface (van den Doel 2005)."""
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    decay = 0.13 + 0.0072 * freq**1.5 / 100  # damping grows with frequency
    rise = rng.uniform(0.5, 2.5)
    phase = 2 * np.pi * freq * (t + rise * decay * t**2 / 2)
    return np.exp(-decay * t * 40) * np.sin(phase)


def _scatter(out: np.ndarray, grains: list[np.ndarray], starts: np.ndarray, gains: np.ndarray) -> None:
    for grain, start, gain in zip(grains, starts, gains, strict=True):
        end = min(out.size, start + grain.size)
        if end > start:
            out[start:end] += gain * grain[: end - start]


def noise_texture(
    kind: str,
    duration_s: float,
    *,
    intensity: float = 0.5,
    sample_rate: int = 24_000,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A stationary ambience texture built from shaped noise and random grains.

    rain: broadband hiss plus drop impacts; wind: low band-passed noise whose centre and level drift in gusts;
    fire: low roar, hiss and random crackles; water: a stream of small bubbles over filtered noise.

    Args:
        kind: one of ``TEXTURES``.
        duration_s: length in seconds.
        intensity: 0..1, density and brightness (light drizzle .. downpour, breeze .. storm).
        sample_rate: output rate in Hz.
        rng: randomness (seeded by the caller).

    Returns:
        (S,) float32 waveform, peak 0.9.
    """
    if kind not in TEXTURES:
        raise ValueError(f"unknown texture {kind!r}; known: {list(TEXTURES)}")
    rng = rng or np.random.default_rng(0)
    n = max(1, int(duration_s * sample_rate))
    intensity = float(np.clip(intensity, 0.0, 1.0))
    white = rng.standard_normal(n)
    if kind == "rain":
        wave = _filtered(white, "bandpass", (400.0, 3000.0 + 6000.0 * intensity), sample_rate) * 0.3
        count = int(duration_s * (80 + 900 * intensity))
        grains = [
            impact(
                "glass",
                size_m=rng.uniform(0.02, 0.08),
                velocity=rng.uniform(0.3, 1.5),
                sample_rate=sample_rate,
                duration_s=0.02,
                rng=rng,
            )
            for _ in range(min(count, 64))
        ]
        picks = rng.integers(0, len(grains), count)
        _scatter(wave, [grains[i] for i in picks], rng.integers(0, n, count), rng.uniform(0.05, 0.5, count))
    elif kind == "wind":
        brown = np.cumsum(white)
        brown = _filtered(
            brown - np.convolve(brown, np.ones(2048) / 2048, mode="same"), "highpass", 30.0, sample_rate
        )
        gust = _smooth_random(n, 0.6 + intensity, sample_rate, rng)
        centre = 200.0 + 900.0 * intensity * _smooth_random(n, 0.3, sample_rate, rng)
        bands = [
            _filtered(white, "bandpass", (f * 0.7, f * 1.4), sample_rate) for f in (250.0, 500.0, 1000.0)
        ]
        weights = [np.clip(1 - np.abs(np.log2(centre / f)), 0, 1) for f in (250.0, 500.0, 1000.0)]
        wave = 0.4 * brown / (np.abs(brown).max() + 1e-9) + sum(
            b * w for b, w in zip(bands, weights, strict=True)
        )
        wave = wave * (0.25 + 0.75 * gust)
    elif kind == "fire":
        roar = _filtered(white, "lowpass", 250.0, sample_rate) * (
            0.6 + 0.4 * _smooth_random(n, 3.0, sample_rate, rng)
        )
        hiss = _filtered(white, "highpass", 3000.0, sample_rate) * 0.05
        wave = roar * 0.8 + hiss
        count = int(duration_s * (8 + 60 * intensity))
        grains = []
        for _ in range(count):
            length = int(rng.uniform(0.002, 0.012) * sample_rate)
            burst = rng.standard_normal(length) * np.exp(-np.linspace(0, 6, length))
            grains.append(_filtered(burst, "highpass", rng.uniform(800.0, 4000.0), sample_rate))
        _scatter(wave, grains, rng.integers(0, n, count), rng.uniform(0.3, 2.0, count) * np.abs(roar).max())
    else:  # water
        wave = _filtered(white, "bandpass", (300.0, 2500.0), sample_rate) * 0.15
        count = int(duration_s * (60 + 500 * intensity))
        grains = [
            _bubble(rng.uniform(400.0, 2200.0), rng.uniform(0.02, 0.06), sample_rate, rng) for _ in range(48)
        ]
        picks = rng.integers(0, len(grains), count)
        _scatter(wave, [grains[i] for i in picks], rng.integers(0, n, count), rng.uniform(0.05, 0.4, count))
    return _normalise(wave)


def engine(
    duration_s: float,
    *,
    rpm: float | np.ndarray = 1500.0,
    cylinders: int = 4,
    load: float = 0.5,
    sample_rate: int = 24_000,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A combustion engine: a firing pulse train at rpm/60 * cylinders/2 Hz through an exhaust resonance.

    Args:
        duration_s: length in seconds.
        rpm: crankshaft speed; a float, or an (S,) array for a speed that changes over time.
        cylinders: firing events per two revolutions (4-stroke).
        load: 0..1, how hard the engine works (more noise and brighter pulses).
        sample_rate: output rate in Hz.
        rng: randomness (seeded by the caller).

    Returns:
        (S,) float32 waveform, peak 0.9.
    """
    rng = rng or np.random.default_rng(0)
    n = max(1, int(duration_s * sample_rate))
    rpm_curve = np.broadcast_to(np.asarray(rpm, dtype=np.float64), (n,))
    firing_hz = rpm_curve / 60.0 * cylinders / 2.0
    jitter = 1.0 + 0.02 * (_smooth_random(n, 20.0, sample_rate, rng) - 0.5)
    phase = np.cumsum(firing_hz * jitter) / sample_rate  # cycles
    frac = phase % 1.0
    # each firing: a fast attack, exponential decay within the cycle; sharper with load
    pulse = np.exp(-frac * (6.0 + 10.0 * load)) * (1 + 0.3 * np.sin(2 * np.pi * phase / cylinders))
    pulse += 0.4 * load * rng.standard_normal(n) * pulse
    body = _filtered(pulse - pulse.mean(), "lowpass", 900.0 + 1500.0 * load, sample_rate)
    exhaust = _filtered(pulse, "bandpass", (60.0, 250.0), sample_rate, order=1)
    hiss = _filtered(rng.standard_normal(n), "bandpass", (1500.0, 5000.0), sample_rate) * 0.02 * (1 + load)
    return _normalise(body + 0.8 * exhaust + hiss)


def footstep(
    surface: str,
    *,
    weight: float = 1.0,
    sample_rate: int = 24_000,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One footstep: heel strike then toe roll ~40-90 ms later, coloured by the surface.

    Args:
        surface: one of ``SURFACES``.
        weight: 0.3..2, heavier steps are louder and lower.
        sample_rate: output rate in Hz.
        rng: randomness (seeded by the caller).

    Returns:
        (S,) float32 waveform starting with the heel at sample 0, peak <= 0.9.
    """
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; known: {list(SURFACES)}")
    rng = rng or np.random.default_rng(0)
    n = int(0.35 * sample_rate)
    out = np.zeros(n)
    toe = int(rng.uniform(0.04, 0.09) * sample_rate)
    for start, gain in ((0, 1.0), (toe, rng.uniform(0.3, 0.6))):
        if surface in ("wood", "metal", "stone"):
            hit = impact(
                surface,
                size_m=rng.uniform(0.25, 0.6),
                velocity=1.2 * weight * gain,
                sample_rate=sample_rate,
                rng=rng,
            )
            thud = _filtered(rng.standard_normal(hit.size), "lowpass", 300.0, sample_rate)
            hit = hit + 0.15 * thud * np.exp(-np.arange(hit.size) / (0.02 * sample_rate))
        else:
            grains = {"gravel": 0.06, "snow": 0.12, "sand": 0.08, "grass": 0.1, "dirt": 0.05, "water": 0.15}
            length = int(grains.get(surface, 0.05) * sample_rate)
            env = np.exp(-np.linspace(0, 5, length))
            noise = rng.standard_normal(length)
            if surface == "gravel":
                noise = noise * (rng.random(length) < 0.08) * 4  # sparse stone clicks
            band = {
                "gravel": (1500.0, 7000.0),
                "snow": (800.0, 5000.0),
                "sand": (1000.0, 6000.0),
                "grass": (2000.0, 9000.0),
                "dirt": (100.0, 1500.0),
                "water": (300.0, 3000.0),
            }
            hit = _filtered(noise, "bandpass", band.get(surface, (80.0, 1200.0)), sample_rate) * env
            if surface == "water":
                hit = hit + 0.5 * _bubble(rng.uniform(500, 1200), length / sample_rate, sample_rate, rng)
            thump = _filtered(rng.standard_normal(length), "lowpass", 180.0, sample_rate) * env**3
            hit = hit + 0.6 * thump
            hit = hit * gain * weight
        end = min(n, start + hit.size)
        out[start:end] += hit[: end - start]
    ramp = int(0.001 * sample_rate)
    out[:ramp] *= np.linspace(0, 1, ramp)
    return _normalise(out, peak=min(0.9, 0.45 * weight))


def door(
    action: str, *, size: float = 1.0, sample_rate: int = 24_000, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A door opening (latch click, then a hinge creak) or closing (a heavy thud and the latch).

    The creak is stick-slip friction: a pulse train whose rate glides, through the door panel's resonances.

    Args:
        action: "open" or "close".
        size: door size factor (bigger doors thud lower).
        sample_rate: output rate in Hz.
        rng: randomness (seeded by the caller).

    Returns:
        (S,) float32 waveform whose first transient is at sample 0, peak 0.9.
    """
    if action not in ("open", "close"):
        raise ValueError(f"unknown door action {action!r}; use 'open' or 'close'")
    rng = rng or np.random.default_rng(0)
    latch = impact("metal", size_m=0.03, velocity=1.5, sample_rate=sample_rate, duration_s=0.15, rng=rng)
    if action == "close":
        thud = impact(
            "wood", size_m=0.8 * size, velocity=3.0, sample_rate=sample_rate, duration_s=0.5, rng=rng
        )
        rumble = _filtered(rng.standard_normal(thud.size), "lowpass", 150.0, sample_rate)
        thud = thud + 0.3 * rumble * np.exp(-np.arange(thud.size) / (0.05 * sample_rate)) / (
            np.abs(rumble).max() + 1e-9
        )
        out = np.zeros(int(0.6 * sample_rate))
        out[: thud.size] += thud
        delay = int(0.02 * sample_rate)
        out[delay : delay + latch.size] += 0.5 * latch[: out.size - delay]
        return _normalise(out)
    creak_s = rng.uniform(0.5, 1.2)
    n = int((creak_s + 0.2) * sample_rate)
    out = np.zeros(n)
    out[: latch.size] += 0.7 * latch
    start = int(0.12 * sample_rate)
    m = int(creak_s * sample_rate)
    rate = np.linspace(rng.uniform(25, 60), rng.uniform(60, 140), m) * (
        1 + 0.2 * _smooth_random(m, 6, sample_rate, rng)
    )
    phase = np.cumsum(rate) / sample_rate
    pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)
    res = sum(
        _filtered(pulses, "bandpass", (f * 0.92, f * 1.08), sample_rate) for f in rng.uniform(500, 2500, 3)
    )
    env = np.sin(np.linspace(0, np.pi, m)) ** 0.5
    out[start : start + m] += 2.0 * res * env / (np.abs(res).max() + 1e-9) * 0.5
    return _normalise(out)


def glass_break(
    *, size: float = 1.0, sample_rate: int = 24_000, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Glass shattering: a bright crack, then a shower of small glass fragments landing over ~0.5 s.

    Args:
        size: amount of glass (more and longer shards).
        sample_rate: output rate in Hz.
        rng: randomness (seeded by the caller).

    Returns:
        (S,) float32 waveform whose crack is at sample 0, peak 0.9.
    """
    rng = rng or np.random.default_rng(0)
    n = int((0.7 + 0.3 * size) * sample_rate)
    out = np.zeros(n)
    crack_len = int(0.03 * sample_rate)
    crack = _filtered(rng.standard_normal(crack_len), "highpass", 2000.0, sample_rate) * np.exp(
        -np.linspace(0, 5, crack_len)
    )
    out[:crack_len] += 1.5 * crack
    main = impact("glass", size_m=0.15 * size, velocity=3.0, sample_rate=sample_rate, rng=rng)
    out[: min(n, main.size)] += main[:n]
    count = int(25 * size)
    starts = (rng.exponential(0.12, count) * sample_rate).astype(int) + int(0.02 * sample_rate)
    grains = [
        impact(
            "glass",
            size_m=rng.uniform(0.01, 0.05),
            velocity=rng.uniform(0.3, 1.5),
            sample_rate=sample_rate,
            duration_s=0.15,
            rng=rng,
        )
        for _ in range(count)
    ]
    _scatter(out, grains, starts, rng.uniform(0.1, 0.5, count))
    return _normalise(out)
