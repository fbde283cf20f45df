"""Decode throughput of ``v2a.io.video`` on a 1080p 30 fps H.264 clip, at 224 px output.

Makes the clip itself (10 s of moving shapes over a moving gradient with grain, x264 veryfast, CRF 23,
B-frames), then times, best of ``--repeat`` runs:

- ``pyav_decode_only``: PyAV decoding every frame with threading and converting none (the ceiling);
- ``every_frame_224``: ``iter_frames`` at the source's 30 fps, every frame scaled to 224 x 224;
- ``generator_8_and_25_224``: ``iter_frames`` at 8 and 25 fps in one pass, as the generator reads video.

Throughput is source frames decoded per second of wall time. Results go to
``benchmarks/results/decode_throughput.json`` with the machine's description.

Usage: ``python benchmarks/decode_throughput.py [--seconds 10] [--repeat 3] [--keep CLIP]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from v2a.io.video import iter_frames, probe

RESULTS = Path(__file__).resolve().parent / "results" / "decode_throughput.json"
WIDTH, HEIGHT, FPS = 1920, 1080, 30


def make_clip(path: Path, seconds: float) -> Path:
    """Encode the benchmark clip frame by frame (never holding the whole clip in memory)."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = ((xs + ys) % 256).astype(np.uint8)
    grain = rng.integers(0, 12, (HEIGHT, WIDTH), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "bf": "3"}
        for i in range(round(seconds * FPS)):
            image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
            shifted = np.roll(base, 4 * i, axis=1) + np.roll(grain, i, axis=0)
            image[..., 0], image[..., 1], image[..., 2] = shifted, shifted[::-1], 255 - shifted
            for k in range(6):  # six boxes bouncing at different speeds
                x = int((WIDTH - 200) * (0.5 + 0.5 * np.sin(0.05 * i * (k + 1) + k)))
                y = int((HEIGHT - 200) * (0.5 + 0.5 * np.cos(0.03 * i * (k + 2) + k)))
                image[y : y + 200, x : x + 200] = (40 * k, 255 - 40 * k, 128)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_only(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def read_all(path: Path, rates: list[float]) -> int:
    return sum(len(chunk.times_s) for chunk in iter_frames(path, rates, size=224, resize="crop"))


def best_time(fn, repeat: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "pyav": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "numpy": np.__version__,
        "load_average_1min": round(os.getloadavg()[0], 2),  # others may share the machine
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    parser.add_argument("--keep", type=Path, default=None, help="write/reuse the clip at this path")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip = args.keep or Path(tmp) / "bench_1080p30.mp4"
        if not clip.exists():
            start = time.perf_counter()
            make_clip(clip, args.seconds)
            print(f"made {clip.name} in {time.perf_counter() - start:.1f} s")
        info = probe(clip)
        frames = info.num_frames
        results: dict[str, dict[str, float]] = {}
        for name, fn in [
            ("pyav_decode_only", lambda: decode_only(clip)),
            ("every_frame_224", lambda: read_all(clip, [float(FPS)])),
            ("generator_8_and_25_224", lambda: read_all(clip, [8.0, 25.0])),
        ]:
            seconds, outputs = best_time(fn, args.repeat)
            results[name] = {
                "seconds": round(seconds, 3),
                "decode_fps": round(frames / seconds, 1),
                "output_frames": outputs,
                "realtime_factor": round(info.duration_s / seconds, 2),
            }
            print(
                f"{name:24s} {frames / seconds:8.1f} source frames/s  ({outputs} outputs in {seconds:.2f} s)"
            )
        report = {
            "clip": {
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
                "frames": frames,
                "codec": info.codec,
                "bytes": clip.stat().st_size,
            },
            "output_size": 224,
            "repeat": args.repeat,
            "results": results,
            "machine": machine(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
