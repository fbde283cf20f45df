"""Clips the eval tests make: a square bouncing on a floor, with a modal impact at every landing.

``bounce_clip`` renders the video (64 x 64, 25 fps) and the matching audio; the landings fall between frames,
as real contacts do. ``write_clip_manifest`` puts clips into a manifest of the shared format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2a.data.procedural_audio import impact
from v2a.io.audio import save_audio
from v2a.io.writer import write_video

SR = 24_000
FPS = 25.0
SIZE = 64


@dataclass(frozen=True)
class Clip:
    """A rendered test clip: files, its audio and the landing times."""

    id: str
    video: Path
    audio: Path
    wav: np.ndarray
    landings: np.ndarray
    duration_s: float
    material: str


def height_at(t: np.ndarray, landings: np.ndarray, top: float) -> np.ndarray:
    """Height above the floor (pixels) of a ball that lands at ``landings``: parabolic arcs between landings,
    a fall from ``top`` before the first."""
    h = np.zeros_like(t)
    starts = np.r_[landings[0] - np.sqrt(top / 120.0), landings[:-1]]
    for i, (a, b) in enumerate(zip(starts, landings, strict=True)):
        sel = (t >= a) & (t < b)
        if i == 0:
            h[sel] = top * (1 - ((t[sel] - a) / (b - a)) ** 2)
        else:
            peak = top * 0.7**i
            h[sel] = 4 * peak * (t[sel] - a) * (b - t[sel]) / (b - a) ** 2
    h[t < starts[0]] = top
    return h


def render_bounce(landings: np.ndarray, duration_s: float, *, x: int = 28) -> np.ndarray:
    """(T, 64, 64, 3) frames of an 8 x 8 white square bouncing on a grey floor at 25 fps."""
    t = np.arange(round(duration_s * FPS)) / FPS
    h = height_at(t, landings, top=40.0)
    frames = np.full((t.size, SIZE, SIZE, 3), 30, np.uint8)
    frames[:, 56:] = 90  # the floor
    for k, hk in enumerate(h):
        y = round(56 - 8 - hk)
        frames[k, y : y + 8, x : x + 8] = 240
    return frames


def impacts_at(times: np.ndarray, duration_s: float, material: str, seed: int = 0) -> np.ndarray:
    """(S,) float32 audio with one modal impact at each time."""
    rng = np.random.default_rng(seed)
    wav = np.zeros(round(duration_s * SR), np.float32)
    for t in times:
        hit = impact(material, velocity=2.0, rng=rng)
        start = round(t * SR)
        wav[start : start + hit.size] += hit[: wav.size - start]
    return np.clip(wav, -1, 1)


def bounce_clip(
    folder: Path, name: str, landings, *, duration_s: float = 4.0, material: str = "wood"
) -> Clip:
    """Render a bouncing-square clip into ``folder``: ``name.mp4`` (with its sound) and ``name.flac``."""
    landings = np.asarray(landings, dtype=np.float64)
    wav = impacts_at(landings, duration_s, material)
    video = write_video(folder / f"{name}.mp4", render_bounce(landings, duration_s), fps=FPS, audio=wav,
                        sample_rate=SR, crf=18)  # fmt: skip
    audio = save_audio(folder / f"{name}.flac", wav, SR)
    return Clip(name, video, audio, wav, landings, duration_s, material)


def write_clip_manifest(path: Path, clips: list[Clip], **extra) -> Path:
    """A manifest with one row per clip; its events are the landings."""
    with path.open("w") as f:
        for c in clips:
            row = {"id": c.id, "video": c.video.name, "audio": c.audio.name, "duration_s": c.duration_s,
                   "fps": FPS, "split": "test", "caption": f"a {c.material} block bounces",
                   "labels": [f"impact/{c.material}"],
                   "events": [{"start_s": float(t), "label": f"impact/{c.material}"} for t in c.landings],
                   **extra.get(c.id, {})}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    return path


def shift(wav: np.ndarray, seconds: float) -> np.ndarray:
    """``wav`` moved later (positive) or earlier (negative), zero-filled, same length."""
    n = round(seconds * SR)
    out = np.zeros_like(wav)
    if n >= 0:
        out[n:] = wav[: wav.size - n]
    else:
        out[:n] = wav[-n:]
    return out
