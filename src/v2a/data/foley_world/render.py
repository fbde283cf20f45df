"""Frames of a scene: crop the shot's backdrop at the camera, blit sprites, draw particles, degrade.

Fast by construction: the backdrop is a pre-composed canvas that the camera slices (pan) and, when zoomed,
the slice is resized once; sprites were made once per clip and only their bounding box is blended; particle
layers (rain, leaves, shards, water) are drawn with vectorised index arithmetic.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from v2a.data.foley_world.physics import GRAVITY
from v2a.data.foley_world.scene import Overlay, Scene, Shot
from v2a.data.foley_world.sprites import Sprite


def blit(dst: np.ndarray, sprite: Sprite, x: float, y: float) -> None:
    """Alpha-blend ``sprite`` into the float32 image ``dst`` in place, its anchor at (x, y); clipped."""
    h, w = dst.shape[:2]
    sh, sw = sprite.rgb.shape[:2]
    sx0, sy0 = round(x - sprite.anchor[0]), round(y - sprite.anchor[1])
    x0, y0, x1, y1 = max(0, sx0), max(0, sy0), min(w, sx0 + sw), min(h, sy0 + sh)
    if x0 >= x1 or y0 >= y1:
        return
    region = dst[y0:y1, x0:x1]
    region *= 1.0 - sprite.alpha[y0 - sy0 : y1 - sy0, x0 - sx0 : x1 - sx0]
    region += sprite.rgb[y0 - sy0 : y1 - sy0, x0 - sx0 : x1 - sx0]


def _shadow(width: float) -> Sprite:
    w, h = max(3, round(width)), max(2, round(width * 0.22))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    alpha = (np.clip(1 - d, 0, 1) * 0.45)[..., None]
    return Sprite(np.zeros((h, w, 3), np.float32), alpha, (w / 2, h / 2))


def render_frames(scene: Scene, *, noise_seed: int = 0) -> np.ndarray:
    """Draw every frame.

    Args:
        scene: the clip's scene graph.
        noise_seed: seed of the sensor noise (when the scene's artefacts ask for it).

    Returns:
        (T, H, W, 3) uint8 RGB frames.
    """
    width, height = scene.width, scene.height
    frames = np.empty((scene.times.size, height, width, 3), np.uint8)
    prepared = {shot.index: _prepare(shot, scene) for shot in scene.shots}
    sigma = scene.artefacts.get("noise_sigma", 0.0)
    noise_rng = np.random.default_rng(noise_seed)
    for i, t in enumerate(scene.times):
        shot = scene.shot_at(float(t))
        layers, shadows = prepared[shot.index]
        x0, y0, zoom = shot.camera[i]
        cw, ch = min(shot.world.shape[1], round(width / zoom)), min(shot.world.shape[0], round(height / zoom))
        ix0 = int(np.clip(round(x0), 0, shot.world.shape[1] - cw))
        iy0 = int(np.clip(round(y0), 0, shot.world.shape[0] - ch))
        view = shot.world[iy0 : iy0 + ch, ix0 : ix0 + cw].astype(np.float32)
        for overlay, data in layers:
            if overlay.kind == "water":
                _draw_water(view, data, float(t), ix0, iy0)
        for entity, shadow in shadows:
            track = entity.track
            if np.isnan(track.x[i]):
                continue
            if shadow is not None:
                blit(view, shadow, track.x[i] - ix0, track.shadow_y - iy0)
            sprite = track.sprites[int(np.clip(track.variant[i], 0, len(track.sprites) - 1))]
            blit(view, sprite, track.x[i] - ix0, track.y[i] - iy0)
        for overlay, data in layers:
            if overlay.kind == "shards":
                _draw_shards(view, overlay.params, data, float(t), ix0, iy0, shot.ppm)
            elif overlay.kind == "rain":
                _draw_rain(view, data, float(t))
            elif overlay.kind == "leaves":
                _draw_leaves(view, data, float(t))
        if sigma:
            view += noise_rng.normal(0.0, sigma, view.shape).astype(np.float32)
        image = np.clip(view, 0, 255).astype(np.uint8)
        if image.shape[:2] != (height, width):
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
        frames[i] = image
    return frames


def _prepare(shot: Shot, scene: Scene):
    """Per-shot drawing order, shadow sprites and precomputed particle data."""
    drawn = sorted((e for e in shot.entities if e.track is not None), key=lambda e: e.track.z)
    shadows = []
    for entity in drawn:
        shadow = None
        if entity.track.shadow_y is not None:
            shadow = _shadow(max(s.size[0] for s in entity.track.sprites) * 0.9)
        shadows.append((entity, shadow))
    layers = [(o, _particles(o, shot, scene)) for o in shot.overlays]
    return layers, shadows


def _particles(overlay: Overlay, shot: Shot, scene: Scene) -> dict:
    p = overlay.params
    rng = np.random.default_rng(p["seed"])
    if overlay.kind == "rain":
        return {"base": rng.uniform(0, 1, (p["count"], 2)), "slant": p["slant"], "speed": p["speed"],
                "length": max(3, round(scene.height * 0.07))}  # fmt: skip
    if overlay.kind == "leaves":
        colours = rng.choice(
            np.array([[150, 90, 30], [180, 130, 40], [110, 120, 40], [130, 60, 30]], np.float32), p["count"]
        )
        return {"base": rng.uniform(0, 1, (p["count"], 2)), "phase": rng.uniform(0, 6.3, p["count"]),
                "rate": rng.uniform(0.1, 0.3, p["count"]), "speed": p["speed"], "colours": colours}  # fmt: skip
    if overlay.kind == "shards":
        angle = rng.uniform(np.pi * 1.05, np.pi * 1.95, p["count"])
        speed = rng.uniform(0.3, 1.0, p["count"]) * p["speed"]
        rest = p["floor_y"] + rng.uniform(-2, 6, p["count"])
        return {"v": np.stack([np.cos(angle) * speed, np.sin(angle) * speed], 1), "rest": rest}
    if overlay.kind == "water":
        top = round(p["top"])
        band_h = shot.world.shape[0] - top
        ww = shot.world.shape[1]
        tex = p["texture"]
        period = 64
        if tex is not None:
            tile = np.asarray(Image.fromarray(tex).resize((period * 2, max(8, band_h))), np.float32)
        else:
            yy, xx = np.mgrid[0:band_h, 0 : period * 2].astype(np.float32)
            tile = np.stack(
                [40 + 0 * xx, 90 + 15 * np.sin(xx / 5 + yy), 140 + 20 * np.sin(xx / 7 - yy / 2)], -1
            )
        reps = ww // tile.shape[1] + 3
        strip = np.tile(tile, (1, reps, 1))[:band_h]
        tint = np.array([60, 110, 160], np.float32)
        strip = 0.55 * strip + 0.45 * tint
        yy, xx = np.mgrid[0:band_h, 0 : strip.shape[1]].astype(np.float32)
        strip += 45 * (np.sin(xx / 4.0 + 2 * np.sin(yy / 3.0)) > 0.93)[..., None]  # glints on ripples
        return {"top": top, "strip": strip, "speed": p["speed"], "period": tile.shape[1]}
    raise ValueError(f"unknown overlay {overlay.kind!r}")


def _draw_water(view: np.ndarray, data: dict, t: float, ix0: int, iy0: int) -> None:
    top = data["top"] - iy0
    if top >= view.shape[0]:
        return
    shift = int(data["speed"] * t) % data["period"]
    y_from = max(0, top)
    strip = data["strip"][
        y_from - top : y_from - top + view.shape[0] - y_from, shift + ix0 : shift + ix0 + view.shape[1]
    ]
    view[y_from : y_from + strip.shape[0], : strip.shape[1]] = strip


def _draw_rain(view: np.ndarray, data: dict, t: float) -> None:
    h, w = view.shape[:2]
    view *= 0.9  # overcast
    base = data["base"]
    ys = ((base[:, 1] + data["speed"] * t) % 1.0) * (h + data["length"]) - data["length"]
    xs = ((base[:, 0] + data["slant"] * data["speed"] * t) % 1.0) * w
    k = np.arange(data["length"])
    py = np.round(ys[:, None] + k[None, :]).astype(int).ravel()
    px = np.round(xs[:, None] + data["slant"] * k[None, :]).astype(int).ravel()
    ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
    py, px = py[ok], px[ok]
    view[py, px] = view[py, px] * 0.6 + 0.4 * 215.0


def _draw_leaves(view: np.ndarray, data: dict, t: float) -> None:
    h, w = view.shape[:2]
    base, phase = data["base"], data["phase"]
    xs = ((base[:, 0] + data["speed"] * 0.35 * t + 0.03 * np.sin(3 * t + phase)) % 1.2 - 0.1) * w
    ys = ((base[:, 1] + data["rate"] * t + 0.04 * np.sin(2 * t + phase)) % 1.0) * h
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2)):
        py, px = np.round(ys).astype(int) + dy, np.round(xs).astype(int) + dx
        ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        view[py[ok], px[ok]] = data["colours"][ok]


def _draw_shards(
    view: np.ndarray, params: dict, data: dict, t: float, ix0: int, iy0: int, ppm: float
) -> None:
    dt = t - params["t"]
    if dt < 0:
        return
    g = GRAVITY * ppm
    # flight until each shard drops back to its resting height: y(t) = y0 + vy t + g t^2 / 2
    vy = data["v"][:, 1]
    drop = data["rest"] - params["y"]
    t_land = (-vy + np.sqrt(np.maximum(vy**2 + 2 * g * drop, 0))) / g
    tt = np.minimum(dt, t_land)
    xs = params["x"] + data["v"][:, 0] * tt - ix0
    ys = params["y"] + vy * tt + g * tt**2 / 2 - iy0
    colour = np.asarray(params["colour"], np.float32) * 0.5 + 120
    h, w = view.shape[:2]
    for dy, dx in ((0, 0), (0, 1), (1, 0)):
        py, px = np.round(ys).astype(int) + dy, np.round(xs).astype(int) + dx
        ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        view[py[ok], px[ok]] = view[py[ok], px[ok]] * 0.3 + colour * 0.7
