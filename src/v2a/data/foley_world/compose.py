"""Compose a whole clip's scene graph from its random generator: format, shots, then what is in each shot."""

from __future__ import annotations

import itertools

import numpy as np

from v2a.data.foley_world.config import FPS_CHOICES, FPS_WEIGHTS, FoleyConfig
from v2a.data.foley_world.entities import AMBIENCE_KINDS, EVENT_KINDS, SAMPLERS, Ctx
from v2a.data.foley_world.scene import (
    Assets,
    Scene,
    Shot,
    camera_path,
    choose_backdrop,
    choose_floor,
    make_world,
)

# Relative frequency of each kind of sound-making entity in a shot.
EVENT_WEIGHTS = {
    "faller": 3.0,
    "breaker": 1.0,
    "walker": 2.0,
    "door": 1.2,
    "vehicle": 1.2,
    "speaker": 1.0,
    "stamp": 2.0,
}
MIN_SHOT_S = 2.5


def sample_scene(rng: np.random.Generator, config: FoleyConfig, assets: Assets) -> Scene:
    """Draw a complete scene graph.

    Args:
        rng: the clip's generator (``config.clip_rng``).
        config: build settings.
        assets: sound bank and picture library of the split.

    Returns:
        The scene, with every entity's tracks and sound cues.
    """
    fps = float(config.fps) if config.fps else float(rng.choice(FPS_CHOICES, p=FPS_WEIGHTS))
    aspect = float(rng.choice([4 / 3, 16 / 9, 1.0], p=[0.5, 0.35, 0.15]))
    width = config.size - config.size % 2
    height = max(2, round(width / aspect / 2) * 2)
    times = np.arange(round(config.duration_s * fps)) / fps
    artefacts = {"noise_sigma": 0.0, "crf": int(rng.integers(22, 29)), "audio_noise_db": None}
    if config.artefacts:
        if rng.random() < 0.2:
            artefacts["noise_sigma"] = float(rng.uniform(2.0, 9.0))
        if rng.random() < 0.2:
            artefacts["crf"] = int(rng.integers(36, 45))
        if rng.random() < 0.25:
            artefacts["audio_noise_db"] = float(rng.uniform(-50.0, -32.0))
    scene = Scene(width, height, fps, config.duration_s, times, [], artefacts)
    bounds = _shot_bounds(rng, config)
    speech_used = False
    for k, (t0, t1) in enumerate(itertools.pairwise(bounds)):
        picture, setting = choose_backdrop(assets, rng)
        floor = choose_floor(rng, setting)
        world, floor_y = make_world(assets, rng, width, height, floor, picture)
        camera, move = camera_path(rng, times, t0, t1, width, height, world.shape)
        room = None
        if setting == "indoor" or rng.random() < 0.15:
            room = {"rt60": float(rng.uniform(0.2, 0.9) if setting == "indoor" else rng.uniform(0.1, 0.3)),
                    "wet": float(rng.uniform(0.08, 0.3))}  # fmt: skip
        ppm = height / rng.uniform(1.5, 3.0)
        shot = Shot(
            k,
            t0,
            t1,
            world,
            floor_y,
            floor,
            setting,
            picture.name if picture else None,
            camera,
            move,
            ppm,
            room=room,
        )
        scene.shots.append(shot)
        ctx = Ctx(rng, scene, shot, assets, config.sample_rate)
        kinds = _shot_kinds(rng, config, assets, setting, allow_speech=not speech_used)
        for j, kind in enumerate(kinds):
            entity = SAMPLERS[kind](ctx, f"s{k}e{j}-{kind}")
            if entity is not None:
                shot.entities.append(entity)
                speech_used |= entity.kind == "speaker"
        if not any(e.cues for e in shot.entities) and config.allows("faller"):
            for attempt in range(4):  # a shot without any sound event teaches little: add a falling object
                entity = SAMPLERS["faller"](ctx, f"s{k}e{len(kinds) + attempt}-faller")
                if entity is not None:
                    shot.entities.append(entity)
                    break
    return scene


def _shot_bounds(rng: np.random.Generator, config: FoleyConfig) -> list[float]:
    """Cut times: usually one shot, sometimes two or three, each at least MIN_SHOT_S long."""
    duration = config.duration_s
    n = 1
    if config.cuts and duration >= 2 * MIN_SHOT_S:
        n = int(rng.choice([1, 2, 3], p=[0.65, 0.25, 0.1]))
        n = min(n, int(duration // MIN_SHOT_S))
    if n == 1:
        return [0.0, duration]
    spare = duration - n * MIN_SHOT_S
    cuts = np.sort(rng.uniform(0, spare, n - 1))
    return [0.0, *[float(c + (i + 1) * MIN_SHOT_S) for i, c in enumerate(cuts)], duration]


def _shot_kinds(
    rng: np.random.Generator, config: FoleyConfig, assets: Assets, setting: str, *, allow_speech: bool
) -> list[str]:
    """Which entities a shot gets: 1-3 sound events, maybe visible ambience, off-screen ambience, distractors."""
    events = [k for k in EVENT_KINDS if config.allows(k)]
    if not allow_speech:
        events = [k for k in events if k != "speaker"]
    if not assets.bank.stamp_rows():
        events = [k for k in events if k != "stamp"]
    kinds: list[str] = []
    if events:
        weights = np.array([EVENT_WEIGHTS[k] for k in events])
        count = int(rng.integers(1, 4))
        picks = list(rng.choice(events, size=count, p=weights / weights.sum()))
        if picks.count("speaker") > 1:
            picks = [k for k in picks if k != "speaker"] + ["speaker"]
        kinds += [str(k) for k in picks]
    ambience = [
        k for k in AMBIENCE_KINDS if config.allows(k) and (setting == "outdoor" or k in ("fire", "water"))
    ]
    if ambience and rng.random() < 0.45:
        kinds.append(str(rng.choice(ambience)))
    if config.allows("offscreen") and rng.random() < 0.35:
        kinds.append("offscreen")
    if config.allows("distractor"):
        kinds += ["distractor"] * int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))
    return kinds
