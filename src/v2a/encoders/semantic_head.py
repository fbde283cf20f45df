"""A learned visual-semantic head: what on screen will make a sound, in the text space.

The ImageNet bridge of ``v2a.encoders.semantic`` names what a photograph shows among ImageNet's 1000 classes.
On rendered scenes it mostly names the backdrop (a can becomes "paper towel", a walker "vaulted ceiling"), so
the generator gets little to tell a door from a ball. This head is trained on the project's own frames
(``v2a train semantic-head``) against the sound labels of the sources on screen in each frame's shot. It maps
the frame's pooled EfficientNet-Lite0 features (already cached in the shards) to a posterior over those labels
and, like the bridge, to the text space: the posterior-weighted mixture of the labels' phrase embeddings
(``"footstep wood"``), so its output lives where the prompts and the corpus captions live whatever labels a
user trains it on.

A generator trained with a head sees both vectors side by side (``semantic_tokens``): 768 channels, the
bridge's first. The head travels inside the generator's release (``semantic_head/``), and training and
inference build the tokens with the same function.

Two things keep the head honest on pictures unlike its training frames. A head trained with the
``NO_SOURCE`` label (frames without a visible source, and plain photographs) hands that share of each frame's
vector back to the bridge, so on real footage, which it has never seen, its slot carries the bridge's reading
instead of a confident guess from Foley world's sprites. And a head with ``smooth_shots`` averages its
posteriors over each shot (cuts found where consecutive frames' features jump, ``feature_shots``): what is on
screen changes at cuts, while frame-to-frame guesses flicker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from v2a.encoders.efficientnet import NUM_FEATURES
from v2a.encoders.semantic import SemanticFeatures, topk_mixture
from v2a.encoders.text import DIM as TEXT_DIM
from v2a.encoders.text import TextEncoder
from v2a.errors import InputError
from v2a.model.checkpoint import CONFIG_FILE, HEAD_SUBDIR, CheckpointPart, load_checkpoint, load_state_strict

KIND = "semantic-head"
NO_SOURCE = "none/none"  # the label of frames that show no sound source the head was taught
CUT_SIMILARITY = 0.75  # consecutive frames' feature cosine below this starts a new shot


def feature_shots(features: np.ndarray, threshold: float = CUT_SIMILARITY) -> np.ndarray:
    """(T,) shot index per frame: a shot starts where consecutive (T, D) features' cosine drops below ``threshold``.

    On Foley world's validation clips 0.75 finds every cut (one of the two frames beside it) with no false cut.
    """
    x = np.asarray(features, dtype=np.float32)
    if len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = (unit[1:] * unit[:-1]).sum(axis=1)
    return np.concatenate([[0], np.cumsum(similarity < threshold)]).astype(np.int64)


def shot_mean(values: np.ndarray, shots: np.ndarray) -> np.ndarray:
    """(T, C) values replaced by their mean over each frame's shot (``shots``: (T,) shot index)."""
    out = np.empty_like(values)
    for shot in np.unique(shots):
        members = shots == shot
        out[members] = values[members].mean(axis=0)
    return out


def label_phrase(label: str) -> str:
    """The words of a taxonomy label, e.g. ``"footstep/wood"`` -> ``"footstep wood"``."""
    return label.replace("/", " ").replace("_", " ").strip()


class SemanticHead(nn.Module):
    """Standardised frame features -> MLP -> sound-label logits, and their text-space mixture.

    Args:
        labels: the sound labels, in logit order.
        hidden: hidden width.
        dropout: dropout before the output layer while training.
        input_dropout: dropout of the standardised features while training; a high rate keeps the head from
            leaning on the few feature channels that identify a training sprite, so it generalises to pictures
            it never saw (on Foley world's test animals, 0.8 lifts the right category from 0.33 to 0.56).
        top_k: labels kept (and renormalised) in the text-space mixture.
        smooth_shots: average the posteriors over each shot before mixing (see the module docstring).
    """

    def __init__(
        self,
        labels: Sequence[str],
        *,
        hidden: int = 256,
        dropout: float = 0.3,
        input_dropout: float = 0.8,
        top_k: int = 3,
        smooth_shots: bool = False,
    ):
        super().__init__()
        if len(set(labels)) != len(labels) or not labels:
            raise InputError("a semantic head needs a non-empty list of distinct labels")
        self.labels = tuple(labels)
        self.hidden, self.top_k = hidden, max(1, min(top_k, len(self.labels)))
        self.smooth_shots = smooth_shots
        self.register_buffer("mean", torch.zeros(NUM_FEATURES))
        self.register_buffer("std", torch.ones(NUM_FEATURES))
        self.register_buffer("label_embeddings", torch.zeros(len(self.labels), TEXT_DIM))
        self.net = nn.Sequential(
            nn.Dropout(input_dropout), nn.Linear(NUM_FEATURES, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, len(self.labels)),
        )  # fmt: skip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args: features (N, 1280) pooled image features. Returns: (N, L) label logits."""
        return self.net((features - self.mean) / self.std)

    def embed_labels(self, text_encoder: TextEncoder | None = None) -> None:
        """Fill ``label_embeddings`` with the text encoder's vectors of the labels' phrases."""
        vectors = (text_encoder or TextEncoder()).embed([label_phrase(x) for x in self.labels])
        self.label_embeddings.copy_(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))

    def posteriors(self, features: np.ndarray) -> np.ndarray:
        """(T, L) float32 label probabilities of (T, 1280) frame features."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        with torch.inference_mode():
            return torch.softmax(self(x.to(self.mean.device)), dim=-1).float().cpu().numpy()

    def text_space(self, features: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
        """(T, 384) float32 L2-normalised text-space vectors: the top-k label posterior mixture of phrases.

        Args:
            features: (T, 1280) frame features, in time order (one clip or window).
            fallback: (T, 384) the bridge's vectors of the same frames; a head with ``NO_SOURCE`` gives each
                frame's no-source probability to them (None: the known labels' mixture alone).
        """
        probs = self.posteriors(features)
        if self.smooth_shots:
            probs = shot_mean(probs, feature_shots(features))
        embeddings = self.label_embeddings.cpu().numpy()
        if NO_SOURCE not in self.labels:
            return topk_mixture(probs, embeddings, self.top_k)
        none = self.labels.index(NO_SOURCE)
        known = topk_mixture(np.delete(probs, none, axis=1), np.delete(embeddings, none, axis=0), self.top_k)
        if fallback is None:
            return known
        share = probs[:, none, None]
        mixed = (1.0 - share) * known + share * np.asarray(fallback, dtype=np.float32)
        return (mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def config(self) -> dict[str, object]:
        """JSON-able fields that rebuild the head."""
        return {
            "labels": list(self.labels), "hidden": self.hidden, "top_k": self.top_k,
            "smooth_shots": self.smooth_shots,
        }  # fmt: skip

    def part(self, meta: dict[str, object] | None = None) -> CheckpointPart:
        """The head as a checkpoint part (to save inside a generator release)."""
        return CheckpointPart(self, KIND, self.config(), meta or {})


def head_from_checkpoint(path: str | os.PathLike) -> SemanticHead:
    """Load a semantic-head checkpoint directory in eval mode.

    Raises:
        InputError: missing or malformed files, or a checkpoint of another kind or shape.
    """
    ckpt = load_checkpoint(path, kind=KIND)
    cfg = ckpt.config
    head = SemanticHead(
        cfg["labels"], hidden=int(cfg["hidden"]), top_k=int(cfg["top_k"]),
        smooth_shots=bool(cfg.get("smooth_shots", False)),  # heads saved before it never smoothed
    )  # fmt: skip
    load_state_strict(head, ckpt.state_dict, source=ckpt.path)
    return head.eval()


def generator_head(generator: str | os.PathLike) -> SemanticHead | None:
    """The semantic head inside a generator release (``semantic_head/``), or None when it has none."""
    folder = Path(generator) / HEAD_SUBDIR
    return head_from_checkpoint(folder) if (folder / CONFIG_FILE).is_file() else None


def semantic_tokens(semantic: SemanticFeatures, head: SemanticHead | None) -> np.ndarray:
    """The generator's visual tokens of encoded frames: (T, 384) bridge vectors, or (T, 768) with a head.

    The one place that turns ``SemanticFeatures`` into tokens, for cached training features and fresh
    inference features alike.
    """
    if head is None:
        return semantic.text_space
    return np.concatenate(
        [semantic.text_space, head.text_space(semantic.features, fallback=semantic.text_space)], axis=1
    )


def token_dim(head: SemanticHead | None) -> int:
    """Channels of ``semantic_tokens`` with or without a head."""
    return TEXT_DIM if head is None else 2 * TEXT_DIM
