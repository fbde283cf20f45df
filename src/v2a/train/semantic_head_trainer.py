"""Train the semantic head: shard frames against the sound labels on screen in their shot.

Every frame of a shard clip (8 fps, its pooled EfficientNet-Lite0 features cached by ``v2a data features``)
gets as target the labels of the clip's events that are on screen in the frame's shot (the manifest's
``shots`` and ``events[].on_screen``, which Foley world writes; clips without on-screen facts, such as
labelled footage from ``v2a data ingest``, give every frame their ``labels``); frames of shots with no visible
sound source are left out. The loss is cross-entropy against the uniform
distribution over those labels, so a shot with a door and a ball teaches both. Labels are weighted by the
inverse square root of their frequency, so footsteps (a third of Foley world's events) do not drown the rest.

A frame counts as right when the head's top label is one of its targets (``acc``), or when its category is
(``acc_coarse``). The ImageNet bridge scored the same way (the label phrase nearest to its text-space vector)
is the baseline written beside it. The run folder holds ``metrics.json`` (the final scores),
``metrics.jsonl`` and ``metrics.png`` (per epoch) and ``release/``
(loadable by :func:`v2a.encoders.semantic_head.head_from_checkpoint`, or given to ``v2a train generator
--semantic-head``). A run takes seconds to minutes on a CPU; it is not resumable and needs none.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from v2a.data.shards import ShardDataset
from v2a.encoders.cache import read_semantic
from v2a.encoders.semantic_head import KIND, SemanticHead
from v2a.encoders.text import TextEncoder
from v2a.errors import InputError
from v2a.eval.classifier import category
from v2a.io.atomic import atomic_output
from v2a.model.checkpoint import save_checkpoint
from v2a.train.loop import MetricsLog, check_settings, plot_metrics

log = logging.getLogger(__name__)

RELEASE = "release"


@dataclass(frozen=True)
class SemanticHeadTrainConfig:
    """Everything a semantic-head run needs; each field maps to a ``v2a train semantic-head`` flag.

    Attributes:
        run_dir: output folder (an existing release there is replaced).
        data: shard folder with cached ``semantic`` features and manifest rows with shots and events.
        train_split: shard split to train on.
        val_data: shard folder of held-out clips scored after every epoch (None: no validation).
        val_split: its split.
        hidden: hidden width of the MLP.
        dropout: dropout rate before the output layer.
        input_dropout: dropout rate of the input features (see ``SemanticHead``).
        top_k: labels mixed into the text-space vector.
        epochs: passes over the training frames.
        batch_size: frames per step.
        lr: AdamW peak learning rate (cosine decay to zero).
        weight_decay: AdamW weight decay.
        seed: seeds initialisation and shuffling.
    """

    run_dir: str
    data: str
    train_split: str = "train"
    val_data: str | None = None
    val_split: str = "train"
    hidden: int = 256
    dropout: float = 0.3
    input_dropout: float = 0.8
    top_k: int = 3
    epochs: int = 30
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LabelledFrames:
    """Frames with the labels on screen in their shot.

    Attributes:
        features: (N, 1280) float32 pooled image features.
        text_space: (N, 384) float32 the ImageNet bridge's vectors of the same frames.
        targets: per frame, its labels (non-empty, sorted).
        clips: (N,) index of each frame's clip.
    """

    features: np.ndarray
    text_space: np.ndarray
    targets: list[tuple[str, ...]]
    clips: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def on_screen_labels(meta: dict, times_s: np.ndarray) -> list[tuple[str, ...]]:
    """Per frame time, the sorted labels of the events on screen in that frame's shot (empty when none).

    Shots come from ``meta["shots"]`` (``t0``/``t1``; one shot spanning the clip when absent) and events
    from ``meta["events"]`` (``shot`` index, ``on_screen`` flag, ``label``). A clip whose events say nothing
    about the screen (footage from ``v2a data ingest``, labelled VGGSound-style) gives every frame its
    ``labels``: such datasets keep clips whose labelled source is visible.
    """
    if not any("on_screen" in event for event in meta.get("events", [])):
        return [tuple(sorted(set(meta.get("labels") or ())))] * len(times_s)
    shots = meta.get("shots") or [{"t0": 0.0, "t1": math.inf}]
    per_shot: list[set[str]] = [set() for _ in shots]
    for event in meta.get("events", []):
        shot = int(event.get("shot", 0))
        if event.get("on_screen") and event.get("label") and 0 <= shot < len(shots):
            per_shot[shot].add(str(event["label"]))
    starts = np.array([float(s["t0"]) for s in shots])
    index = np.clip(np.searchsorted(starts, np.asarray(times_s) + 1e-6, side="right") - 1, 0, len(shots) - 1)
    return [tuple(sorted(per_shot[i])) for i in index]


def load_frames(shard_dir: str | Path, split: str) -> LabelledFrames:
    """Every frame of a shard split that has a sound source on screen, with its labels.

    Raises:
        InputError: the split has no such frame.
    """
    dataset = ShardDataset(shard_dir, split, features=("semantic",), shuffle_buffer=0, decode_audio=False)
    features, text_space, targets, clips = [], [], [], []
    for i, sample in enumerate(dataset):
        semantic = read_semantic(sample["features"]["semantic"])
        labels = on_screen_labels(sample["meta"], semantic.times_s)
        keep = [j for j, frame_labels in enumerate(labels) if frame_labels]
        features.append(semantic.features[keep])
        text_space.append(semantic.text_space[keep])
        targets.extend(labels[j] for j in keep)
        clips.append(np.full(len(keep), i))
    if not targets:
        raise InputError(f"{shard_dir} ({split}) has no frame with a labelled sound source on screen")
    return LabelledFrames(
        np.concatenate(features).astype(np.float32), np.concatenate(text_space).astype(np.float32),
        targets, np.concatenate(clips),
    )  # fmt: skip


def frame_scores(top: Sequence[str], targets: Sequence[tuple[str, ...]]) -> dict[str, float]:
    """``acc`` (top label among the frame's labels) and ``acc_coarse`` (its category among theirs)."""
    fine = [t in labels for t, labels in zip(top, targets, strict=True)]
    coarse = [category(t) in {category(x) for x in labels} for t, labels in zip(top, targets, strict=True)]
    return {"acc": float(np.mean(fine)), "acc_coarse": float(np.mean(coarse))}


def per_label_accuracy(top: Sequence[str], targets: Sequence[tuple[str, ...]]) -> dict[str, float]:
    """Per label, ``acc`` over the frames that have it on screen."""
    hits: dict[str, list[bool]] = {}
    for t, labels in zip(top, targets, strict=True):
        for x in labels:
            hits.setdefault(x, []).append(t in labels)
    return {x: float(np.mean(v)) for x, v in sorted(hits.items())}


def head_top(head: SemanticHead, frames: LabelledFrames) -> list[str]:
    """The head's top label per frame."""
    return [head.labels[i] for i in np.argmax(head.posteriors(frames.features), axis=1)]


def bridge_top(head: SemanticHead, frames: LabelledFrames) -> list[str]:
    """The ImageNet bridge's label per frame: the one whose phrase is nearest to the frame's bridge vector."""
    sims = frames.text_space @ head.label_embeddings.cpu().numpy().T
    return [head.labels[i] for i in np.argmax(sims, axis=1)]


def score_head(head: SemanticHead, frames: LabelledFrames) -> dict[str, float]:
    """Frame scores of the head's top label."""
    return frame_scores(head_top(head, frames), frames.targets)


def soft_targets(frames: LabelledFrames, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) uniform target distributions over each frame's labels, and (N,) frame weights.

    A frame's weight is the mean over its labels of ``1 / sqrt(frequency)``, normalised to mean 1.
    """
    index = {x: i for i, x in enumerate(labels)}
    target = np.zeros((len(frames), len(labels)), dtype=np.float32)
    counts = Counter(x for frame_labels in frames.targets for x in frame_labels)
    weight = np.empty(len(frames), dtype=np.float64)
    for n, frame_labels in enumerate(frames.targets):
        known = [x for x in frame_labels if x in index]
        target[n, [index[x] for x in known]] = 1.0 / max(1, len(known))
        weight[n] = np.mean([counts[x] ** -0.5 for x in known]) if known else 0.0
    return target, (weight / max(weight.mean(), 1e-12)).astype(np.float32)


def fit_head(
    train: LabelledFrames,
    cfg: SemanticHeadTrainConfig,
    *,
    text_encoder: TextEncoder | None = None,
    val: LabelledFrames | None = None,
) -> tuple[SemanticHead, list[dict[str, float]]]:
    """Train a head on labelled frames; returns it (eval mode) and one metrics record per epoch."""
    torch.manual_seed(cfg.seed)
    labels = sorted({x for frame_labels in train.targets for x in frame_labels})
    head = SemanticHead(
        labels, hidden=cfg.hidden, dropout=cfg.dropout, input_dropout=cfg.input_dropout, top_k=cfg.top_k
    )
    head.embed_labels(text_encoder)
    x = torch.from_numpy(train.features)
    head.mean.copy_(x.mean(dim=0))
    head.std.copy_(x.std(dim=0).clamp_min(1e-4))
    target, weight = (torch.from_numpy(a) for a in soft_targets(train, labels))
    steps_per_epoch = max(1, math.ceil(len(x) / cfg.batch_size))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 0.3 M-parameter MLP gains nothing from intra-op threads
    try:
        for epoch in range(cfg.epochs):
            head.train()
            order, total = torch.randperm(len(x), generator=gen), 0.0
            for start in range(0, len(x), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                per_frame = -(target[idx] * F.log_softmax(head(x[idx]), dim=-1)).sum(dim=-1)
                loss = (per_frame * weight[idx]).sum() / weight[idx].sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            head.eval()
            record = {"epoch": epoch + 1, "loss/train": total / len(x)}
            record.update({f"train/{k}": v for k, v in score_head(head, train).items()})
            if val is not None:
                record.update({f"val/{k}": v for k, v in score_head(head, val).items()})
            history.append(record)
            log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.3f}" for k, v in record.items()))
    finally:
        torch.set_num_threads(threads)
    return head.eval(), history


def train_semantic_head(cfg: SemanticHeadTrainConfig) -> Path:
    """Train a head on a shard split, score it against the bridge, write the run folder.

    Returns:
        The release checkpoint directory (``run_dir/release``).

    Raises:
        InputError: a bad setting, or shards without labelled frames.
    """
    check_settings(
        cfg,
        what="semantic-head training",
        extra={
            "hidden": cfg.hidden >= 1,
            "dropout": 0 <= cfg.dropout < 1,
            "input_dropout": 0 <= cfg.input_dropout < 1,
            "top_k": cfg.top_k >= 1,
            "epochs": cfg.epochs >= 1,
            "weight_decay": cfg.weight_decay >= 0,
        },
    )
    run_dir = Path(cfg.run_dir)
    train = load_frames(cfg.data, cfg.train_split)
    val = load_frames(cfg.val_data, cfg.val_split) if cfg.val_data else None
    log.info("%d training frames%s", len(train), f", {len(val)} validation frames" if val else "")
    head, history = fit_head(train, cfg, val=val)
    summary: dict[str, Any] = {"train_frames": len(train), "labels": list(head.labels)}
    for name, frames in (("train", train), ("val", val)):
        if frames is not None:
            tops = {"head": head_top(head, frames), "bridge": bridge_top(head, frames)}
            summary[name] = {k: frame_scores(top, frames.targets) for k, top in tops.items()}
            summary[name]["per_label"] = {
                k: per_label_accuracy(top, frames.targets) for k, top in tops.items()
            }  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps({"config": cfg.to_dict(), "summary": summary}, indent=1))
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # a new run replaces the last one's log
    log_file = MetricsLog(run_dir / "metrics.jsonl")
    for record in history:
        log_file.log(int(record["epoch"]), {k: v for k, v in record.items() if k != "epoch"})
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "metrics.png", groups=("loss/", "train/", "val/"))
    meta = {"data": f"{cfg.data} ({cfg.train_split})", "summary": summary}
    return save_checkpoint(run_dir / RELEASE, head, kind=KIND, config=head.config(), meta=meta)
