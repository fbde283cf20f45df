"""How much of a clip's sound class its picture carries through the semantic encoder's text space.

The generator sees what is visible only through ``SemanticEncoder.text_space`` (ImageNet class posteriors
mapped onto the text encoder's embeddings of the class names, ``v2a.encoders.semantic``). This benchmark
asks how well that visual text-space vector, averaged over a clip, finds the clip's own caption among the
captions of the other clips of a held-out set: mean reciprocal rank, top-1 and top-5 rates against chance,
and each clip's most frequent top-1 ImageNet classes beside its caption. It bounds what a generator can
infer about the sound class from the picture alone, without a prompt.

Usage: ``python benchmarks/semantic_retrieval.py [--manifest data/fw/test/manifest.jsonl] [--limit 30]
[--fps 2]``. Writes ``benchmarks/results/semantic_retrieval.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from v2a.data.manifest import read_manifest
from v2a.encoders.semantic import SemanticEncoder
from v2a.encoders.text import TextEncoder

RESULTS = Path(__file__).resolve().parent / "results" / "semantic_retrieval.json"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/fw/test/manifest.jsonl"))
    parser.add_argument("--limit", type=int, default=30, help="first N clips (the eval's 30 by default)")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second encoded")
    args = parser.parse_args()
    rows = [r for r in read_manifest(args.manifest) if r.caption][: args.limit]
    semantic, text = SemanticEncoder(), TextEncoder()
    captions = [r.caption for r in rows]
    caption_vectors = text.embed(captions)  # L2-normalised already
    visual, seen = [], []
    for row in rows:
        features = semantic.encode_video(row.video, fps=args.fps)
        visual.append(_unit(features.text_space.mean(axis=0)))
        top1 = collections.Counter(frame[0][1] for frame in features.top_classes(1))
        seen.append([name for name, _ in top1.most_common(2)])
    similarity = np.stack(visual) @ caption_vectors.T  # (clips, captions)
    ranks = 1 + (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    n = len(rows)
    report = {
        "clips": n,
        "manifest": str(args.manifest),
        "mrr": round(float(np.mean(1.0 / ranks)), 3),
        "mrr_chance": round(float(np.mean(1.0 / np.arange(1, n + 1))), 3),
        "top1": round(float(np.mean(ranks == 1)), 3),
        "top5": round(float(np.mean(ranks <= 5)), 3),
        "top5_chance": round(min(5, n) / n, 3),
        "median_rank": float(np.median(ranks)),
        "per_clip": [
            {"caption": c, "rank": int(k), "imagenet_top1": s}
            for c, k, s in zip(captions, ranks, seen, strict=True)
        ],
    }
    lines = [
        f"Visual text space -> own caption among {n} clips of `{args.manifest}`: MRR {report['mrr']} "
        f"(chance {report['mrr_chance']}), top-1 {report['top1']}, top-5 {report['top5']} "
        f"(chance {report['top5_chance']}), median rank {report['median_rank']:g}",
        "",
        "| caption | rank | most frequent ImageNet top-1 classes |",
        "| --- | ---: | --- |",
        *(f"| {p['caption']} | {p['rank']} | {', '.join(p['imagenet_top1'])} |" for p in report["per_clip"]),
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table)
    print(f"wrote {RESULTS} and {RESULTS.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
