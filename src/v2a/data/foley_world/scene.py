"""The scene graph of one clip, sampled from its seed: shots, backdrops, camera paths, entities and sound cues.

A clip is one to three shots (hard cuts between them). Each shot has a backdrop (a real photograph above a
textured floor, or a drawn landscape when no pictures are installed), a camera path (static, pan, zoom or
handheld shake), entities (things that move and make sounds, silent distractors) and ambience. Entities
carry per-frame tracks for the renderer and timed sound cues for the mixer; the caption and the event list
are read off the same graph, so picture, sound and text agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from v2a.data.foley_world.backgrounds import BackgroundLibrary, load_picture
from v2a.data.foley_world.sounds import Sound, SoundBank
from v2a.data.foley_world.sprites import Sprite

INDOOR_FLOORS = ("wood", "stone")
OUTDOOR_FLOORS = ("grass", "gravel", "dirt", "stone", "sand", "snow", "wood")
FLOOR_WORDS = {
    "wood": "wooden floor",
    "stone": "stone floor",
    "grass": "grass",
    "gravel": "gravel",
    "dirt": "dirt path",
    "sand": "sand",
    "snow": "snow",
}
_FLOOR_TEXTURE = {
    "wood": "wood",
    "stone": "stone",
    "grass": "grass",
    "gravel": "gravel",
    "dirt": "dirt",
    "snow": "snow",
}
_FLOOR_COLOUR = {
    "wood": (140, 95, 55),
    "stone": (130, 128, 122),
    "grass": (70, 120, 45),
    "gravel": (125, 118, 105),
    "dirt": (115, 85, 55),
    "sand": (205, 185, 140),
    "snow": (235, 238, 245),
}


@dataclass
class Track:
    """What the renderer draws for an entity at each frame.

    Attributes:
        x: (T,) anchor x in world pixels (NaN: not drawn at that frame).
        y: (T,) anchor y in world pixels.
        variant: (T,) index into ``sprites`` per frame.
        sprites: the entity's looks (poses, mouth shapes, door angles, ...).
        z: drawing order (larger is nearer, drawn later).
        shadow_y: world y of the ground below the entity, where a soft contact shadow is drawn (None: none).
    """

    x: np.ndarray
    y: np.ndarray
    variant: np.ndarray
    sprites: list[Sprite]
    z: float = 0.0
    shadow_y: float | None = None


@dataclass
class Cue:
    """A sound placed on the clip's timeline.

    Attributes:
        t: onset time in seconds (continuous sounds: when they start).
        label: taxonomy label (``impact/wood``).
        sound: the waveform and its provenance.
        gain: linear gain applied to the peak-normalised sound.
        onset: True for a sharp event the sync metric should find at ``t``.
        end: for continuous sounds, when they stop (None: the sound's own length).
        x: world x of the source at ``t`` (for panning; None: centred).
        on_screen: whether the source is visible at ``t``.
        doppler: straight-line motion ``{t0, x0_m, speed_m, depth_m}`` for moving engines.
    """

    t: float
    label: str
    sound: Sound
    gain: float
    onset: bool = True
    end: float | None = None
    x: float | None = None
    on_screen: bool = True
    doppler: dict | None = None


@dataclass
class Entity:
    """A thing in a shot.

    Attributes:
        id: unique within the clip.
        kind: faller, breaker, walker, door, vehicle, speaker, stamp, fire, water, rain, wind, distractor,
            offscreen.
        noun: caption noun phrase ("a metal can").
        phrase: what it does, for the caption ("a metal can falls and bounces twice").
        track: per-frame drawing (None for sources that are never seen).
        cues: its sounds.
        transcript: the words it says (speakers only).
    """

    id: str
    kind: str
    noun: str
    phrase: str
    track: Track | None
    cues: list[Cue] = field(default_factory=list)
    transcript: str | None = None


@dataclass
class Overlay:
    """A particle or surface layer drawn over the entities: rain, leaves, shards, water.

    Attributes:
        kind: rain, leaves, shards or water.
        params: what the renderer needs (seed, counts, positions, times).
    """

    kind: str
    params: dict


@dataclass
class Shot:
    """One continuous camera take between cuts.

    Attributes:
        index: 0-based shot number.
        t0: start time (s).
        t1: end time (s).
        world: (Hw, Ww, 3) uint8 backdrop canvas the camera looks into.
        floor_y: y of the floor line in world pixels.
        floor: floor material (wood, grass, ...).
        setting: indoor or outdoor.
        background: stored picture used (None: drawn).
        camera: (T, 3) per-frame view ``[x0, y0, zoom]`` (view size = frame size / zoom).
        camera_move: static, pan, zoom or handheld.
        ppm: pixels per metre at the floor.
        entities: things in the shot.
        overlays: particle and surface layers.
        room: reverb ``{rt60, wet}`` or None.
    """

    index: int
    t0: float
    t1: float
    world: np.ndarray
    floor_y: float
    floor: str
    setting: str
    background: str | None
    camera: np.ndarray
    camera_move: str
    ppm: float
    entities: list[Entity] = field(default_factory=list)
    overlays: list[Overlay] = field(default_factory=list)
    room: dict | None = None


@dataclass
class Scene:
    """Everything about one clip except the rendered pixels and samples.

    Attributes:
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate.
        duration_s: clip length.
        times: (T,) frame times in seconds.
        shots: the shots in time order.
        artefacts: degradations ``{noise_sigma, crf, audio_noise_db}``.
    """

    width: int
    height: int
    fps: float
    duration_s: float
    times: np.ndarray
    shots: list[Shot]
    artefacts: dict

    def shot_at(self, t: float) -> Shot:
        """The shot showing time ``t``."""
        for shot in self.shots:
            if t < shot.t1:
                return shot
        return self.shots[-1]

    def in_view(self, shot: Shot, x: float, y: float, t: float, margin: float = 0.0) -> bool:
        """Whether world point (x, y) of ``shot`` is inside the camera view at time ``t``."""
        i = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 1))
        x0, y0, zoom = shot.camera[i]
        w, h = self.width / zoom, self.height / zoom
        return x0 - margin <= x <= x0 + w + margin and y0 - margin <= y <= y0 + h + margin


@dataclass(frozen=True)
class Assets:
    """What scenes are made from: the sound bank of the split and the picture library (or None)."""

    bank: SoundBank
    pictures: BackgroundLibrary | None
    split: str


def choose_floor(rng: np.random.Generator, setting: str) -> str:
    """A floor material plausible for the setting."""
    return str(rng.choice(INDOOR_FLOORS if setting == "indoor" else OUTDOOR_FLOORS))


def texture_for(assets: Assets, rng: np.random.Generator, material: str) -> np.ndarray | None:
    """A real texture picture of ``material`` (wood, stone, grass, ...) when the library has one."""
    if assets.pictures is None:
        return None
    pic = assets.pictures.choose(
        rng, kind="texture", split=assets.split, material=_FLOOR_TEXTURE.get(material, material)
    )
    return None if pic is None else load_picture(pic.path)


def choose_backdrop(assets: Assets, rng: np.random.Generator) -> tuple[Path | None, str]:
    """A backdrop picture of the split (photos 85 %, paintings 15 %) and its setting (indoor/outdoor).

    Every picture is equally likely, so a small indoor set is not overused; the setting is the picture's
    tag, or drawn at random (40 % indoor) for a drawn backdrop (5 %, or always without a library).
    """
    if assets.pictures is not None and rng.random() < 0.95:
        kind = "photo" if rng.random() < 0.85 else "art"
        pic = assets.pictures.choose(rng, kind=kind, split=assets.split) or assets.pictures.choose(
            rng, kind="photo", split=assets.split
        )
        if pic is not None:
            return pic.path, pic.material if pic.material in ("indoor", "outdoor") else "outdoor"
    return None, "indoor" if rng.random() < 0.4 else "outdoor"


def make_world(
    assets: Assets, rng: np.random.Generator, width: int, height: int, floor: str, picture: Path | None
) -> tuple[np.ndarray, float]:
    """The backdrop canvas of a shot: a photograph (or drawn sky and hills) above a textured floor band.

    Returns:
        ``(world, floor_y)``; the world is 1.5x wider and 1.25x taller than a frame.
    """
    ww, wh = round(width * 1.5), round(height * 1.25)
    floor_h = round(height * rng.uniform(0.2, 0.32))
    floor_y = wh - floor_h
    if picture is not None:
        backdrop = _cover(load_picture(picture), ww, floor_y + floor_h // 3, rng)
    else:
        backdrop = _drawn_landscape(rng, ww, floor_y + floor_h // 3)
    world = np.empty((wh, ww, 3), np.uint8)
    world[: backdrop.shape[0]] = backdrop
    world[floor_y:] = _floor_band(assets, rng, floor, ww, floor_h)
    # contact shadow where the floor meets the wall: darken a few rows above the floor line
    shade = np.linspace(1.0, 0.75, 4, dtype=np.float32)[:, None, None]
    world[floor_y - 4 : floor_y] = (world[floor_y - 4 : floor_y] * shade).astype(np.uint8)
    return world, float(floor_y)


def _cover(picture: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Scale a picture to cover (w, h), crop a random part of the excess."""
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph) * rng.uniform(1.0, 1.3)
    sw, sh = max(w, round(pw * scale)), max(h, round(ph * scale))
    big = np.asarray(Image.fromarray(picture).resize((sw, sh), Image.Resampling.BILINEAR))
    x0, y0 = int(rng.integers(0, sw - w + 1)), int(rng.integers(0, sh - h + 1))
    out = big[y0 : y0 + h, x0 : x0 + w]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _drawn_landscape(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Sky gradient with soft clouds of noise and two ranges of hills."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top = np.array(rng.uniform([60, 110, 170], [140, 180, 240]), np.float32)
    bottom = np.array(rng.uniform([170, 190, 200], [230, 235, 250]), np.float32)
    img = np.broadcast_to(top * (1 - yy) + bottom * yy, (h, w, 3)).copy()
    xs = np.arange(w, dtype=np.float32)
    for k, colour in enumerate(rng.uniform([40, 80, 40], [110, 150, 90], (2, 3))):
        ridge = h * (0.45 + 0.2 * k) + sum(
            rng.uniform(3, 12) * np.sin(xs / rng.uniform(15, 90) + rng.uniform(0, 6)) for _ in range(3)
        )
        mask = np.arange(h)[:, None] > ridge[None, :]
        img[mask] = img[mask] * 0.2 + np.asarray(colour, np.float32) * (0.8 - 0.15 * k)
    return np.clip(img, 0, 255).astype(np.uint8)


def _floor_band(assets: Assets, rng: np.random.Generator, floor: str, w: int, h: int) -> np.ndarray:
    """A floor strip: a real texture tiled at a scale matching the band, lit darker towards the back."""
    tex = texture_for(assets, rng, floor)
    if tex is None:
        base = np.array(_FLOOR_COLOUR[floor], np.float32)
        noise = rng.normal(0, 1, (h // 2 + 1, w // 2 + 1)).astype(np.float32)
        noise = np.asarray(Image.fromarray(noise).resize((w, h), Image.Resampling.BILINEAR))
        band = base[None, None, :] * (1 + 0.12 * noise[..., None])
        if floor == "wood":
            band *= (1 + 0.08 * np.sin(np.arange(h)[:, None, None] * 1.3))[..., :1]
    else:
        scale = max(0.2, min(1.5, h / max(tex.shape[0], 1) * rng.uniform(0.6, 1.4)))
        th, tw = max(4, round(tex.shape[0] * scale)), max(4, round(tex.shape[1] * scale))
        tile = np.asarray(Image.fromarray(tex).resize((tw, th), Image.Resampling.BILINEAR), np.float32)
        band = np.tile(tile, (h // th + 2, w // tw + 2, 1))[:h, :w]
    light = np.linspace(0.7, 1.1, h, dtype=np.float32)[:, None, None]
    return np.clip(band * light, 0, 255).astype(np.uint8)


def camera_path(
    rng: np.random.Generator, times: np.ndarray, t0: float, t1: float, width: int, height: int, world_shape
) -> tuple[np.ndarray, str]:
    """Per-frame ``[x0, y0, zoom]`` of a static, panning, zooming or shaking camera (clamped to the world)."""
    wh, ww = world_shape[:2]
    move = str(rng.choice(["static", "pan", "zoom", "handheld"], p=[0.45, 0.3, 0.15, 0.1]))
    u = np.clip((times - t0) / max(t1 - t0, 1e-6), 0, 1)
    ease = u * u * (3 - 2 * u)
    zoom = np.ones_like(times)
    cx = np.full_like(times, ww / 2 + rng.uniform(-0.15, 0.15) * width)
    cy = np.full_like(times, wh - height / 2 - rng.uniform(0, 0.1) * height)
    if move == "pan":
        span = rng.uniform(0.15, 0.45) * width * rng.choice([-1, 1])
        cx = cx - span / 2 + span * ease
    elif move == "zoom":
        z0, z1 = (1.0, rng.uniform(1.15, 1.35)) if rng.random() < 0.5 else (rng.uniform(1.15, 1.35), 1.0)
        zoom = z0 + (z1 - z0) * ease
    elif move == "handheld":
        for axis in (cx, cy):
            for _ in range(3):
                axis += rng.uniform(0.5, 2.5) * np.sin(
                    2 * np.pi * rng.uniform(0.2, 1.5) * times + rng.uniform(0, 6)
                )
        zoom = zoom * 1.05
    vw, vh = width / zoom, height / zoom
    x0 = np.clip(cx - vw / 2, 0, ww - vw)
    y0 = np.clip(cy - vh / 2, 0, wh - vh)
    return np.stack([x0, y0, zoom], axis=1), move
