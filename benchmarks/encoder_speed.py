"""Throughput of the conditioning encoders on an 8 s, 25 fps clip: frames/s and sentences/s.

The clip (640 x 360 H.264, 200 frames) pans across scikit-image's sample photographs, so decoding and the
network see natural pictures. The semantic encoder reads it at 8 fps, i.e. 64 frames. Timed:

- ``decode``: ``video_frames`` alone (PyAV decode + scale/crop to 224 x 224), 64 frames.
- ``semantic-onnx`` / ``semantic-torch``: ``encode_frames`` on the 64 decoded frames (batch 16), ONNX
  Runtime vs eager PyTorch on the CPU; ``semantic-cuda`` when a GPU is present.
- ``encode_video-onnx``: the whole inference path, decode + encode, per clip.
- ``sync-motion`` / ``sync-network`` / ``sync-encode_video``: the bundled sync encoder on the same clip at
  25 fps (200 frames): motion extraction (decode + DIS optical flow), the network alone, and the whole path.
- ``text``: ``TextEncoder.encode`` on 64 short prompts (sentences/s), and one prompt alone (latency).

Best and median of ``--repeat`` runs after one warm-up are reported (on a shared machine the best run is
the least disturbed; the load average is recorded). Load times are for warm caches (exported graph and
class-name embeddings already on disk). Results go to ``benchmarks/results/encoder_speed.json``.

Usage: ``python benchmarks/encoder_speed.py [--repeat 5] [--threads N]``
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
from skimage import data

from v2a.encoders.onnx_runtime import onnx_versions
from v2a.encoders.semantic import SemanticEncoder, video_frames
from v2a.encoders.sync import SyncEncoder
from v2a.encoders.text import TextEncoder
from v2a.io.writer import write_video

RESULTS = Path(__file__).resolve().parent / "results" / "encoder_speed.json"
PROMPTS = [
    "a dog barks twice in the yard",
    "rain on a tin roof, distant thunder",
    "footsteps on gravel",
    "a glass shatters on a tiled floor",
    "an engine idling, then revving",
    "birds chirping in the morning",
    "a door creaks open and slams shut",
    "crowd cheering in a stadium",
]


def make_clip(path: Path, seconds: float = 8.0, fps: float = 25.0) -> Path:
    """A 640 x 360 clip panning slowly across four sample photographs, two seconds each."""
    pictures = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    frames = []
    count = round(seconds * fps)
    for i in range(count):
        picture = pictures[min(len(pictures) - 1, i * len(pictures) // count)]
        height, width = picture.shape[:2]
        crop_h, crop_w = int(height * 0.8), int(height * 0.8 * 16 / 9)
        crop_w = min(crop_w, width)
        x = int((width - crop_w) * (i % 50) / 50)
        window = np.ascontiguousarray(picture[:crop_h, x : x + crop_w])
        frames.append(np.asarray(_resize(window, 640, 360)))
    return write_video(path, np.stack(frames), fps=fps)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def time_calls(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn`` over ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def timed_load(make: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = make()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: theirs)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []

    def record(name: str, items: int, unit: str, best: float, median: float, **extra: object) -> None:
        rows.append(
            {
                "method": name,
                "items": items,
                "unit": unit,
                "best_s": best,
                "median_s": median,
                f"{unit}_per_s_best": items / best,
                f"{unit}_per_s_median": items / median,
                **extra,
            }
        )
        print(
            f"{name:>18}: {items} {unit} best {best:6.3f} s ({items / best:7.1f}/s), median {median:6.3f} s"
        )

    text, text_load = timed_load(lambda: TextEncoder(device="cpu"))
    onnx, onnx_load = timed_load(
        lambda: SemanticEncoder(backend="onnx", device="cpu", text_encoder=text, threads=args.threads)
    )
    eager, _ = timed_load(lambda: SemanticEncoder(backend="torch", device="cpu", text_encoder=text))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4")
        chunks = list(video_frames(clip))
        frames = np.concatenate([c.frames for c in chunks])
        n = len(frames)
        record("decode", n, "frames", *time_calls(lambda: list(video_frames(clip)), args.repeat))
        record("semantic-onnx", n, "frames", *time_calls(lambda: onnx.encode_frames(frames), args.repeat))
        record("semantic-torch", n, "frames", *time_calls(lambda: eager.encode_frames(frames), args.repeat))
        record("encode_video-onnx", n, "frames", *time_calls(lambda: onnx.encode_video(clip), args.repeat))
        if torch.cuda.is_available():
            gpu = SemanticEncoder(backend="torch", device="cuda", text_encoder=text)
            record("semantic-cuda", n, "frames", *time_calls(lambda: gpu.encode_frames(frames), args.repeat))
        sync = SyncEncoder.from_checkpoint(device="cpu")
        motion = sync.motion(clip)
        m = len(motion)
        record("sync-motion", m, "frames", *time_calls(lambda: sync.motion(clip), args.repeat))
        record("sync-network", m, "frames", *time_calls(lambda: sync.encode_motion(motion), args.repeat))
        record("sync-encode_video", m, "frames", *time_calls(lambda: sync.encode_video(clip), args.repeat))
        if torch.cuda.is_available():
            sync_gpu = SyncEncoder.from_checkpoint(device="cuda")
            record(
                "sync-network-cuda",
                m,
                "frames",
                *time_calls(lambda: sync_gpu.encode_motion(motion), args.repeat),
            )
    prompts = [f"{p} ({i})" for i in range(8) for p in PROMPTS]  # 64 distinct sentences
    record("text", len(prompts), "sentences", *time_calls(lambda: text.encode(prompts), args.repeat))
    record("text-single", 1, "sentences", *time_calls(lambda: text.encode(PROMPTS[:1]), args.repeat))
    if torch.cuda.is_available():
        text_gpu = TextEncoder(device="cuda")
        record(
            "text-cuda", len(prompts), "sentences", *time_calls(lambda: text_gpu.encode(prompts), args.repeat)
        )
    result = {
        "benchmark": "encoder_speed",
        "clip": {"seconds": 8.0, "fps": 25.0, "size": "640x360", "codec": "h264", "semantic_frames": n},
        "load_s": {"text": text_load, "semantic_onnx_warm_cache": onnx_load},
        "engine": {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), **onnx_versions()},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
