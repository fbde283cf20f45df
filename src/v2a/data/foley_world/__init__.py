"""Foley world: procedural audio-visual scenes whose visible events trigger real recorded sounds, in sync.

Public API: ``build_foley_world`` (a dataset folder: clips, manifest, data card), ``render_clip`` (one clip
in memory), ``FoleyConfig`` (settings) and ``build_backgrounds`` (the real backdrop photos and textures).
"""

from v2a.data.foley_world.backgrounds import build_backgrounds
from v2a.data.foley_world.build import ClipResult, build_foley_world, render_clip, write_clip
from v2a.data.foley_world.config import FoleyConfig, clip_id
from v2a.data.foley_world.preview import contact_sheet

__all__ = [
    "ClipResult",
    "FoleyConfig",
    "build_backgrounds",
    "build_foley_world",
    "clip_id",
    "contact_sheet",
    "render_clip",
    "write_clip",
]
