"""How much of a clip's sound class its picture carries through the semantic encoder's text space.

The generator sees what is visible only through ``SemanticEncoder.text_space`` (ImageNet class posteriors
mapped onto the text encoder's embeddings of the class names, ``v2a.encoders.semantic``). This benchmark
asks how well that visual text-space vector, averaged over a clip, finds the clip's own caption among the
captions of the other clips of a held-out set: mean reciprocal rank, top-1 and top-5 rates against chance,
and each clip's most frequent top-1 ImageNet classes beside its caption. It bounds what a generator can
infer about the sound class from the picture alone, without a prompt.

With ``--head DIR`` (a semantic head, ``v2a train semantic-head``, or a generator release that carries one)
the head's text-space vector (``SemanticHead.text_space``, the generator's second visual token) is scored
the same way on the same frames, with each clip's most frequent top-1 label beside the bridge's classes.

Usage: ``python benchmarks/semantic_retrieval.py [--manifest data/fw/test/manifest.jsonl] [--limit 30]
[--fps 2] [--head DIR]``. Writes ``benchmarks/results/semantic_retrieval.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from v2a.data.manifest import read_manifest
from v2a.encoders.semantic import SemanticEncoder
from v2a.encoders.semantic_head import generator_head, head_from_checkpoint
from v2a.encoders.text import TextEncoder

RESULTS = Path(__file__).resolve().parent / "results" / "semantic_retrieval.json"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def retrieval(visual: list[np.ndarray], caption_vectors: np.ndarray) -> tuple[np.ndarray, dict]:
    """Rank of each clip's own caption by its mean visual vector, and the summary figures."""
    similarity = np.stack(visual) @ caption_vectors.T  # (clips, captions)
    ranks = 1 + (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    n = len(visual)
    return ranks, {
        "mrr": round(float(np.mean(1.0 / ranks)), 3),
        "mrr_chance": round(float(np.mean(1.0 / np.arange(1, n + 1))), 3),
        "top1": round(float(np.mean(ranks == 1)), 3),
        "top5": round(float(np.mean(ranks <= 5)), 3),
        "top5_chance": round(min(5, n) / n, 3),
        "median_rank": float(np.median(ranks)),
    }


def load_head(path: Path):
    """A semantic head from its own checkpoint folder or from a generator release that carries one."""
    return generator_head(path) or head_from_checkpoint(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/fw/test/manifest.jsonl"))
    parser.add_argument("--limit", type=int, default=30, help="first N clips (the eval's 30 by default)")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second encoded")
    parser.add_argument(
        "--head", type=Path, default=None, help="also score this semantic head (or generator)"
    )
    args = parser.parse_args()
    head = load_head(args.head) if args.head else None
    rows = [r for r in read_manifest(args.manifest) if r.caption][: args.limit]
    semantic, text = SemanticEncoder(), TextEncoder()
    captions = [r.caption for r in rows]
    caption_vectors = text.embed(captions)  # L2-normalised already
    visual, seen, head_visual, head_seen = [], [], [], []
    for row in rows:
        features = semantic.encode_video(row.video, fps=args.fps)
        visual.append(_unit(features.text_space.mean(axis=0)))
        top1 = collections.Counter(frame[0][1] for frame in features.top_classes(1))
        seen.append([name for name, _ in top1.most_common(2)])
        if head is not None:
            head_visual.append(_unit(head.text_space(features.features).mean(axis=0)))
            labels = collections.Counter(head.posteriors(features.features).argmax(axis=1).tolist())
            head_seen.append([head.labels[i] for i, _ in labels.most_common(2)])
    ranks, summary = retrieval(visual, caption_vectors)
    n = len(rows)
    report = {
        "clips": n,
        "manifest": str(args.manifest),
        **summary,
        "per_clip": [
            {"caption": c, "rank": int(k), "imagenet_top1": s}
            for c, k, s in zip(captions, ranks, seen, strict=True)
        ],
    }
    lines = [
        f"Visual text space -> own caption among {n} clips of `{args.manifest}`: MRR {report['mrr']} "
        f"(chance {report['mrr_chance']}), top-1 {report['top1']}, top-5 {report['top5']} "
        f"(chance {report['top5_chance']}), median rank {report['median_rank']:g}",
    ]
    if head is not None:
        head_ranks, report["head"] = retrieval(head_visual, caption_vectors)
        report["head"]["path"] = str(args.head)
        for clip, rank, labels in zip(report["per_clip"], head_ranks, head_seen, strict=True):
            clip.update(head_rank=int(rank), head_top1=labels)
        h = report["head"]
        lines.append(
            f"Semantic head `{args.head}`: MRR {h['mrr']}, top-1 {h['top1']}, top-5 {h['top5']}, "
            f"median rank {h['median_rank']:g}"
        )
    lines += [
        "",
        "| caption | rank | most frequent ImageNet top-1 classes |"
        + (" head rank | head labels |" if head else ""),
    ]
    lines.append("| --- | ---: | --- |" + (" ---: | --- |" if head else ""))
    for p in report["per_clip"]:
        row = f"| {p['caption']} | {p['rank']} | {', '.join(p['imagenet_top1'])} |"
        if head is not None:
            row += f" {p['head_rank']} | {', '.join(p['head_top1'])} |"
        lines.append(row)
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table)
    print(f"wrote {RESULTS} and {RESULTS.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
