"""CPU speed of the vocoder: real-time factor (seconds of audio made per second of wall time).

Times ``Vocoder.decode`` (eager PyTorch, float32, inference mode) on log-mels of 1 s and 10 s clips, for
each preset, with ``--threads`` torch threads (2 by default: the laptop target is >= 100x real time on 2
cores for the default preset). Weights are random: speed does not depend on their values. Griffin-Lim
(32 iterations), the fallback the vocoder replaces, is timed on the same input for comparison.

Best and median of ``--repeat`` runs after three warm-up runs are reported: on a shared machine the
best run is the one least disturbed by other processes (the load average is recorded too). Results go to
``benchmarks/results/vocoder_speed.json`` with the machine's description.

Usage: ``python benchmarks/vocoder_speed.py [--threads 2] [--repeat 15] [--presets tiny base]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from v2a.audio.griffinlim import griffin_lim
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC
from v2a.audio.vocoder import Vocoder, vocoder_config

RESULTS = Path(__file__).resolve().parent / "results" / "vocoder_speed.json"


def time_calls(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn`` over ``repeat`` calls after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = DEFAULT_SPEC
    rows = []
    for seconds in (1.0, 10.0):
        wav = 0.1 * torch.randn(spec.num_samples(seconds))
        mel = log_mel(wav, spec)  # (n_mels, T)
        audio_s = (mel.shape[-1] - 1) * spec.hop_length / spec.sample_rate
        methods: list[tuple[str, int, Callable[[], object], int]] = []
        for preset in args.presets:
            model = Vocoder(vocoder_config(preset, spec)).eval()
            params = sum(p.numel() for p in model.parameters())
            methods.append((f"vocoder-{preset}", params, functools.partial(model.decode, mel), args.repeat))
        gl = functools.partial(griffin_lim, mel, spec, n_iter=32)
        methods.append(("griffin-lim-32", 0, gl, max(3, args.repeat // 5)))
        for name, params, fn, repeat in methods:
            best, median = time_calls(fn, repeat)
            rows.append(
                {
                    "method": name,
                    "params": params,
                    "clip_s": seconds,
                    "best_s": best,
                    "median_s": median,
                    "realtime_factor_best": audio_s / best,
                    "realtime_factor_median": audio_s / median,
                }
            )
    for row in rows:
        print(
            f"{row['method']:>16} {row['clip_s']:>4.0f} s clip: best {row['best_s'] * 1e3:7.1f} ms "
            f"({row['realtime_factor_best']:6.1f}x real time), median {row['median_s'] * 1e3:7.1f} ms "
            f"({row['realtime_factor_median']:6.1f}x)"
        )
    result = {
        "benchmark": "vocoder_speed",
        "spec": spec.name,
        "threads": args.threads,
        "engine": f"torch {torch.__version__} eager, float32, inference_mode",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
