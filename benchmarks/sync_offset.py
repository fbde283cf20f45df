"""AV-offset accuracy of the learned sync estimator vs a weight-free baseline, and sync-encoder throughput.

Offsets: each held-out Foley-world test clip (``data/fw/test``, never trained on) has its aligned target
track (the row's 24 kHz FLAC) delayed by each of 0, ±0.1, ±0.2, ±0.5 and ±1 s (positive: the audio lags
the picture; silence fills the gap, the length stays the video's), and both estimators search ±2 s:

- ``learned``: :func:`v2a.encoders.sync.estimate_offset`'s computation (the motion track is read once
  per clip and reused for the nine shifts; the audio goes through ``audio_frames`` as in the CLI).
- ``envelope``: the weight-free ``v2a.eval.sync.av_lag`` (grid motion-onset strength vs audio
  spectral-flux envelope, normalised cross-correlation).

Reported per shift and overall: the fraction within 0.1 s (the headline; 2.5 frames at 25 fps), within
0.04 s (one frame at 25 fps), mean and median |error|; for the learned estimator also the mean confidence
and the accuracy on the clips whose confidence is >= 0.5 (with that coverage). A missing estimate (the
baseline finds no motion or onset) counts as wrong with an error of 2 s.

Throughput: ``SyncEncoder.encode_video`` on an 8 s, 25 fps, 640 x 360 clip (decode + motion + network),
the network alone on its motion, and a whole ``estimate_offset`` call; best and median of ``--repeat``
runs after a warm-up, with the load average recorded (a shared machine slows every number).

Usage: ``python benchmarks/sync_offset.py [--checkpoint checkpoints/sync] [--clips 50] [--threads N]``
Results: ``benchmarks/results/sync_offset.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from v2a.data.manifest import read_manifest
from v2a.encoders.sync import SyncEncoder, audio_frames, estimate_offset
from v2a.eval.sync import av_lag, video_motion
from v2a.io.audio import load_audio
from v2a.io.writer import write_video

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sync_offset.json"
SHIFTS_S = (-1.0, -0.5, -0.2, -0.1, 0.0, 0.1, 0.2, 0.5, 1.0)
MAX_OFFSET_S = 2.0
SR = 24_000


def delay(wav: np.ndarray, shift_s: float, sr: int) -> np.ndarray:
    """``wav`` delayed by ``shift_s`` (negative: advanced), same length, silence where nothing is left."""
    k = round(shift_s * sr)
    out = np.zeros_like(wav)
    if k >= 0:
        out[k:] = wav[: len(wav) - k]
    else:
        out[:k] = wav[-k:]
    return out


def score(errors: list[float]) -> dict[str, float]:
    err = np.asarray(errors)
    return {
        "acc_100ms": float(np.mean(err <= 0.1 + 1e-6)),
        "acc_40ms": float(np.mean(err <= 0.04 + 1e-6)),
        "mean_abs_error_s": float(err.mean()),
        "median_abs_error_s": float(np.median(err)),
    }


def offsets(encoder: SyncEncoder, manifest: Path, clips: int) -> dict[str, object]:
    rows = [r for r in read_manifest(manifest) if r.audio is not None][:clips]
    errors: dict[str, dict[float, list[float]]] = {"learned": {}, "envelope": {}}
    confidence: dict[float, list[float]] = {}
    for i, row in enumerate(rows):
        motion = encoder.motion(row.video)
        baseline_motion = video_motion(row.video)
        wav = load_audio(row.audio, sr=SR)[0]
        for shift in SHIFTS_S:
            shifted = delay(wav, shift, SR)
            est = encoder.estimate(
                motion,
                audio_frames(shifted, SR, len(motion), config=encoder.config),
                max_offset_s=MAX_OFFSET_S,
            )
            errors["learned"].setdefault(shift, []).append(abs(est.offset_s - shift))
            confidence.setdefault(shift, []).append(est.confidence)
            lag = av_lag(shifted, SR, baseline_motion, max_lag_s=MAX_OFFSET_S).lag_s
            errors["envelope"].setdefault(shift, []).append(
                abs(lag - shift) if np.isfinite(lag) else MAX_OFFSET_S
            )
        print(f"clip {i + 1}/{len(rows)} {row.id}", flush=True)
    out: dict[str, object] = {"clips": len(rows), "shifts_s": list(SHIFTS_S)}
    for method, by_shift in errors.items():
        every = [e for errs in by_shift.values() for e in errs]
        out[method] = {"overall": score(every), "per_shift": {str(s): score(by_shift[s]) for s in SHIFTS_S}}
    conf = np.asarray([c for s in SHIFTS_S for c in confidence[s]])
    err = np.asarray([e for s in SHIFTS_S for e in errors["learned"][s]])
    sure = conf >= 0.5
    out["learned"]["confidence"] = {  # type: ignore[index]
        "mean": float(conf.mean()),
        "coverage_at_0.5": float(sure.mean()),
        "acc_100ms_at_0.5": float(np.mean(err[sure] <= 0.1 + 1e-6)) if sure.any() else None,
        "acc_100ms_below_0.5": float(np.mean(err[~sure] <= 0.1 + 1e-6)) if (~sure).any() else None,
    }
    return out


def make_clip(path: Path, seconds: float = 8.0, fps: float = 25.0) -> Path:
    """A 640 x 360 clip with a bouncing bright disc on a noisy background and a click at each bounce."""
    rng = np.random.default_rng(0)
    count = round(seconds * fps)
    yy, xx = np.mgrid[:360, :640]
    background = rng.integers(40, 90, (360, 640, 3), dtype=np.uint8)
    frames = np.empty((count, 360, 640, 3), np.uint8)
    wav = np.zeros(round(seconds * SR), np.float32)
    for k in range(count):
        t = k / fps
        phase = (t % 1.0) / 1.0
        y = 60 + 240 * (1 - (2 * phase - 1) ** 2)  # lands every second
        x = 40 + 70 * t
        frames[k] = background
        frames[k][(yy - y) ** 2 + (xx - x) ** 2 < 30**2] = (230, 200, 80)
    for bounce in np.arange(1.0, seconds, 1.0):
        i = round(bounce * SR)
        wav[i : i + 600] = 0.5 * rng.standard_normal(600) * np.exp(-np.arange(600) / 120)
    return write_video(path, frames, fps=fps, audio=wav, sample_rate=SR)


def time_calls(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn`` over ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def throughput(encoder: SyncEncoder, repeat: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4")
        motion = encoder.motion(clip)
        frames = len(motion)
        runs = {
            "encode_video (decode + motion + net)": lambda: encoder.encode_video(clip),
            "motion only (decode + flow)": lambda: encoder.motion(clip),
            "network only": lambda: encoder.encode_motion(motion),
            "estimate_offset (whole call)": lambda: estimate_offset(clip, encoder=encoder),
        }
        results = []
        for name, fn in runs.items():
            best, median = time_calls(fn, repeat)
            results.append(
                {
                    "method": name,
                    "frames": frames,
                    "best_s": best,
                    "median_s": median,
                    "frames_per_s_best": frames / best,
                    "frames_per_s_median": frames / median,
                }
            )
            print(f"{name}: {frames / best:.0f} frames/s (best)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="sync checkpoint (default: checkpoints/sync)")
    parser.add_argument("--manifest", default=str(ROOT / "data" / "fw" / "test" / "manifest.jsonl"))
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = SyncEncoder.from_checkpoint(args.checkpoint)
    params = sum(p.numel() for p in encoder.net.parameters())
    report = {
        "benchmark": "sync_offset",
        "checkpoint": str(args.checkpoint or "checkpoints/sync"),
        "model": {"parameters": params, "config": encoder.config.to_dict()},
        "thresholds": {"headline": "|error| <= 0.1 s", "strict": "|error| <= 0.04 s (one 25 fps frame)"},
        "offsets": offsets(encoder, Path(args.manifest), args.clips),
        "throughput": throughput(encoder, args.repeat),
        "machine": {
            "cpu": platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_avg_1m": os.getloadavg()[0],
            "python": platform.python_version(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for method in ("learned", "envelope"):
        overall = report["offsets"][method]["overall"]  # type: ignore[index]
        print(f"{method}: {json.dumps(overall)}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
