"""Quality against sampling steps and ODE solver: how few network evaluations the generator needs.

For each ``SAMPLER:STEPS`` configuration, the generator (bundled by default) writes 2 variants for each of
the first clips of the held-out Foley-world test split, without a prompt (seed 0, guidance 5, the
defaults of ``v2a generate`` but for the solver), and the suite scores every configuration on the same
clips: onset accuracy and AP, AV offset, FAD, sound class and diversity, with the network evaluations
(NFE) per variant and the median seconds per clip end to end (decode, encode, sample, vocode, watermark).
Heun and midpoint take 2 evaluations per step, so ``heun:4`` costs what ``euler:8`` costs.

Usage: ``python benchmarks/steps_quality.py [--configs euler:2,euler:4,euler:8,euler:16,heun:4,midpoint:4]
[--limit 30] [--checkpoint PATH] [--out runs/steps] [--name steps_quality]``. Writes
``benchmarks/results/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from eval_common import score_systems, write_results
from v2a.data.manifest import read_manifest
from v2a.eval.scorer import EvalOptions
from v2a.io.audio import save_audio
from v2a.model.dit import default_guidance
from v2a.model.flow import EVALS_PER_STEP, SAMPLERS
from v2a.pipeline import FoleyPipeline

DEFAULT_CONFIGS = "euler:2,euler:4,euler:8,euler:16,heun:4,midpoint:4"


def parse_configs(text: str) -> list[tuple[str, int]]:
    """``"euler:4,heun:4"`` -> [("euler", 4), ("heun", 4)]; raises SystemExit with a clear message."""
    configs = []
    for item in text.split(","):
        sampler, _, steps = item.strip().partition(":")
        if sampler not in SAMPLERS or not steps.isdigit() or int(steps) < 1:
            raise SystemExit(f"bad configuration {item!r}: expected SAMPLER:STEPS with SAMPLER in {SAMPLERS}")
        configs.append((sampler, int(steps)))
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/fw/test/manifest.jsonl"))
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated SAMPLER:STEPS")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--checkpoint", default=None, help="generator checkpoint (default: the bundled one)")
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument(
        "--cfg",
        type=float,
        default=default_guidance(False),
        help="guidance (default: the shipped one, no prompt)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/steps"))
    parser.add_argument("--name", default="steps_quality", help="results file name")
    args = parser.parse_args()
    configs = parse_configs(args.configs)
    torch.set_num_threads(args.threads)
    rows = read_manifest(args.manifest)[: args.limit]
    pipe = FoleyPipeline.from_pretrained(args.checkpoint, device="cpu")
    systems: dict[str, Path | None] = {}
    speed: dict[str, dict[str, float]] = {}
    for sampler, steps in configs:
        name = f"{sampler} {steps} steps"
        folder = args.out / f"{sampler}-{steps}"
        folder.mkdir(parents=True, exist_ok=True)
        seconds = []
        for i, row in enumerate(rows):
            start = time.perf_counter()
            res = pipe(
                row.video,
                num_waveforms_per_prompt=args.variants,
                seed=0,
                num_inference_steps=steps,
                guidance_scale=args.cfg,
                method=sampler,
                progress=False,
            )
            if i > 0:  # the first call warms caches up
                seconds.append(time.perf_counter() - start)
            for wav, seed in zip(res.waveforms, res.seeds, strict=True):
                save_audio(folder / f"{Path(row.video).stem}.{seed}.wav", wav, pipe.sample_rate)
        speed[name] = {
            "nfe": steps * EVALS_PER_STEP[sampler],
            "seconds_per_clip": round(statistics.median(seconds), 3) if seconds else float("nan"),
        }
        print(f"{name}: {speed[name]}", flush=True)
        systems[name] = folder
    summaries, notes, seconds, _ = score_systems(args.manifest, systems, EvalOptions(limit=args.limit))
    for name, summary in summaries.items():
        summary.update(speed[name])
    title = (
        f"Quality against sampling steps: `{args.manifest}` ({len(rows)} clips), "
        f"{args.checkpoint or 'the bundled generator'}, no prompt, {args.variants} variants, guidance {args.cfg}, "
        f"{args.threads} threads"
    )
    keys = (
        "nfe",
        "seconds_per_clip",
        "onset_acc",
        "onset_ap",
        "av_offset_s",
        "fad",
        "class_acc_coarse",
        "diversity",
    )
    json_path, md_path = write_results(
        args.name, summaries, notes, {"title": title, "configs": args.configs, "eval_seconds": seconds}, keys
    )
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
