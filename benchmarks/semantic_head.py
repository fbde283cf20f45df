"""What the picture says about the sound: the learned semantic head against the ImageNet bridge, per frame.

Every frame (8 fps) of a held-out shard split that has a sound source on screen is scored twice: the
semantic head's top label, and the bridge's (the label whose phrase is nearest to the frame's ImageNet
text-space vector). A frame counts when that label is among the labels on screen in its shot (``acc``), or
its category is (``acc_coarse``); see ``v2a.train.semantic_head_trainer``. Per-label rows show where each
wins. Foley world's animals are real photographs (tuxpaint stamps) that follow their recordings' split, so
their test pictures were never seen in training; the other sources are procedural sprites drawn in both
splits, where the head may partly remember what it saw. The ``unseen pictures`` row separates the two.

Usage: ``python benchmarks/semantic_head.py [--head DIR] [--data shards/fw-test200] [--split test]``
(build the shards with ``v2a data shard data/fw/test200/manifest.jsonl --out shards/fw-test200`` and
``v2a data features shards/fw-test200 --encoders semantic``). ``--head`` defaults to the bundled generator's
head. Writes ``benchmarks/results/semantic_head.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from v2a.encoders.semantic_head import generator_head, head_from_checkpoint
from v2a.eval.classifier import category
from v2a.pipeline import default_generator_path
from v2a.train.semantic_head_trainer import (
    bridge_top,
    frame_scores,
    head_top,
    load_frames,
    per_label_accuracy,
)

RESULTS = Path(__file__).resolve().parent / "results" / "semantic_head.json"
UNSEEN_CATEGORIES = ("animal",)  # Foley world's stamp photographs: split with their recordings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--head", type=Path, help="semantic-head checkpoint (default: the bundled generator's)"
    )
    parser.add_argument("--data", type=Path, default=Path("shards/fw-test200"), help="held-out shards")
    parser.add_argument("--split", default="test", help="their split")
    args = parser.parse_args()
    head = head_from_checkpoint(args.head) if args.head else generator_head(default_generator_path())
    if head is None:
        sys.exit("the bundled generator has no semantic head; pass --head DIR")
    frames = load_frames(args.data, args.split)
    tops = {"head": head_top(head, frames), "bridge": bridge_top(head, frames)}
    unseen = np.array([all(category(x) in UNSEEN_CATEGORIES for x in t) for t in frames.targets])
    report: dict = {"checkpoint": str(args.head or "bundled"), "data": f"{args.data} ({args.split})"}
    report["frames"], report["unseen_frames"] = len(frames), int(unseen.sum())
    for name, top in tops.items():
        top = np.array(top, dtype=object)
        targets = np.array(frames.targets, dtype=object)
        report[name] = {
            "all": frame_scores(list(top), list(targets)),
            "unseen_pictures": frame_scores(list(top[unseen]), list(targets[unseen])),
            "seen_kinds": frame_scores(list(top[~unseen]), list(targets[~unseen])),
            "per_label": per_label_accuracy(list(top), list(targets)),
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    md = _markdown(report)
    RESULTS.with_suffix(".md").write_text(md)
    print(md)


def _markdown(report: dict) -> str:
    lines = [
        f"Semantic head `{report['checkpoint']}` against the ImageNet bridge on {report['data']}: "
        f"{report['frames']} frames with a source on screen ({report['unseen_frames']} showing only pictures "
        "never seen in training). A frame counts when the top label is on screen in its shot (coarse: its "
        "category).",
        "",
        "| frames | head acc | head coarse | bridge acc | bridge coarse |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, name in (("all", "all"), ("unseen_pictures", "unseen pictures (animals)"),
                      ("seen_kinds", "procedural sprites")):  # fmt: skip
        h, b = report["head"][key], report["bridge"][key]
        lines.append(
            f"| {name} | {h['acc']:.3f} | {h['acc_coarse']:.3f} | {b['acc']:.3f} | {b['acc_coarse']:.3f} |"
        )
    lines += ["", "| label | head | bridge |", "| --- | ---: | ---: |"]
    for label, acc in report["head"]["per_label"].items():
        lines.append(
            f"| {label} | {acc:.2f} | {report['bridge']['per_label'].get(label, float('nan')):.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
