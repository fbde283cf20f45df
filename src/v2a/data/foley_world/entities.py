"""Samplers for the things in a shot: each returns an Entity with its per-frame track and its sound cues.

Visible sound sources: fallers (impact per floor contact, loudness from impact speed), breakers (glass that
shatters on its first contact), walkers (a footstep per foot strike, on the floor's surface), doors (open
creak, slam when shut), vehicles (engine with Doppler and panning along the path), speakers (TTS with a
mouth that follows the speech), stamps (corpus pictures that hop when their own recording plays), fire,
water, rain and wind. Silent distractors move without sound; off-screen ambience sounds without a picture.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from v2a.data import procedural_audio as pa
from v2a.data.foley_world import physics, speech, sprites
from v2a.data.foley_world.scene import (
    FLOOR_WORDS,
    Assets,
    Cue,
    Entity,
    Overlay,
    Scene,
    Shot,
    Track,
    texture_for,
)
from v2a.data.foley_world.sounds import Sound, loop_to

COLOURS = {
    "red": (200, 40, 35),
    "blue": (40, 80, 190),
    "green": (40, 150, 70),
    "yellow": (230, 190, 40),
    "white": (235, 235, 235),
    "black": (40, 40, 45),
    "orange": (235, 120, 30),
    "silver": (180, 185, 190),
}
_SKIN = ((241, 194, 160), (224, 172, 125), (198, 134, 90), (141, 85, 50), (95, 60, 40))
_HAIR = ((30, 25, 20), (90, 60, 30), (200, 170, 90), (120, 40, 20), (150, 150, 150))
_STAMP_VERBS = {
    "dog": "barks", "cat": "meows", "bird": "chirps", "chicken": "clucks", "duck": "quacks", "cow": "moos",
    "horse": "neighs", "sheep": "bleats", "pig": "grunts", "frog": "croaks", "insect": "buzzes",
    "elephant": "trumpets", "monkey": "hoots", "bear": "growls", "wolf": "howls", "bigcat": "roars",
    "snake": "hisses", "rodent": "squeaks", "ring": "rings", "clock": "ticks", "camera": "clicks",
}  # fmt: skip
_COUNT_WORDS = ("no", "once", "twice", "three times", "four times", "five times")


@dataclass
class Ctx:
    """What every sampler needs: randomness, timing, geometry of the shot and the assets."""

    rng: np.random.Generator
    scene: Scene
    shot: Shot
    assets: Assets
    sample_rate: int

    @property
    def times(self) -> np.ndarray:
        return self.scene.times

    @property
    def mask(self) -> np.ndarray:
        """(T,) frames that belong to this shot."""
        return (self.times >= self.shot.t0) & (self.times < self.shot.t1)

    def view(self) -> tuple[float, float, float, float]:
        """(x0, y0, w, h) of the camera view averaged over the shot."""
        cam = self.shot.camera[self.mask] if self.mask.any() else self.shot.camera
        x0, y0, zoom = cam.mean(axis=0)
        return float(x0), float(y0), self.scene.width / zoom, self.scene.height / zoom

    def view_x(self, frac: float) -> float:
        x0, _, w, _ = self.view()
        return x0 + frac * w

    def visible(self, x: float, y: float, t: float, margin: float = 0.0) -> bool:
        return self.scene.in_view(self.shot, x, y, t, margin)

    def only_in_shot(self, *arrays: np.ndarray) -> None:
        for a in arrays:
            a[~self.mask] = np.nan


def article(word: str) -> str:
    """'an' before a vowel sound, else 'a'."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _count(n: int) -> str:
    return _COUNT_WORDS[n] if n < len(_COUNT_WORDS) else f"{n} times"


def _direction(speed: float) -> str:
    return "from left to right" if speed > 0 else "from right to left"


# ---------------------------------------------------------------------------------------------------- fallers


def faller(ctx: Ctx, eid: str) -> Entity | None:
    """An object dropped or tossed into view that bounces on the floor: one impact per contact."""
    rng, shot, height = ctx.rng, ctx.shot, ctx.scene.height
    material = str(
        rng.choice(["wood", "metal", "stone", "plastic", "glass"], p=[0.28, 0.28, 0.18, 0.16, 0.1])
    )
    size = height * rng.uniform(0.09, 0.2)
    colour_name = str(rng.choice(list(COLOURS)))
    colour = COLOURS[colour_name]
    if material == "wood":
        if rng.random() < 0.6:
            sprite, noun, restitution = (
                sprites.crate(size, texture_for(ctx.assets, rng, "wood"), rng),
                "a wooden crate",
                0.35,
            )
        else:
            sprite = sprites.ball(size / 2, colour, rng, texture_for(ctx.assets, rng, "wood"))
            noun, restitution = "a wooden ball", 0.5
    elif material == "metal":
        if rng.random() < 0.6:
            sprite, noun, restitution = sprites.can(size * 0.6, size, colour, rng), "a metal can", 0.45
        else:
            sprite, noun, restitution = sprites.ball(size / 2, COLOURS["silver"], rng), "a steel ball", 0.55
    elif material == "stone":
        sprite, noun, restitution = (
            sprites.rock(size, texture_for(ctx.assets, rng, "stone"), rng),
            "a rock",
            0.3,
        )
    elif material == "plastic":
        sprite, noun, restitution = (
            sprites.ball(size / 2, colour, rng),
            f"{article(colour_name)} {colour_name} plastic ball",
            0.7,
        )
    else:
        green = (60, 140, 80) if rng.random() < 0.5 else (140, 90, 40)
        sprite, noun, restitution = sprites.bottle(size * 0.4, size, green, rng), "a glass bottle", 0.3
    label = "glass/clink" if material == "glass" else f"impact/{material}"
    radius = sprite.size[1] / 2
    _, y0v, wv, _ = ctx.view()
    t_release = rng.uniform(shot.t0, max(shot.t0 + 0.05, shot.t1 - 1.5))
    floor_y = shot.floor_y + rng.uniform(0.05, 0.5) * (ctx.scene.height * 1.25 - shot.floor_y)
    if rng.random() < 0.6:  # dropped from above the frame
        x_start = ctx.view_x(rng.uniform(0.15, 0.85))
        height_px = max(radius, floor_y - radius - (y0v - radius * 1.2))
        vx, vy0, how = rng.normal(0, 0.1) * wv, 0.0, "falls"
    else:  # tossed in from a side
        side = rng.choice([-1, 1])
        x_start = ctx.view_x(0.5 + side * 0.55)
        height_px = rng.uniform(0.3, 0.7) * (floor_y - y0v)
        vx, vy0, how = -side * rng.uniform(0.5, 1.0) * wv, rng.uniform(0.5, 2.5), "is tossed in"
    motion = physics.drop(
        ctx.times, t0=t_release, x0=x_start, height_px=height_px, floor_y=floor_y, radius_px=radius,
        ppm=shot.ppm, vx=vx, vy0=vy0, restitution=restitution * rng.uniform(0.85, 1.1),
    )  # fmt: skip
    x, y = motion.x.copy(), motion.y.copy()
    x[ctx.times < t_release] = np.nan
    ctx.only_in_shot(x, y)
    track = Track(x, y, np.zeros(ctx.times.size, int), [sprite], z=floor_y, shadow_y=floor_y)
    contacts = [c for c in motion.contacts if shot.t0 <= c.t < shot.t1 - 0.02]
    if not contacts:
        return None
    size_m = size / shot.ppm
    voice = ctx.assets.bank.get(label, rng, procedural=None, augment=0.3, max_s=1.5)
    use_corpus = voice is not None and rng.random() < 0.5
    cues = []
    for c in contacts:
        if use_corpus:
            sound = voice
        else:
            wave = pa.impact(material, size_m=size_m, velocity=c.speed, sample_rate=ctx.sample_rate, rng=rng)
            sound = Sound(wave, "procedural")
        gain = float(np.clip(c.speed / 5.0, 0.04, 1.0))
        on = ctx.visible(c.x, floor_y, c.t, margin=radius)
        cues.append(Cue(c.t, label, sound, gain, x=c.x, on_screen=on))
    bounces = len(contacts) - 1
    phrase = f"{noun} {how} and hits the {FLOOR_WORDS[shot.floor]}"
    if bounces:
        phrase = f"{noun} {how} and bounces {_count(bounces)} on the {FLOOR_WORDS[shot.floor]}"
    return Entity(eid, "faller", noun, phrase, track, cues)


def breaker(ctx: Ctx, eid: str) -> Entity | None:
    """A glass object that falls and shatters on its first contact, throwing shards."""
    rng, shot = ctx.rng, ctx.shot
    size = ctx.scene.height * rng.uniform(0.12, 0.22)
    kind = str(rng.choice(["bottle", "vase", "glass"]))
    tint = {"bottle": (60, 140, 80), "vase": (90, 140, 200), "glass": (200, 220, 235)}[kind]
    width = size * {"bottle": 0.4, "vase": 0.6, "glass": 0.55}[kind]
    sprite = sprites.bottle(width, size, tint, rng)
    _, y0v, _, _ = ctx.view()
    floor_y = shot.floor_y + rng.uniform(0.05, 0.4) * (ctx.scene.height * 1.25 - shot.floor_y)
    t_release = rng.uniform(shot.t0, max(shot.t0 + 0.05, shot.t1 - 1.0))
    x_start = ctx.view_x(rng.uniform(0.2, 0.8))
    radius = size / 2
    motion = physics.drop(
        ctx.times, t0=t_release, x0=x_start, height_px=max(radius, floor_y - y0v), floor_y=floor_y,
        radius_px=radius, ppm=shot.ppm, max_contacts=1,
    )  # fmt: skip
    hit = motion.contacts[0] if motion.contacts else None
    if hit is None or not shot.t0 <= hit.t < shot.t1 - 0.05:
        return None
    x, y = motion.x.copy(), motion.y.copy()
    gone = (ctx.times < t_release) | (ctx.times >= hit.t)
    x[gone] = np.nan
    ctx.only_in_shot(x, y)
    track = Track(x, y, np.zeros(ctx.times.size, int), [sprite], z=floor_y, shadow_y=floor_y)
    amount = size / shot.ppm * 5
    sound = ctx.assets.bank.get(
        "glass/break", rng, procedural=lambda: pa.glass_break(size=amount, sample_rate=ctx.sample_rate, rng=rng),
        prefer_procedural=0.3, max_s=2.5,
    )  # fmt: skip
    cue = Cue(
        hit.t, "glass/break", sound, 1.0, x=hit.x, on_screen=ctx.visible(hit.x, floor_y, hit.t, size / 2)
    )
    ctx.shot.overlays.append(
        Overlay("shards", {"t": hit.t, "x": hit.x, "y": floor_y, "count": int(rng.integers(10, 25)), "colour": tint,
                           "speed": size * 6, "seed": int(rng.integers(1 << 31)), "floor_y": floor_y})
    )  # fmt: skip
    noun = f"a glass {kind}" if kind != "glass" else "a drinking glass"
    phrase = f"{noun} falls and shatters on the {FLOOR_WORDS[shot.floor]}"
    return Entity(eid, "breaker", noun, phrase, track, [cue])


# ---------------------------------------------------------------------------------------------------- walkers


def walker(ctx: Ctx, eid: str) -> Entity | None:
    """A person walking across (often in or out of the frame): a footstep at each foot strike."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    height = scene.height * rng.uniform(0.35, 0.6)
    palette = {
        "skin": _SKIN[int(rng.integers(len(_SKIN)))],
        "hair": _HAIR[int(rng.integers(len(_HAIR)))],
        "shirt": tuple(int(c) for c in rng.integers(30, 230, 3)),
        "trousers": tuple(int(c) for c in rng.integers(20, 140, 3)),
    }
    direction = int(rng.choice([-1, 1]))
    poses = [sprites.person(height, palette, k / 8, facing=direction) for k in range(8)]
    ppm = height / 1.75
    speed_px = direction * rng.uniform(0.9, 1.6) * ppm
    step_s = rng.uniform(0.42, 0.6)
    start_frac = 0.5 - direction * rng.choice([0.65, 0.35])  # enter from outside or start inside the view
    x_start = ctx.view_x(start_frac)
    t_start = rng.uniform(shot.t0, max(shot.t0 + 0.05, shot.t0 + 0.4 * (shot.t1 - shot.t0)))
    gait = physics.walk(
        ctx.times, t0=t_start, t1=shot.t1, x0=x_start, speed_px=speed_px, step_s=step_s, bob_px=height * 0.02
    )
    feet_y = shot.floor_y + rng.uniform(0.3, 0.9) * (scene.height * 1.25 - shot.floor_y)
    x = gait.x.copy()
    y = feet_y + gait.bob
    walking = (ctx.times >= t_start) & (ctx.times <= gait.strikes[-1][0])
    variant = np.where(walking, np.floor(gait.phase * 8).astype(int) % 8, 0)
    ctx.only_in_shot(x, y)
    track = Track(x, y, variant, poses, z=feet_y, shadow_y=feet_y)
    surface = shot.floor
    label = f"footstep/{surface}"
    weight = rng.uniform(0.6, 1.4)
    cues = []
    for t, xs in gait.strikes:
        if not shot.t0 <= t < shot.t1 - 0.02:
            continue
        sound = ctx.assets.bank.get(
            label, rng, procedural=lambda: pa.footstep(surface, weight=weight, sample_rate=ctx.sample_rate, rng=rng),
            prefer_procedural=0.3, augment=0.2, max_s=0.6,
        )  # fmt: skip
        on = ctx.visible(xs, feet_y, t, margin=height * 0.1)
        gain = weight * 0.5 * (1.0 if on else 0.6)
        cues.append(Cue(t, label, sound, gain, x=xs, on_screen=on))
    if not cues:
        return None
    noun = "a person"
    phrase = f"{noun} walks {_direction(speed_px)} on the {FLOOR_WORDS[surface]}"
    seen = [c.on_screen for c in cues]
    if seen[0] and not seen[-1]:
        phrase += " and leaves the frame"
    elif not seen[0] and seen[-1]:
        phrase = f"{noun} walks into view {_direction(speed_px)} on the {FLOOR_WORDS[surface]}"
    return Entity(eid, "walker", noun, phrase, track, cues)


# ---------------------------------------------------------------------------------------------------- doors


def door(ctx: Ctx, eid: str) -> Entity | None:
    """A door in the back wall that swings open (latch and creak) and later slams shut."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    if shot.t1 - shot.t0 < 2.0:
        return None
    height = scene.height * rng.uniform(0.45, 0.7)
    width = height * rng.uniform(0.42, 0.55)
    tex = texture_for(ctx.assets, rng, "wood")
    looks_rng = np.random.default_rng(int(rng.integers(1 << 31)))
    looks = [
        sprites.door(width, height, tex, k / 7, np.random.default_rng(looks_rng.integers(1 << 31)))
        for k in range(8)
    ]
    x_door = ctx.view_x(rng.uniform(0.2, 0.8))
    t_open = rng.uniform(shot.t0 + 0.2, max(shot.t0 + 0.25, shot.t1 - 1.8))
    open_s = rng.uniform(0.5, 0.9)
    t_close = t_open + open_s + rng.uniform(0.6, 2.5)
    close_s = rng.uniform(0.2, 0.35)
    slam = t_close + close_s
    t = ctx.times
    frac = np.clip((t - t_open) / open_s, 0, 1)
    frac = frac * frac * (3 - 2 * frac)
    closing = np.clip((t - t_close) / close_s, 0, 1) ** 2  # accelerating swing ends in the slam
    frac = np.where(t >= t_close, 1 - closing, frac)
    x = np.full(t.size, x_door)
    y = np.full(t.size, shot.floor_y + 1)
    ctx.only_in_shot(x, y)
    track = Track(x, y, np.round(frac * 7).astype(int), looks, z=-1.0)
    cues = []
    for when, action in ((t_open, "open"), (slam, "close")):
        if not shot.t0 <= when < shot.t1 - 0.05:
            continue
        label = f"door/{action}"
        sound = ctx.assets.bank.get(
            label, rng, procedural=lambda a=action: pa.door(a, sample_rate=ctx.sample_rate, rng=rng),
            prefer_procedural=0.3, max_s=2.0,
        )  # fmt: skip
        cues.append(Cue(when, label, sound, 0.8 if action == "close" else 0.6, x=x_door, on_screen=True))
    if not cues:
        return None
    phrase = "a door opens and slams shut" if len(cues) == 2 else "a door creaks open"
    return Entity(eid, "door", "a door", phrase, track, cues)


# ---------------------------------------------------------------------------------------------------- vehicles


def vehicle(ctx: Ctx, eid: str, stamp_row: dict | None = None) -> Entity | None:
    """A car (or a corpus picture of a vehicle) driving across: engine sound panned and Doppler-shifted."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    direction = int(rng.choice([-1, 1]))
    length = scene.width * rng.uniform(0.22, 0.42)
    label, colour_name = "engine/car", str(rng.choice(list(COLOURS)))
    if stamp_row is not None:
        image = _stamp_image(str(ctx.assets.bank.dir / stamp_row["image"]))
        look = sprites.stamp(image, length * image.height / max(1, image.width))
        looks = [look if direction > 0 else sprites.flip(look)]
        label, noun = stamp_row["label"], f"{article(_stamp_noun(stamp_row))} {_stamp_noun(stamp_row)}"
    else:
        looks = [sprites.car(length, COLOURS[colour_name], k * np.pi / 6, facing=direction) for k in range(4)]
        noun = f"{article(colour_name)} {colour_name} car"
    ppm = length / 4.2
    speed_m = rng.uniform(5.0, 14.0)
    speed_px = direction * speed_m * ppm
    x0v, _, wv, _ = ctx.view()
    x_enter = x0v + wv / 2 - direction * (wv / 2 + length / 2)
    t_enter = rng.uniform(shot.t0 - 0.5, max(shot.t0, shot.t1 - 1.5))
    x = physics.linear_path(ctx.times, t0=t_enter, x0=x_enter, speed_px=speed_px)
    road_y = shot.floor_y + rng.uniform(0.4, 0.95) * (scene.height * 1.25 - shot.floor_y)
    y = np.full(ctx.times.size, road_y)
    wheel = np.floor(np.abs(x - x_enter) / (length * 0.08)).astype(int) % len(looks)
    ctx.only_in_shot(x, y)
    track = Track(x, y, wheel, looks, z=road_y, shadow_y=road_y)
    t_exit = t_enter + (wv + length) / abs(speed_px)
    start = max(shot.t0, t_enter - rng.uniform(0.8, 2.0))
    end = min(shot.t1, t_exit + rng.uniform(0.8, 2.0))
    if end - start < 0.5:
        return None
    n = int((end - start + 1.0) * ctx.sample_rate)
    sound = ctx.assets.bank.get(label, rng, procedural=None, augment=0.2) if stamp_row is None else None
    if stamp_row is not None:
        sound = ctx.assets.bank.row_sound(stamp_row, rng)
    if sound is None:
        rpm = rng.uniform(1200, 3200)
        wave = pa.engine(n / ctx.sample_rate, rpm=rpm, cylinders=int(rng.choice([4, 6, 8])), load=rng.uniform(0.3, 0.9),
                         sample_rate=ctx.sample_rate, rng=rng)  # fmt: skip
        sound = Sound(wave, "procedural")
    else:
        sound = Sound(
            loop_to(sound.wave, n, ctx.sample_rate, rng),
            sound.origin,
            sound.file,
            sound.augmented,
            sound.license,
        )
    listener = x0v + wv / 2
    doppler = {
        "t0": float(t_enter), "x0_m": float((x_enter - listener) / ppm), "speed_m": float(direction * speed_m),
        "depth_m": float(rng.uniform(3.0, 12.0)),
    }  # fmt: skip
    cue = Cue(start, label, sound, 0.9, onset=False, end=end, x=None, on_screen=True, doppler=doppler)
    phrase = f"{noun} passes {_direction(direction)}"
    return Entity(eid, "vehicle", noun, phrase, track, [cue])


# ---------------------------------------------------------------------------------------------------- speakers


def speaker(ctx: Ctx, eid: str) -> Entity | None:
    """A talking head: a recorded line from the corpus (with its transcript) or espeak-ng speech; the mouth
    opens with the speech envelope."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    room = shot.t1 - shot.t0 - 0.3
    recorded = [r for r in ctx.assets.bank.speech_rows() if r.get("duration_s", 99.0) < room]
    if recorded and rng.random() < 0.5:
        row = recorded[int(rng.integers(len(recorded)))]
        sound = ctx.assets.bank.row_sound(row, rng)
        text, wave = str(row["transcript"]), sound.wave
    else:
        lines = [speech.random_line(rng) for _ in range(int(rng.integers(1, 3)))]
        settings = speech.random_voice(rng)
        text = " ".join(lines)
        wave = speech.speak(text, sample_rate=ctx.sample_rate, **settings)
        if wave.size / ctx.sample_rate > room:
            text = lines[0]
            wave = speech.speak(text, sample_rate=ctx.sample_rate, **settings)
        sound = Sound(wave, "tts", license="GPL-3.0+ (espeak-ng)", voice=f"espeak-ng:{settings['voice']}")
    dur = wave.size / ctx.sample_rate
    if dur > room:
        return None
    t_say = rng.uniform(shot.t0 + 0.2, shot.t1 - dur - 0.1)
    size = scene.height * rng.uniform(0.45, 0.7)
    palette = {
        "skin": _SKIN[int(rng.integers(len(_SKIN)))],
        "hair": _HAIR[int(rng.integers(len(_HAIR)))],
        "shirt": tuple(int(c) for c in rng.integers(30, 230, 3)),
    }
    looks = [sprites.face(size, palette, k / 5) for k in range(6)]
    mouth = speech.mouth_track(wave, ctx.sample_rate, ctx.times - t_say)
    _, y0v, _, hv = ctx.view()
    x = np.full(ctx.times.size, ctx.view_x(rng.choice([0.25, 0.75]) + rng.uniform(-0.08, 0.08)))
    y = y0v + hv - size * 0.625 + size * 0.1 + 0.01 * size * np.sin(2 * np.pi * 0.7 * ctx.times)
    ctx.only_in_shot(x, y)
    track = Track(x, y, np.round(mouth * 5).astype(int), looks, z=1e6)
    cue = Cue(t_say, "speech/voice", sound, 0.8, x=float(x[ctx.mask][0]) if ctx.mask.any() else None)
    phrase = f'a person says "{text}"'
    return Entity(eid, "speaker", "a person", phrase, track, [cue], transcript=text)


# ---------------------------------------------------------------------------------------------------- stamps


@functools.lru_cache(maxsize=64)
def _stamp_image(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGBA")


def _stamp_noun(row: dict) -> str:
    """What a stamp shows: the first word of its source file name (``sheep_lamb.ogg`` -> sheep), else the label."""
    stem = str(row.get("source") or row.get("image") or "").rsplit("/", 1)[-1].split(".")[0].split("-")[0]
    words = [w.strip("0123456789") for w in stem.replace("_", " ").split()]
    words = [w for w in words if w.isalpha()]
    return words[0].lower() if words else row["label"].split("/", 1)[1]


def stamp(ctx: Ctx, eid: str) -> Entity | None:
    """A corpus picture (tuxpaint stamp) that hops each time its own recording plays."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    rows = ctx.assets.bank.stamp_rows()
    if not rows:
        return None
    row = rows[int(rng.integers(len(rows)))]
    if row["label"].startswith(("engine/", "vehicle/")):
        return vehicle(ctx, eid, stamp_row=row)
    sound = ctx.assets.bank.row_sound(row, rng, augment=0.2, max_s=3.0)
    dur = sound.wave.size / ctx.sample_rate
    image = _stamp_image(str(ctx.assets.bank.dir / row["image"]))
    height = scene.height * rng.uniform(0.25, 0.45)
    look = sprites.stamp(image, height)
    feet_y = shot.floor_y + rng.uniform(0.2, 0.8) * (scene.height * 1.25 - shot.floor_y)
    x_pos = ctx.view_x(rng.uniform(0.2, 0.8))
    plays, t = [], rng.uniform(shot.t0 + 0.1, shot.t0 + 1.5)
    while t < shot.t1 - 0.1 and len(plays) < 3:
        plays.append(t)
        t += max(dur + rng.uniform(0.2, 1.5), 0.8)
    if not plays:
        return None
    hop = np.zeros(ctx.times.size)
    for t0 in plays:  # the picture jumps as its sound starts: the visible cue of the onset
        u = (ctx.times - t0) / 0.3
        hop = np.where((u >= 0) & (u < 1), -height * 0.15 * np.sin(np.pi * u), hop)
    x = np.full(ctx.times.size, x_pos)
    y = feet_y + hop
    ctx.only_in_shot(x, y)
    track = Track(
        x, y, np.zeros(ctx.times.size, int), [look if rng.random() < 0.5 else sprites.flip(look)], z=feet_y
    )
    cues = [Cue(t0, row["label"], sound, 0.8, x=x_pos, on_screen=True) for t0 in plays]
    noun = f"{article(_stamp_noun(row))} {_stamp_noun(row)}"
    verb = _STAMP_VERBS.get(row["label"].split("/", 1)[1], "makes a sound")
    phrase = f"{noun} {verb}" + ("" if len(plays) == 1 else f" {_count(len(plays))}")
    return Entity(eid, "stamp", noun, phrase, track, cues)


# ---------------------------------------------------------------------------------------------------- ambience


def _bed(ctx: Ctx, label: str, texture: str | None, gain: float, on_screen: bool) -> Cue:
    """A continuous sound over the whole shot: a corpus loop or a procedural texture."""
    rng, shot = ctx.rng, ctx.shot
    n = int((shot.t1 - shot.t0) * ctx.sample_rate) + 1
    intensity = rng.uniform(0.2, 0.9)

    def procedural() -> np.ndarray:
        return pa.noise_texture(
            texture, n / ctx.sample_rate, intensity=intensity, sample_rate=ctx.sample_rate, rng=rng
        )

    sound = ctx.assets.bank.get(
        label, rng, procedural=procedural if texture is not None else None, prefer_procedural=0.4, augment=0.2
    )
    if sound.origin == "corpus":
        sound = Sound(
            loop_to(sound.wave, n, ctx.sample_rate, rng),
            sound.origin,
            sound.file,
            sound.augmented,
            sound.license,
        )
    return Cue(shot.t0, label, sound, gain, onset=False, end=shot.t1, on_screen=on_screen)


def fire(ctx: Ctx, eid: str) -> Entity:
    """A campfire on the floor, flickering, crackling for the whole shot."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    size = scene.height * rng.uniform(0.2, 0.35)
    looks = [sprites.flame(size, k, rng) for k in range(6)]
    flicker = np.random.default_rng(int(rng.integers(1 << 31))).integers(0, 6, 4096)
    x = np.full(ctx.times.size, ctx.view_x(rng.uniform(0.2, 0.8)))
    ground = shot.floor_y + rng.uniform(0.2, 0.6) * (scene.height * 1.25 - shot.floor_y)
    y = np.full(ctx.times.size, ground)
    variant = flicker[
        (np.floor(ctx.times * 12).astype(int)) % flicker.size
    ]  # ~12 new flame shapes per second
    ctx.only_in_shot(x, y)
    cue = _bed(ctx, "fire/burning", "fire", rng.uniform(0.3, 0.6), True)
    cue.x = float(x[ctx.mask][0]) if ctx.mask.any() else None
    return Entity(
        eid, "fire", "a campfire", "a campfire crackles", Track(x, y, variant, looks, z=ground), [cue]
    )


def water(ctx: Ctx, eid: str) -> Entity:
    """A stream across the front of the floor: moving water surface, flowing water sound."""
    rng, shot, scene = ctx.rng, ctx.shot, ctx.scene
    top = shot.floor_y + rng.uniform(0.45, 0.7) * (scene.height * 1.25 - shot.floor_y)
    ctx.shot.overlays.append(
        Overlay("water", {"top": float(top), "speed": float(rng.uniform(8, 30) * rng.choice([-1, 1])),
                          "texture": texture_for(ctx.assets, rng, "water"), "seed": int(rng.integers(1 << 31))})
    )  # fmt: skip
    cue = _bed(ctx, "water/flow", "water", rng.uniform(0.25, 0.5), True)
    return Entity(eid, "water", "a stream", "a stream flows", None, [cue])


def rain(ctx: Ctx, eid: str) -> Entity:
    """Rain streaks over the whole picture and the sound of rain."""
    rng = ctx.rng
    heavy = rng.uniform(0.2, 1.0)
    ctx.shot.overlays.append(
        Overlay("rain", {"count": int(60 + 400 * heavy), "slant": float(rng.uniform(-0.3, 0.3)),
                         "speed": float(rng.uniform(1.5, 3.0)), "seed": int(rng.integers(1 << 31))})
    )  # fmt: skip
    cue = _bed(ctx, "weather/rain", "rain", 0.2 + 0.3 * heavy, True)
    return Entity(eid, "rain", "rain", "heavy rain falls" if heavy > 0.6 else "rain falls", None, [cue])


def wind(ctx: Ctx, eid: str) -> Entity:
    """Leaves blown across the picture and the sound of wind."""
    rng = ctx.rng
    strength = rng.uniform(0.3, 1.0)
    ctx.shot.overlays.append(
        Overlay("leaves", {"count": int(8 + 30 * strength), "speed": float(strength * rng.choice([-1, 1])),
                           "seed": int(rng.integers(1 << 31))})
    )  # fmt: skip
    cue = _bed(ctx, "weather/wind", "wind", 0.2 + 0.3 * strength, True)
    return Entity(eid, "wind", "wind", "wind blows leaves around", None, [cue])


OFFSCREEN_LABELS = {
    "ambience/city": "city traffic hums in the distance",
    "ambience/nature": "nature sounds in the background",
    "ambience/night": "night ambience in the background",
    "animal/bird": "birds chirp off-screen",
    "crowd/chatter": "people chatter off-screen",
    "water/waves": "waves wash on a shore off-screen",
    "weather/thunder": "thunder rumbles in the distance",
    "weather/wind": "wind blows off-screen",
    "weather/rain": "rain is heard off-screen",
    "machine/generic": "a machine hums off-screen",
}


def offscreen(ctx: Ctx, eid: str) -> Entity:
    """Ambience whose source is never seen: a corpus bed if the split has one, else distant wind or rain."""
    rng = ctx.rng
    have = [label for label in OFFSCREEN_LABELS if ctx.assets.bank.has(label)]
    label = str(rng.choice(have)) if have else str(rng.choice(["weather/wind", "weather/rain"]))
    texture = {"weather/wind": "wind", "weather/rain": "rain"}.get(label)
    cue = _bed(ctx, label, texture, rng.uniform(0.1, 0.25), False)
    return Entity(eid, "offscreen", label.split("/")[1], OFFSCREEN_LABELS[label], None, [cue])


# ---------------------------------------------------------------------------------------------------- distractors


def distractor(ctx: Ctx, eid: str) -> Entity:
    """Something that moves without making a sound: a drifting cloud, a rising balloon, a gliding bird or
    a turning pinwheel (motion the model must learn not to sonify)."""
    rng, scene = ctx.rng, ctx.scene
    t = ctx.times
    x0v, y0v, wv, hv = ctx.view()
    kind = str(rng.choice(["cloud", "balloon", "bird", "pinwheel"]))
    if kind == "cloud":
        looks = [sprites.cloud(wv * rng.uniform(0.25, 0.45), rng)]
        x = x0v + wv * rng.uniform(0, 1) + rng.uniform(3, 12) * rng.choice([-1, 1]) * t
        y = np.full(t.size, y0v + hv * rng.uniform(0.08, 0.25))
        variant, z = np.zeros(t.size, int), -2.0
    elif kind == "balloon":
        colour = COLOURS[str(rng.choice(["red", "blue", "yellow", "green", "orange"]))]
        looks = [sprites.balloon(scene.height * rng.uniform(0.04, 0.07), colour)]
        x = x0v + wv * rng.uniform(0.1, 0.9) + 4 * np.sin(t * rng.uniform(0.5, 1.5))
        y = y0v + hv * rng.uniform(0.6, 1.0) - rng.uniform(8, 20) * (t - ctx.shot.t0)
        variant, z = np.zeros(t.size, int), 5e5
    elif kind == "bird":
        looks = [sprites.bird(scene.height * rng.uniform(0.08, 0.12), w) for w in (-0.6, 0.0, 0.6, 0.0)]
        direction = rng.choice([-1, 1])
        x = x0v + wv * (0.5 - direction * 0.6) + direction * wv * rng.uniform(0.15, 0.35) * (t - ctx.shot.t0)
        y = y0v + hv * rng.uniform(0.1, 0.35) + 3 * np.sin(t * 2)
        variant, z = np.floor(t * rng.uniform(4, 8)).astype(int) % 4, 4e5
    else:
        colours = [COLOURS[c] for c in rng.choice(list(COLOURS), 4)]
        looks = [
            sprites.pinwheel(scene.height * rng.uniform(0.06, 0.1), k * np.pi / 16, colours) for k in range(8)
        ]
        x = np.full(t.size, x0v + wv * rng.uniform(0.1, 0.9))
        y = np.full(t.size, ctx.shot.floor_y - scene.height * 0.15)
        variant, z = np.floor(t * rng.uniform(6, 16)).astype(int) % 8, -0.5
    x, y = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    ctx.only_in_shot(x, y)
    noun = {"cloud": "a cloud", "balloon": "a balloon", "bird": "a gliding bird", "pinwheel": "a pinwheel"}[
        kind
    ]
    return Entity(eid, "distractor", noun, f"{noun} moves silently", Track(x, y, variant, looks, z=z), [])


SAMPLERS = {
    "faller": faller,
    "breaker": breaker,
    "walker": walker,
    "door": door,
    "vehicle": vehicle,
    "speaker": speaker,
    "stamp": stamp,
    "fire": fire,
    "water": water,
    "rain": rain,
    "wind": wind,
    "offscreen": offscreen,
    "distractor": distractor,
}
EVENT_KINDS = ("faller", "breaker", "walker", "door", "vehicle", "speaker", "stamp")
AMBIENCE_KINDS = ("fire", "water", "rain", "wind")
ALL_KINDS = tuple(SAMPLERS)
