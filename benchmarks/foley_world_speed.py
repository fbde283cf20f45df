"""Foley-world build speed: clips per minute with a process pool, size on disk per clip, time per stage.

Builds ``--count`` clips (8 s, 160 px wide, random fps 12-60 by default) with ``--workers`` processes into a
temporary folder, exactly as ``build_foley_world`` does for a dataset, and reports clips per minute of wall
time (target: >= 60 on the 2-core reference machine) and MB per clip (mp4 + flac). A single-process profile
of a few clips splits the time into scene sampling, frame rendering, audio mixing and encoding.
Real backdrops and the SFX corpus are used when present (``data/backgrounds``, ``data/sfx``).

Results go to ``benchmarks/results/foley_world_speed.json`` with the machine's description.

Usage: ``python benchmarks/foley_world_speed.py [--count 40] [--workers 2] [--size 160] [--duration 8]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from v2a.data.foley_world import FoleyConfig, build_foley_world
from v2a.data.foley_world.build import _assets, write_clip
from v2a.data.foley_world.compose import sample_scene
from v2a.data.foley_world.config import clip_rng
from v2a.data.foley_world.render import render_frames
from v2a.data.foley_world.soundscape import mix_scene

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "foley_world_speed.json"


def profile(config: FoleyConfig, clips: int, out_dir: Path) -> dict:
    """Mean seconds per clip of each stage, in this process."""
    stages = {"scene": 0.0, "frames": 0.0, "audio": 0.0, "encode": 0.0}
    from v2a.data.foley_world import render_clip

    for index in range(clips):
        rng = clip_rng(10_000, index, config.split)
        t0 = time.perf_counter()
        scene = sample_scene(rng, config, _assets(config))
        t1 = time.perf_counter()
        render_frames(scene)
        t2 = time.perf_counter()
        mix_scene(scene, config.sample_rate, rng)
        t3 = time.perf_counter()
        result = render_clip(10_000, index, config)
        t4 = time.perf_counter()
        write_clip(result, out_dir)
        t5 = time.perf_counter()
        stages["scene"] += t1 - t0
        stages["frames"] += t2 - t1
        stages["audio"] += t3 - t2
        stages["encode"] += t5 - t4
    return {k: round(v / clips, 4) for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--profile-clips", type=int, default=4)
    args = parser.parse_args()
    backgrounds = ROOT / "data" / "backgrounds"
    corpus = ROOT / "data" / "sfx"
    config = FoleyConfig(
        size=args.size,
        duration_s=args.duration,
        backgrounds_dir=backgrounds if (backgrounds / "backgrounds.jsonl").is_file() else None,
        corpus_dir=corpus if (corpus / "manifest.jsonl").is_file() else None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fw"
        started = time.perf_counter()
        manifest = build_foley_world(
            out, count=args.count, seed=10_000, workers=args.workers, progress=False, config=config
        )
        elapsed = time.perf_counter() - started
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        mp4 = [(out / r["video"]).stat().st_size for r in rows]
        flac = [(out / r["audio"]).stat().st_size for r in rows]
        fps = [r["fps"] for r in rows]
        (Path(tmp) / "p" / "clips").mkdir(parents=True)
        stages = profile(config, args.profile_clips, Path(tmp) / "p")
    result = {
        "benchmark": "foley_world_speed",
        "clips": args.count,
        "workers": args.workers,
        "size_px": args.size,
        "duration_s": args.duration,
        "mean_fps": round(float(np.mean(fps)), 2),
        "real_backgrounds": config.backgrounds_dir is not None,
        "corpus": config.corpus_dir is not None,
        "wall_s": round(elapsed, 2),
        "clips_per_min": round(args.count / elapsed * 60, 1),
        "mb_per_clip": round((sum(mp4) + sum(flac)) / len(rows) / 1e6, 3),
        "mp4_mb_per_clip": round(sum(mp4) / len(rows) / 1e6, 3),
        "flac_mb_per_clip": round(sum(flac) / len(rows) / 1e6, 3),
        "seconds_per_clip_single_process": stages,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
