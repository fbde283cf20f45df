"""Read speed of training shards (``v2a.data.shards``): clips per second with the sound decoded.

Makes ``--clips`` clips of 8 s, as ``v2a data ingest`` stores them: one real H.264 video of 8 s at 256 x 144
and 25 fps (its bytes reused for every clip, since readers never decode video) and, per clip, its own 8 s
of mono 24 kHz 16-bit FLAC (band-passed noise plus a tone: less compressible than most real sound, so the
audio decode cost is on the high side). Packs them with ``write_shards`` into shards of ``--shard-size-mb``,
then times, best of ``--repeat`` passes over the train split:

- ``raw_1proc``: one process, no audio decoding (tar reading, grouping, shuffle buffer only);
- ``decoded_1proc``: one process, FLAC decoded to float32 as a training loop gets it;
- ``decoded_dataloader_2w``: a torch DataLoader with 2 workers, decoded.

Shards are read from the page cache (just written): this measures the reader, not the disk. The machine's
load average is recorded, since other jobs on a small machine slow the workers down. Results go to
``benchmarks/results/shard_read_speed.json`` with the machine's description.

Usage: ``python benchmarks/shard_read_speed.py [--clips 400] [--shard-size-mb 8] [--repeat 3]``
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
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.shards import ShardDataset, write_shards
from v2a.io.writer import write_video

RESULTS = Path(__file__).resolve().parent / "results" / "shard_read_speed.json"
CLIP_S, FPS, SR = 8.0, 25, 24_000


def make_clips(folder: Path, count: int) -> Path:
    """Write the clips and their manifest; returns the manifest path."""
    t = np.arange(round(CLIP_S * FPS))
    ys, xs = np.mgrid[0:144, 0:256]
    frames = np.empty((len(t), 144, 256, 3), dtype=np.uint8)
    for i in t:  # a moving gradient with a bouncing box, so the video has realistic motion
        frames[i] = ((xs + ys + 3 * i) % 256)[..., None]
        x = int(200 * (0.5 + 0.5 * np.sin(0.1 * i)))
        frames[i, 40:90, x : x + 50] = (220, 40, 40)
    video = write_video(folder / "clip.mp4", frames, fps=FPS)
    rng = np.random.default_rng(0)
    rows = []
    time_s = np.arange(round(CLIP_S * SR)) / SR
    for k in range(count):
        noise = np.convolve(rng.normal(0, 0.1, time_s.size), np.hanning(16), mode="same") / 8
        wav = (noise + 0.2 * np.sin(2 * np.pi * (200 + k) * time_s)).astype(np.float32)
        audio = folder / f"clip{k:05d}.flac"
        sf.write(audio, wav, SR, subtype="PCM_16")
        copy = folder / f"clip{k:05d}.mp4"
        os.link(video, copy)
        rows.append(ClipRow(id=f"clip{k:05d}", video=str(copy), audio=str(audio), duration_s=CLIP_S, fps=FPS))
    return write_manifest(folder / "manifest.jsonl", rows)


def read_pass(dataset, workers: int | None) -> int:
    source = dataset if workers is None else DataLoader(dataset, batch_size=None, num_workers=workers)
    count = 0
    for sample in source:
        count += 1
        assert sample["audio"] is not None
    return count


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
        "torch": torch.__version__,
        "soundfile_libsndfile": sf.__libsndfile_version__,
        "numpy": np.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),  # other jobs on the machine skew the numbers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400, help="clips of 8 s to pack")
    parser.add_argument("--shard-size-mb", type=float, default=8.0, help="target shard size (10 shards)")
    parser.add_argument("--shuffle-buffer", type=int, default=256, help="reader's shuffle buffer")
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement (best is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        manifest = make_clips(folder, args.clips)
        print(f"made {args.clips} clips in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        index = write_shards(manifest, folder / "shards", shard_size_mb=args.shard_size_mb, progress=False)
        write_s = time.perf_counter() - start
        shards = index["splits"]["train"]
        total_mb = sum(s["bytes"] for s in shards) / 2**20
        print(f"wrote {len(shards)} shards ({total_mb:.1f} MB) in {write_s:.2f} s")

        def dataset(decode: bool) -> ShardDataset:
            return ShardDataset(folder / "shards", shuffle_buffer=args.shuffle_buffer, decode_audio=decode)

        results: dict[str, dict[str, float]] = {
            "write": {"seconds": round(write_s, 3), "clips_per_s": round(args.clips / write_s, 1)}
        }
        for name, fn in [
            ("raw_1proc", lambda: read_pass(dataset(False), None)),
            ("decoded_1proc", lambda: read_pass(dataset(True), None)),
            ("decoded_dataloader_2w", lambda: read_pass(dataset(True), 2)),
        ]:
            seconds, count = best_time(fn, args.repeat)
            assert count == args.clips, f"{name}: {count=} != {args.clips=}"
            results[name] = {
                "seconds": round(seconds, 3),
                "clips_per_s": round(count / seconds, 1),
                "audio_realtime_factor": round(count * CLIP_S / seconds, 1),
                "mb_per_s": round(total_mb / seconds, 1),
            }
            print(f"{name:24s} {count / seconds:8.1f} clips/s  ({total_mb / seconds:.0f} MB/s)")
        report = {
            "clips": args.clips,
            "clip_s": CLIP_S,
            "shards": len(shards),
            "shard_size_mb": args.shard_size_mb,
            "total_mb": round(total_mb, 1),
            "mb_per_clip": round(total_mb / args.clips, 3),
            "shuffle_buffer": args.shuffle_buffer,
            "repeat": args.repeat,
            "results": results,
            "machine": machine(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
