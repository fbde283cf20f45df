"""Mix a scene's cues into the clip's audio: exact placement, panning, Doppler, room reverb, cuts, noise.

Each cue's sound is peak-normalised and scaled by its gain (set by the scene from impact speed, distance,
visibility), so loudness follows the picture whatever the recording's own level. Event sounds start at the
sample nearest their event time. Sounds of a shot stop at its cut with a 10 ms fade. The stereo mix is for
viewing; the mono mix (mean of the channels) is the training target.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from v2a.data.foley_world.physics import doppler_times
from v2a.data.foley_world.scene import Cue, Scene, Shot

CUT_FADE_S = 0.01
BED_FADE_S = 0.25


def mix_scene(scene: Scene, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render the audio of ``scene``.

    Args:
        scene: the clip's scene graph.
        sample_rate: output rate in Hz.
        rng: randomness for reverb responses, noise and the final level.

    Returns:
        ``(mono, stereo)``: (S,) and (2, S) float32, S = duration * rate, peak below 1.
    """
    n = round(scene.duration_s * sample_rate)
    out = np.zeros((2, n), np.float64)
    for shot in scene.shots:
        dry = np.zeros((2, n), np.float64)
        for entity in shot.entities:
            for cue in entity.cues:
                _place(dry, cue, shot, scene, sample_rate)
        if shot.room is not None:
            dry += room_reverb(dry, sample_rate, rt60=shot.room["rt60"], wet=shot.room["wet"], rng=rng)
        _cut(dry, shot, sample_rate)
        out += dry
    noise_db = scene.artefacts.get("audio_noise_db")
    peak = float(np.abs(out).max())
    if peak > 0:
        out *= rng.uniform(0.5, 0.9) / peak
    if noise_db is not None:
        hiss = sosfilt(
            butter(1, 200.0, btype="highpass", fs=sample_rate, output="sos"), rng.standard_normal((2, n))
        )
        out += hiss * 10 ** (noise_db / 20)
    out = np.clip(out, -0.999, 0.999)
    return out.mean(axis=0).astype(np.float32), out.astype(np.float32)


def _pan_gains(pan: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Constant-power left/right gains for pan in -1 (left) .. 1 (right)."""
    angle = (np.clip(pan, -1, 1) + 1) * np.pi / 4
    return np.cos(angle) * np.sqrt(2), np.sin(angle) * np.sqrt(2)


def _place(dry: np.ndarray, cue: Cue, shot: Shot, scene: Scene, sample_rate: int) -> None:
    wave = np.asarray(cue.sound.wave, np.float64)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak == 0:
        return
    wave = wave / peak * cue.gain
    start = round(cue.t * sample_rate)
    total = dry.shape[1]
    if cue.end is not None:
        wave = wave[: max(0, round(cue.end * sample_rate) - start)]
    if not cue.onset and wave.size:
        fade = min(wave.size // 2, int(BED_FADE_S * sample_rate))
        if fade:
            wave = wave.copy()
            wave[:fade] *= np.linspace(0, 1, fade)
            wave[-fade:] *= np.linspace(1, 0, fade)
    if cue.doppler is not None:
        left, right = _doppler(wave, cue, start, sample_rate)
    else:
        pan = 0.0
        if cue.x is not None:
            i = int(np.clip(np.searchsorted(scene.times, cue.t) - 1, 0, scene.times.size - 1))
            x0, _, zoom = shot.camera[i]
            half = scene.width / zoom / 2
            pan = float(np.clip((cue.x - (x0 + half)) / half, -1.2, 1.2)) * 0.8
        gl, gr = _pan_gains(pan)
        left, right = wave * gl, wave * gr
    lo, hi = max(0, start), min(total, start + left.size)
    if hi > lo:
        dry[0, lo:hi] += left[lo - start : hi - start]
        dry[1, lo:hi] += right[lo - start : hi - start]


def _doppler(wave: np.ndarray, cue: Cue, start: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a moving source's signal at its emission times; 1/distance gain; pan from its direction."""
    d = cue.doppler
    t_recv = (start + np.arange(wave.size)) / sample_rate
    t_emit, dist = doppler_times(
        t_recv, t0=d["t0"], x0_m=d["x0_m"], speed_m=d["speed_m"], depth_m=d["depth_m"]
    )
    pos = (t_emit - cue.t) * sample_rate  # the sound's own sample 0 was emitted at cue.t
    signal = np.interp(pos, np.arange(wave.size), wave, left=0.0, right=0.0)
    gain = np.clip(d["depth_m"] / dist, 0.0, 1.0)
    x_m = d["x0_m"] + d["speed_m"] * (t_emit - d["t0"])
    gl, gr = _pan_gains(x_m / np.hypot(x_m, d["depth_m"]))
    return signal * gain * gl, signal * gain * gr


def room_reverb(
    dry: np.ndarray, sample_rate: int, *, rt60: float, wet: float, rng: np.random.Generator
) -> np.ndarray:
    """The reverberant part of a room's response to ``dry`` (2, S): decorrelated exponentially decaying noise
    (RT60 ``rt60``) after a few early reflections, darker as it decays, at ``wet`` of the dry energy."""
    n = max(16, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    out = np.zeros_like(dry)
    for ch in range(dry.shape[0]):
        ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
        ir = sosfilt(butter(1, 4000.0, btype="lowpass", fs=sample_rate, output="sos"), ir)
        for _ in range(4):
            ir[int(rng.uniform(0.003, 0.03) * sample_rate)] += rng.uniform(0.3, 0.8) * rng.choice([-1, 1])
        ir[: int(0.002 * sample_rate)] = 0.0  # the direct sound stays in the dry path
        ir *= wet / np.sqrt(np.sum(ir**2))
        out[ch] = fftconvolve(dry[ch], ir)[: dry.shape[1]]
    return out


def _cut(dry: np.ndarray, shot: Shot, sample_rate: int) -> None:
    """Silence the shot's buffer outside [t0, t1), with a short fade at the cut (sounds stop with the picture)."""
    lo, hi = round(shot.t0 * sample_rate), round(shot.t1 * sample_rate)
    dry[:, :lo] = 0.0
    if hi < dry.shape[1]:
        fade = int(CUT_FADE_S * sample_rate)
        a = max(lo, hi - fade)
        dry[:, a:hi] *= np.linspace(1, 0, hi - a)
        dry[:, hi:] = 0.0
