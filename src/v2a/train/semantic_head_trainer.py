"""Train the semantic head: shard frames against the sound labels on screen in their shot.

Every frame of a shard clip (8 fps, its pooled EfficientNet-Lite0 features cached by ``v2a data features``)
gets as target the labels of the clip's events that are on screen in the frame's shot (the manifest's
``shots`` and ``events[].on_screen``, which Foley world writes; clips without on-screen facts, such as
labelled footage from ``v2a data ingest``, give every frame their ``labels``); frames of shots with no visible
sound source are left out. The loss is cross-entropy against the uniform
distribution over those labels, so a shot with a door and a ball teaches both. Labels are weighted by the
inverse square root of their frequency, so footsteps (a third of Foley world's events) do not drown the rest.

With ``abstain`` (the default) the frames of shots with no visible source, and with ``photos`` random crops of
a backgrounds folder's training photographs (plain pictures with nothing the head knows, at full and at Foley
world's size), are taught as ``NO_SOURCE``: the head learns that a picture without its sprites shows nothing it
can name, and then hands such frames back to the ImageNet bridge (``SemanticHead.text_space``).

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
from v2a.encoders.efficientnet import NUM_FEATURES
from v2a.encoders.semantic_head import KIND, NO_SOURCE, SemanticHead
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
        abstain: teach ``NO_SOURCE`` on frames without a visible source (and on ``photos``).
        photos: a backgrounds folder (``v2a data backgrounds``) whose training photographs, cropped at random,
            are taught as ``NO_SOURCE`` (None: none; needs ``abstain``).
        photo_crops: random crops per photograph.
        smooth_shots: the released head averages its posteriors over each shot (see ``SemanticHead``).
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
    abstain: bool = True
    photos: str | None = None
    photo_crops: int = 24
    smooth_shots: bool = True
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
        no_source: (M, 1280) float32 features of the frames whose shot shows no sound source.
    """

    features: np.ndarray
    text_space: np.ndarray
    targets: list[tuple[str, ...]]
    clips: np.ndarray
    no_source: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, NUM_FEATURES), np.float32))

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
    """Every frame of a shard split that has a sound source on screen, with its labels (and the others apart).

    Raises:
        InputError: the split has no such frame.
    """
    dataset = ShardDataset(shard_dir, split, features=("semantic",), shuffle_buffer=0, decode_audio=False)
    features, text_space, targets, clips = [], [], [], []
    empty = [np.zeros((0, NUM_FEATURES), np.float32)]
    for i, sample in enumerate(dataset):
        semantic = read_semantic(sample["features"]["semantic"])
        labels = on_screen_labels(sample["meta"], semantic.times_s)
        shown = np.array([bool(frame_labels) for frame_labels in labels], dtype=bool)
        keep = np.flatnonzero(shown)
        empty.append(semantic.features[~shown])
        features.append(semantic.features[keep])
        text_space.append(semantic.text_space[keep])
        targets.extend(labels[j] for j in keep)
        clips.append(np.full(len(keep), i))
    if not targets:
        raise InputError(f"{shard_dir} ({split}) has no frame with a labelled sound source on screen")
    return LabelledFrames(
        np.concatenate(features).astype(np.float32), np.concatenate(text_space).astype(np.float32),
        targets, np.concatenate(clips), np.concatenate(empty).astype(np.float32),
    )  # fmt: skip


def photo_features(folder: str | Path, *, crops: int, seed: int = 0) -> np.ndarray:
    """(N, 1280) features of random crops of a backgrounds folder's training photographs and artworks.

    Each crop (a quarter to all of the picture, at a video aspect, mirrored half the time) is seen at full
    resolution or, half the time, first shrunk to 160 pixels wide like Foley world's frames.

    Raises:
        InputError: the folder has no training photograph.
    """
    from PIL import Image

    from v2a.data.foley_world.backgrounds import BackgroundLibrary, load_picture
    from v2a.encoders.semantic import SemanticEncoder, fit_image

    pictures = [
        p for p in BackgroundLibrary(folder).pictures if p.kind in ("photo", "art") and p.split == "train"
    ]
    if not pictures:
        raise InputError(f"{folder} has no training photograph to teach as no source")
    rng = np.random.default_rng(seed)
    frames = []
    for picture in pictures:
        image = Image.fromarray(load_picture(picture.path))
        for _ in range(crops):
            aspect = float(rng.choice([16 / 9, 4 / 3, 1.0]))
            area = rng.uniform(0.25, 1.0) * image.width * image.height
            w = int(min(image.width, np.sqrt(area * aspect)))
            h = int(min(image.height, w / aspect))
            x0, y0 = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
            crop = image.crop((x0, y0, x0 + w, y0 + h))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if rng.random() < 0.5:
                crop = crop.resize((160, max(1, round(160 * h / w))), Image.Resampling.BILINEAR)
            frames.append(fit_image(np.asarray(crop)))  # the encoder's own geometry for a picture
    return SemanticEncoder(text_encoder=None).encode_frames(np.stack(frames)).features.astype(np.float32)


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
    if NO_SOURCE in head.labels:  # the bridge names things; it has no "nothing"
        sims[:, head.labels.index(NO_SOURCE)] = -np.inf
    return [head.labels[i] for i in np.argmax(sims, axis=1)]


def score_head(head: SemanticHead, frames: LabelledFrames) -> dict[str, float]:
    """Frame scores of the head's top label; with ``NO_SOURCE``, also ``abstain``: how often it is the top
    label of the frames without a visible source."""
    scores = frame_scores(head_top(head, frames), frames.targets)
    if NO_SOURCE in head.labels and len(frames.no_source):
        scores["abstain"] = abstain_rate(head, frames.no_source)
    return scores


def abstain_rate(head: SemanticHead, features: np.ndarray) -> float:
    """Share of (N, 1280) frames whose top label is ``NO_SOURCE``."""
    top = np.argmax(head.posteriors(features), axis=1)
    return float(np.mean(top == head.labels.index(NO_SOURCE)))


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
    photos: np.ndarray | None = None,
) -> tuple[SemanticHead, list[dict[str, float]]]:
    """Train a head on labelled frames; returns it (eval mode) and one metrics record per epoch.

    With ``cfg.abstain``, ``train.no_source`` (and ``photos``: more (M, 1280) no-source features) are taught
    as ``NO_SOURCE``.
    """
    torch.manual_seed(cfg.seed)
    labels = sorted({x for frame_labels in train.targets for x in frame_labels})
    negatives = train.no_source if photos is None else np.concatenate([train.no_source, photos])
    source, taught = train, train
    if cfg.abstain and len(negatives):
        labels.append(NO_SOURCE)
        taught = dataclasses.replace(
            train,
            features=np.concatenate([train.features, negatives]),
            text_space=np.zeros((len(train) + len(negatives), train.text_space.shape[1]), np.float32),
            targets=[*train.targets, *[(NO_SOURCE,)] * len(negatives)],
            clips=np.concatenate([train.clips, np.full(len(negatives), -1)]),
        )
    head = SemanticHead(
        labels, hidden=cfg.hidden, dropout=cfg.dropout, input_dropout=cfg.input_dropout, top_k=cfg.top_k,
        smooth_shots=cfg.smooth_shots,
    )  # fmt: skip
    head.embed_labels(text_encoder)
    x = torch.from_numpy(taught.features)
    head.mean.copy_(x.mean(dim=0))
    head.std.copy_(x.std(dim=0).clamp_min(1e-4))
    target, weight = (torch.from_numpy(a) for a in soft_targets(taught, labels))
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
            record.update({f"train/{k}": v for k, v in score_head(head, source).items()})
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
            "photo_crops": cfg.photo_crops >= 1,
            "photos": cfg.photos is None or cfg.abstain,
            "epochs": cfg.epochs >= 1,
            "weight_decay": cfg.weight_decay >= 0,
        },
    )
    run_dir = Path(cfg.run_dir)
    train = load_frames(cfg.data, cfg.train_split)
    val = load_frames(cfg.val_data, cfg.val_split) if cfg.val_data else None
    photos = photo_features(cfg.photos, crops=cfg.photo_crops, seed=cfg.seed) if cfg.photos else None
    log.info(
        "%d training frames with a source on screen, %d without, %d photo crops%s", len(train),
        len(train.no_source), 0 if photos is None else len(photos),
        f"; {len(val)} validation frames" if val else "",
    )  # fmt: skip
    head, history = fit_head(train, cfg, val=val, photos=photos)
    summary: dict[str, Any] = {"train_frames": len(train), "labels": list(head.labels)}
    if NO_SOURCE in head.labels:
        summary["abstain"] = {
            name: abstain_rate(head, features)
            for name, features in (("train_no_source", train.no_source), ("photos", photos),
                                   ("val_no_source", val.no_source if val else None))
            if features is not None and len(features)
        }  # fmt: skip
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
