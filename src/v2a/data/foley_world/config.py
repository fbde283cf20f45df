"""Settings of a Foley-world build, and the per-clip random generator that makes clips reproducible.

Splits live in disjoint seed spaces: clip ``i`` of a build with seed ``S`` draws from
``np.random.default_rng([SPLIT_KEYS[split], S, i])``, so no train clip can equal a test clip whatever seeds
and counts are used, and a clip depends only on (split, S, i), never on the number of workers. Test clips
also only use test-split corpus recordings and test-split backdrop photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2a.errors import InputError

SPLIT_KEYS = {"train": 0x7A1, "test": 0x7E5}
FPS_CHOICES = (12.0, 15.0, 20.0, 24.0, 25.0, 30.0, 48.0, 50.0, 60.0)
FPS_WEIGHTS = (0.06, 0.1, 0.06, 0.18, 0.22, 0.2, 0.04, 0.07, 0.07)
MIN_SIZE, MAX_SIZE = 64, 512
MIN_DURATION_S, MAX_DURATION_S = 2.0, 30.0


@dataclass(frozen=True)
class FoleyConfig:
    """How clips are made (everything but the seed and the clip index).

    Attributes:
        size: frame width in pixels; the height follows a random aspect (4:3, 16:9 or 1:1), rounded even.
        duration_s: clip length in seconds.
        fps: frame rate; None draws one per clip from ``FPS_CHOICES`` (12-60, mostly 24/25/30).
        split: train or test: selects the seed space, corpus rows and backdrop photos.
        corpus_dir: SFX corpus folder with ``manifest.jsonl`` (None: procedural sounds only).
        backgrounds_dir: folder made by ``build_backgrounds`` (None: drawn backdrops and flat textures).
        kinds: entity kinds scenes may contain (see ``entities.ALL_KINDS``).
        cuts: allow several shots with hard cuts.
        artefacts: allow video noise, heavy compression and audio hiss on some clips.
        sample_rate: audio rate in Hz.
    """

    size: int = 160
    duration_s: float = 8.0
    fps: float | None = None
    split: str = "train"
    corpus_dir: Path | None = None
    backgrounds_dir: Path | None = None
    kinds: tuple[str, ...] | None = None
    cuts: bool = True
    artefacts: bool = True
    sample_rate: int = 24_000

    def check(self) -> FoleyConfig:
        """Return self if every field is usable; raise InputError naming the first bad one."""
        from v2a.data.foley_world.entities import ALL_KINDS

        if not isinstance(self.size, int) or not MIN_SIZE <= self.size <= MAX_SIZE:
            raise InputError(
                f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {self.size!r}"
            )
        if not _finite(self.duration_s) or not MIN_DURATION_S <= self.duration_s <= MAX_DURATION_S:
            raise InputError(
                f"duration_s must be {MIN_DURATION_S:g}-{MAX_DURATION_S:g} s, got {self.duration_s!r}"
            )
        if self.fps is not None and (not _finite(self.fps) or not 1 <= self.fps <= 120):
            raise InputError(f"fps must be 1-120 (or None for random), got {self.fps!r}")
        if self.split not in SPLIT_KEYS:
            raise InputError(f"split must be one of {sorted(SPLIT_KEYS)}, got {self.split!r}")
        for name, folder in (("corpus_dir", self.corpus_dir), ("backgrounds_dir", self.backgrounds_dir)):
            if folder is not None and not Path(folder).is_dir():
                raise InputError(f"{name} {folder} is not a folder")
        unknown = sorted(set(self.kinds or ()) - set(ALL_KINDS))
        if unknown or (self.kinds is not None and not self.kinds):
            raise InputError(
                f"unknown entity kinds {unknown or '(none given)'}; known: {', '.join(ALL_KINDS)}"
            )
        if self.sample_rate not in (16_000, 22_050, 24_000, 32_000, 44_100, 48_000):
            raise InputError(f"sample_rate {self.sample_rate} is not a supported audio rate")
        return self

    def allows(self, kind: str) -> bool:
        """Whether scenes may contain entities of ``kind``."""
        return self.kinds is None or kind in self.kinds


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def clip_rng(seed: int, index: int, split: str) -> np.random.Generator:
    """The random generator of clip ``index`` of a build with ``seed`` in ``split`` (see module doc)."""
    return np.random.default_rng([SPLIT_KEYS[split], int(seed), int(index)])


def clip_id(seed: int, index: int, split: str) -> str:
    """Stable clip name, e.g. ``fw-train-s0-000042``."""
    return f"fw-{split}-s{seed}-{index:06d}"
