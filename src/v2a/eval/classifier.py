"""The sound-class classifier of the metrics: a small MLP over aisfx embeddings, trained on the SFX corpus.

Labels are the corpus labels (``category/name``, e.g. ``impact/metal``); the coarse category is the part
before ``/``, and its probability is the sum of its labels' probabilities. The network sees one 2.32 s
embedding block at a time; a clip's class posterior is the mean of its blocks' posteriors weighted by the
blocks' energy, so silent stretches of a long clip barely count.

A silent track (peak below -60 dBFS) gets the flat posterior ``no_sound()``, which names no class: it scores 0
on class and prompt matching instead of whatever the network makes of an all-zero spectrogram.

It is stored as a release checkpoint (``config.json`` + ``model.safetensors``, kind ``sound-classifier``)
under ``checkpoints/eval/sound_classifier``; ``train_classifier`` (``v2a eval train-classifier``) rebuilds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.errors import ModelUnavailableError
from v2a.eval.embeddings import EMBED_DIM, Embedding
from v2a.model.checkpoint import load_checkpoint, load_state_strict, save_checkpoint

KIND = "sound-classifier"
SILENT_PEAK = 1e-3  # -60 dBFS: a track this quiet everywhere holds no sound to classify
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "checkpoints" / "eval" / "sound_classifier"


def category(label: str) -> str:
    """The coarse category of a label: the part before the first ``/``."""
    return label.split("/", 1)[0]


class SoundClassifier(nn.Module):
    """Standardised embedding -> MLP -> label logits.

    Args:
        labels: the class labels, in logit order.
        hidden: hidden width.
        dropout: dropout before each linear layer while training.
    """

    def __init__(self, labels: Sequence[str], *, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        if len(set(labels)) != len(labels) or not labels:
            raise ValueError("labels must be a non-empty list without repeats")
        self.labels = tuple(labels)
        self.categories = tuple(sorted({category(x) for x in self.labels}))
        self.hidden = hidden
        self.register_buffer("mean", torch.zeros(EMBED_DIM))
        self.register_buffer("std", torch.ones(EMBED_DIM))
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(EMBED_DIM, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, len(self.labels)),
        )  # fmt: skip
        index = {c: i for i, c in enumerate(self.categories)}
        members = torch.zeros(len(self.labels), len(self.categories))
        members[torch.arange(len(self.labels)), torch.tensor([index[category(x)] for x in self.labels])] = 1
        self.register_buffer("members", members, persistent=False)  # (L, C) label -> category

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Args: emb (B, 512) aisfx embeddings. Returns: (B, L) logits."""
        return self.net((emb - self.mean) / self.std)

    def block_proba(self, blocks: np.ndarray) -> np.ndarray:
        """Args: blocks (N, 512). Returns: (N, L) label probabilities."""
        with torch.inference_mode():
            logits = self(torch.from_numpy(np.ascontiguousarray(blocks, dtype=np.float32)))
        return torch.softmax(logits, dim=-1).numpy()

    def clip_proba(self, emb: Embedding) -> np.ndarray:
        """The (L,) label posterior of a clip: block posteriors averaged with the blocks' energy as weight."""
        probs = self.block_proba(emb.blocks)
        weights = np.asarray(emb.energy, dtype=np.float64)
        if not np.any(weights > 0):
            weights = np.ones(len(probs))
        return (weights[:, None] * probs).sum(axis=0) / weights.sum()

    def no_sound(self) -> np.ndarray:
        """The flat (L,) posterior given to silent tracks."""
        return np.full(len(self.labels), 1.0 / len(self.labels))

    def wave_proba(self, wav: np.ndarray, emb: Embedding) -> np.ndarray:
        """The clip posterior of a waveform with its embedding; ``no_sound()`` when it is silent."""
        if not np.any(np.abs(np.asarray(wav)) >= SILENT_PEAK):
            return self.no_sound()
        return self.clip_proba(emb)

    def category_proba(self, probs: np.ndarray) -> np.ndarray:
        """(..., L) label probabilities -> (..., C) category probabilities (sums over each category)."""
        return np.asarray(probs) @ self.members.numpy()


def save_classifier(model: SoundClassifier, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write the classifier as a release checkpoint directory."""
    config = {"labels": list(model.labels), "hidden": model.hidden, "embedding": "aisfx-0.1.2"}
    return save_checkpoint(path, model, kind=KIND, config=config, meta=meta)


def load_classifier(path: str | Path | None = None) -> SoundClassifier:
    """Load a classifier checkpoint (None: the bundled one) in eval mode.

    Raises:
        ModelUnavailableError: no bundled classifier (rebuild it with ``v2a eval train-classifier``).
        InputError: the given path is not a sound-classifier checkpoint.
    """
    if path is None:
        path = DEFAULT_PATH
        if not (path / "model.safetensors").is_file():
            raise ModelUnavailableError(
                f"the bundled sound classifier {path} is missing; rebuild it with "
                "`v2a eval train-classifier --corpus data/sfx` or pass --classifier DIR"
            )
    ckpt = load_checkpoint(path, kind=KIND)
    model = SoundClassifier(ckpt.config["labels"], hidden=int(ckpt.config["hidden"]))
    load_state_strict(model, ckpt.state_dict, source=ckpt.path)
    return model.eval()


@dataclass(frozen=True)
class FitConfig:
    """Training settings of ``fit_classifier``.

    Attributes:
        hidden: hidden width of the MLP.
        epochs: passes over the training blocks.
        batch: blocks per step.
        lr: AdamW learning rate (cosine decay to zero).
        weight_decay: AdamW weight decay.
        dropout: dropout rate.
        seed: seeds initialisation and shuffling.
    """

    hidden: int = 512
    epochs: int = 60
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    seed: int = 0


def fit_classifier(
    features: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    *,
    sample_weight: np.ndarray | None = None,
    config: FitConfig = FitConfig(),
) -> SoundClassifier:
    """Train a classifier on embedding blocks.

    Args:
        features: (N, 512) float32 embedding blocks.
        targets: (N,) int label indices into ``labels``.
        labels: the class labels.
        sample_weight: (N,) loss weight of each block (None: all 1), e.g. to balance classes.
        config: training settings.

    Returns:
        The trained classifier in eval mode.
    """
    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    assert features.ndim == 2 and features.shape[1] == EMBED_DIM, f"{features.shape=}"
    assert targets.shape == (features.shape[0],), f"{targets.shape=} {features.shape=}"
    threads = torch.get_num_threads()
    # a 0.2 M-parameter MLP gains nothing from intra-op threads, and on a busy CPU their waits cost 10x
    torch.set_num_threads(1)
    try:
        return _fit(features, targets, labels, sample_weight, config)
    finally:
        torch.set_num_threads(threads)


def _fit(
    features: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    sample_weight: np.ndarray | None,
    config: FitConfig,
) -> SoundClassifier:
    torch.manual_seed(config.seed)
    model = SoundClassifier(labels, hidden=config.hidden, dropout=config.dropout)
    x = torch.from_numpy(features)
    model.mean.copy_(x.mean(dim=0))
    model.std.copy_(x.std(dim=0).clamp_min(1e-4))
    y = torch.from_numpy(targets)
    w = torch.ones(len(y)) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
    steps_per_epoch = max(1, math.ceil(len(y) / config.batch))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), config.batch):
            idx = order[start : start + config.batch]
            loss = (F.cross_entropy(model(x[idx]), y[idx], reduction="none") * w[idx]).sum() / w[idx].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def kl_divergence(p: np.ndarray, q: np.ndarray, *, eps: float = 1e-6) -> float:
    """KL(p || q) in nats between two class distributions (both smoothed by ``eps`` and renormalised)."""
    p = np.asarray(p, dtype=np.float64) + eps
    q = np.asarray(q, dtype=np.float64) + eps
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def names_nothing(probs: np.ndarray) -> bool:
    """Whether a posterior is flat (the ``no_sound()`` of a silent track) and so names no class."""
    return float(np.ptp(np.asarray(probs))) < 1e-9


def top_category(model: SoundClassifier, probs: np.ndarray) -> str | None:
    """The most probable coarse category of a clip posterior; None for a flat one (a silent track)."""
    if names_nothing(probs):
        return None
    return model.categories[int(np.argmax(model.category_proba(probs)))]


def label_match(model: SoundClassifier, probs: np.ndarray, targets: Sequence[str]) -> dict[str, float]:
    """Whether the top label / top category of a clip posterior is one of the clip's own labels.

    Args:
        model: the classifier that produced ``probs``.
        probs: (L,) label posterior of the clip.
        targets: the clip's labels (labels outside the classifier's set still count by category).

    Returns:
        ``class_acc`` (top label in targets) and ``class_acc_coarse`` (top category among the targets'
        categories), both 0 for a flat posterior (a silent track); empty when the clip has no labels.
    """
    if not targets:
        return {}
    top_cat = top_category(model, probs)
    if top_cat is None:
        return {"class_acc": 0.0, "class_acc_coarse": 0.0}
    top = model.labels[int(np.argmax(probs))]
    return {
        "class_acc": float(top in set(targets)),
        "class_acc_coarse": float(top_cat in {category(t) for t in targets}),
    }
