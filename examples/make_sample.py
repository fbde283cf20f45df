"""Render the bundled sample video `examples/bounce.mp4`: two balls bouncing, impacts heard at each contact.

A wooden ball is dropped at the left and a metal ball at the right; every floor contact plays a modal-synthesis
impact of the ball's material at the exact contact time, loudness from the impact speed. The event list goes to
`bounce.events.json` so evaluation can check sync. Run: `python examples/make_sample.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.procedural_audio import impact
from v2a.io.writer import write_video

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, DURATION_S = 256, 192, 25.0, 8.0
FLOOR_Y = 160.0  # pixels
GRAVITY = 9.81
PIXELS_PER_M = 60.0
RESTITUTION = 0.72


def simulate_drop(
    drop_t: float, height_px: float, radius_px: float, times: np.ndarray
) -> tuple[np.ndarray, list]:
    """Centre y (pixels) of a ball dropped at ``drop_t`` from ``height_px`` above the floor, and its contacts."""
    y = np.full(times.shape, np.nan)
    contacts: list[tuple[float, float]] = []  # (time, speed m/s)
    h = height_px / PIXELS_PER_M
    t0, v0, pos0 = drop_t, 0.0, h  # state at the start of the current flight (height above floor in m)
    while t0 < times[-1] + 1:
        # time to reach the floor: pos0 + v0 t - g t^2 / 2 = 0
        t_hit = (v0 + np.sqrt(v0**2 + 2 * GRAVITY * pos0)) / GRAVITY
        sel = (times >= t0) & (times < t0 + t_hit)
        dt = times[sel] - t0
        y[sel] = FLOOR_Y - radius_px - (pos0 + v0 * dt - GRAVITY * dt**2 / 2) * PIXELS_PER_M
        speed = GRAVITY * t_hit - v0
        t0 += t_hit
        contacts.append((t0, speed))
        v0, pos0 = speed * RESTITUTION, 0.0
        if v0 < 0.35:
            break
    y[times < drop_t] = FLOOR_Y - radius_px - height_px
    y[np.isnan(y) & (times >= drop_t)] = FLOOR_Y - radius_px
    return y, contacts


def draw_frame(balls: list[tuple[float, float, float, tuple[int, int, int]]]) -> np.ndarray:
    """A sky gradient, a wooden floor and anti-aliased balls (x, y, radius, rgb)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    sky = np.stack([150 + 60 * yy / HEIGHT, 190 + 40 * yy / HEIGHT, 235 - 10 * yy / HEIGHT], -1)
    grain = 20 * np.sin(xx / 7.0 + 3 * np.sin(yy / 11.0))[..., None]
    floor = np.array([140, 95, 55], np.float32) + grain
    img = np.where((yy >= FLOOR_Y)[..., None], floor, sky)
    for x, y, r, rgb in balls:
        dist = np.sqrt((xx - x) ** 2 + (yy - y) ** 2)
        alpha = np.clip(r - dist + 0.5, 0, 1)[..., None]
        shade = np.clip(1.15 - 0.5 * np.sqrt((xx - x + r / 3) ** 2 + (yy - y + r / 3) ** 2) / r, 0.4, 1.2)[
            ..., None
        ]
        img = img * (1 - alpha) + alpha * np.array(rgb, np.float32) * shade
        shadow = np.clip(1 - np.abs(yy - FLOOR_Y - 3) / 3, 0, 1) * np.clip(1 - np.abs(xx - x) / r, 0, 1)
        img *= 1 - 0.3 * shadow[..., None] * (y / FLOOR_Y)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    sr = DEFAULT_SPEC.sample_rate
    times = np.arange(int(DURATION_S * FPS)) / FPS
    balls = [
        # x, radius, drop time, drop height, colour, material
        (80.0, 14.0, 0.4, 120.0, (200, 60, 40), "wood"),
        (180.0, 10.0, 2.6, 130.0, (170, 175, 185), "metal"),
    ]
    rng = np.random.default_rng(1234)
    audio = np.zeros(int(DURATION_S * sr), np.float32)
    audio += 0.002 * rng.standard_normal(audio.shape).astype(np.float32)  # faint room tone
    events = []
    tracks = []
    for x, radius, drop_t, height, colour, material in balls:
        y, contacts = simulate_drop(drop_t, height, radius, times)
        tracks.append((x, y, radius, colour))
        for t_hit, speed in contacts:
            if t_hit >= DURATION_S:
                break
            hit = impact(material, size_m=radius / PIXELS_PER_M * 2, velocity=speed, sample_rate=sr, rng=rng)
            start = round(t_hit * sr)
            end = min(start + hit.size, audio.size)
            audio[start:end] += hit[: end - start]
            events.append({"t": round(t_hit, 4), "label": f"impact/{material}", "source": f"{material} ball"})
    frames = [draw_frame([(x, y[i], r, c) for x, y, r, c in tracks]) for i in range(times.size)]
    audio = 0.9 * audio / max(1e-6, float(np.abs(audio).max()))
    write_video(HERE / "bounce.mp4", np.stack(frames), fps=FPS, audio=audio, sample_rate=sr, crf=26)
    events.sort(key=lambda e: e["t"])
    meta = {
        "video": "bounce.mp4",
        "caption": "a wooden ball and then a metal ball bounce on a wooden floor",
        "events": events,
        "fps": FPS,
        "duration_s": DURATION_S,
    }
    (HERE / "bounce.events.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {HERE / 'bounce.mp4'} with {len(events)} impacts")


if __name__ == "__main__":
    main()
