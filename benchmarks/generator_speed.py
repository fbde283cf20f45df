"""CPU cost of the generator: one forward pass and full sampling of an 8 s clip, and solver error vs steps.

For each preset, torch thread count and dtype (float32, or bfloat16 autocast), and batch (1 and 2 variants
of one 8 s clip: 250 latent frames, 64 semantic tokens, 200 sync frames, a 20-token prompt) it times, in
inference mode:

* ``prepare``: the per-clip condition work (projections, sync resampling, RoPE tables, cached modulations);
* ``forward``: one guided velocity evaluation at the default guidance, i.e. one Euler step (a midpoint step
  is two): its network branches in one batch (``branches``: 2 when the video and text scales are equal, 3
  when a prompt is given and they differ);
* ``sample``: ``generate`` with the shipped sampling defaults (``DEFAULT_SAMPLER`` with ``DEFAULT_STEPS``
  steps, ``DEFAULT_GUIDANCE``).

The tiny preset is measured with and without a prompt; larger ones only with (the costlier case), to keep
the run short. GFLOPs per forward come from ``torch.utils.flop_counter`` (matmuls and attention) and do
not depend on the machine. Best and median of the repeats are reported; on a shared machine the best run
is the least disturbed, and each row records the load average when it was measured. Weights are random
unless ``--checkpoint`` gives a trained generator (the file's ``weights`` says which, per network): speed does
not depend on them.

``--convergence`` adds the solver study: distance of the Euler/Heun/midpoint sample at 1-32 network
evaluations from a 128-step Heun reference (same noise), relative to the reference's spread. With random
weights this measures how curved a random field is, not audio quality; run it with a trained checkpoint.

Rows go to ``benchmarks/results/generator_speed.json``; rows of other (preset, threads, dtype) already in
the file are kept, so runs with different settings add up.

Usage: ``python benchmarks/generator_speed.py [--threads 1 2] [--dtypes float32 bfloat16]
[--presets tiny small] [--checkpoint DIR] [--convergence]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from v2a.model.conditions import Conditions, TextFeatures
from v2a.model.config import PRESETS, ModelConfig, model_config
from v2a.model.dit import DEFAULT_GUIDANCE, DEFAULT_SAMPLER, DEFAULT_STEPS, AudioDiT, load_generator
from v2a.model.flow import EVALS_PER_STEP, FlowMatching, make_noise, seed_generators

RESULTS = Path(__file__).resolve().parent / "results" / "generator_speed.json"
DURATION = 8.0
PROMPT_TOKENS = 20


def time_calls(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn`` over ``repeat`` calls (the caller warms up)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def clip_conditions(cfg: ModelConfig, *, prompt: bool, seed: int = 0) -> Conditions:
    """Random encoder features of one 8 s clip."""
    g = torch.Generator().manual_seed(seed)
    seq = cfg.sequence(DURATION)
    text = None
    if prompt:
        text = TextFeatures(
            torch.randn(1, PROMPT_TOKENS, cfg.text_dim, generator=g),
            torch.ones(1, PROMPT_TOKENS, dtype=torch.bool),
            torch.randn(1, cfg.text_dim, generator=g),
        )
    return Conditions(
        semantic=torch.randn(1, seq.semantic_frames, cfg.semantic_dim, generator=g),
        sync=torch.randn(1, seq.sync_frames, cfg.sync_dim, generator=g),
        text=text,
    )


def randomize_zero_weights(net: AudioDiT) -> None:
    """Random values for the adaLN-Zero weights, so an untrained net's field is not trivially zero."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def gflops(fn: Callable[[], object]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def speed_rows(net: AudioDiT, preset: str, *, threads: int, dtype: str, repeat: int) -> list[dict]:
    cfg = net.cfg
    T = cfg.sequence(DURATION).latent_frames
    torch.set_num_threads(threads)
    bf16 = dtype == "bfloat16"
    rows = []
    for batch in (1, 2):
        for prompt in (True, False) if preset == "tiny" else (True,):
            cond = clip_conditions(cfg, prompt=prompt)
            kw = {"guidance_scale": DEFAULT_GUIDANCE, "text_guidance_scale": DEFAULT_GUIDANCE}
            fn = net.guided_velocity(cond, num_frames=T, num_samples=batch, **kw)
            x = make_noise((cfg.latent_dim, T), seed_generators(range(batch)))
            t = torch.full((batch,), 0.5)

            def prepare(cond=cond, batch=batch, kw=kw):
                return net.guided_velocity(cond, num_frames=T, num_samples=batch, **kw)

            def forward(fn=fn, x=x, t=t):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    return fn(t, x)

            def sample(cond=cond, batch=batch, kw=kw):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    return net.generate(
                        cond,
                        num_frames=T,
                        num_samples=batch,
                        num_inference_steps=DEFAULT_STEPS,
                        method=DEFAULT_SAMPLER,
                        **kw,
                    )

            flops = gflops(forward)
            forward()  # warm-up of the kernels for all three timings
            for what, call, n in (
                ("prepare", prepare, repeat),
                ("forward", forward, repeat),
                ("sample", sample, 1 + repeat // 3),
            ):
                best, median = time_calls(call, n)
                rows.append(
                    {
                        "preset": preset,
                        "threads": threads,
                        "dtype": dtype,
                        "batch": batch,
                        "prompt": prompt,
                        "branches": len(fn.weights),
                        "what": what,
                        "steps": DEFAULT_STEPS if what == "sample" else None,
                        "sampler": DEFAULT_SAMPLER if what == "sample" else None,
                        "gflops_per_forward": round(flops, 2),
                        "best_s": round(best, 4),
                        "median_s": round(median, 4),
                        "repeats": n,
                        "load_average_1m": round(os.getloadavg()[0], 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def convergence_rows(net: AudioDiT, preset: str) -> list[dict]:
    """Solver error vs network evaluations, against a fine Heun reference, for one clip with a prompt."""
    cfg = net.cfg
    T = cfg.sequence(DURATION).latent_frames
    fn = net.guided_velocity(
        clip_conditions(cfg, prompt=True), num_frames=T, guidance_scale=3.0, text_guidance_scale=5.0
    )
    x0 = make_noise((cfg.latent_dim, T), seed_generators([0]))
    reference = FlowMatching.sample(fn, x0, steps=128, method="heun")
    scale = float(reference.std())
    rows = []
    for method in ("euler", "heun", "midpoint"):
        for nfe in (1, 2, 4, 8, 16, 32):
            steps = nfe // EVALS_PER_STEP[method]
            if steps < 1:
                continue
            out = FlowMatching.sample(fn, x0, steps=steps, method=method)
            err = float((out - reference).square().mean().sqrt()) / scale
            rows.append(
                {"preset": preset, "method": method, "nfe": nfe, "steps": steps, "relative_rmse": err}
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument(
        "--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"]
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed calls of prepare and forward (tiny)")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--checkpoint", type=Path, help="trained generator (replaces --presets)")
    parser.add_argument("--convergence", action="store_true", help="also measure solver error vs steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    nets: list[tuple[str, AudioDiT]] = []
    if args.checkpoint:
        nets.append((str(args.checkpoint), load_generator(args.checkpoint)))
    else:
        for preset in args.presets:
            net = AudioDiT(model_config(preset)).eval()
            randomize_zero_weights(net)
            nets.append((preset, net))
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    measured = {(name, th, dt) for name, _ in nets for th in args.threads for dt in args.dtypes}
    speed = [r for r in old.get("speed", []) if (r["preset"], r["threads"], r["dtype"]) not in measured]
    convergence = [r for r in old.get("convergence", []) if r["preset"] not in {n for n, _ in nets}]
    with torch.inference_mode():
        for name, net in nets:
            print(f"{name}: {net.num_parameters() / 1e6:.2f} M parameters", flush=True)
            repeat = args.repeat if net.num_parameters() < 20e6 else max(1, args.repeat // 3)
            for threads in args.threads:
                for dtype in args.dtypes:
                    speed += speed_rows(net, name, threads=threads, dtype=dtype, repeat=repeat)
            if args.convergence:
                torch.set_num_threads(max(args.threads))
                convergence += convergence_rows(net, name)
    params = {**old.get("params", {}), **{name: net.num_parameters() for name, net in nets}}
    report = {
        "benchmark": "generator_speed",
        "clip_s": DURATION,
        "latent_frames": model_config("tiny").sequence(DURATION).latent_frames,
        "prompt_tokens": PROMPT_TOKENS,
        "params": params,
        "weights": {name: "random" if name in PRESETS else "checkpoint" for name in params},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
        },
        "speed": speed,
        "convergence": convergence,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
