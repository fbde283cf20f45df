from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from v2a.encoders.onnx_runtime import OrtModel, cache_root, export_onnx, module_fingerprint
from v2a.errors import ModelUnavailableError


class _Net(nn.Module):
    """A small conv net with batch norm and a second output, like the encoders that use this module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.bn(self.conv(x)))  # (B, 8, N)
        return h, self.head(h.mean(dim=2))


def _export(net: nn.Module, folder) -> object:
    return export_onnx(
        net,
        [torch.zeros(1, 2, 16)],
        name="net",
        input_names=["x"],
        output_names=["h", "y"],
        dynamic_axes={"x": {0: "B", 2: "N"}, "h": {0: "B", 2: "N"}, "y": {0: "B"}},
        cache_dir=folder,
    )


@pytest.fixture
def net() -> _Net:
    torch.manual_seed(0)
    net = _Net()
    net.bn.running_mean.uniform_(-1, 1)  # non-trivial statistics, so a train-mode export would differ
    net.bn.running_var.uniform_(0.5, 2)
    return net


def test_onnx_matches_torch_for_any_batch_and_length(net, tmp_path):
    model = OrtModel(_export(net, tmp_path), threads=1)
    x = np.random.default_rng(0).standard_normal((3, 2, 40)).astype(np.float32)
    h, y = model(x)
    with torch.no_grad():
        h_ref, y_ref = net.eval()(torch.from_numpy(x))
    np.testing.assert_allclose(h, h_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(y, y_ref.numpy(), atol=1e-5)
    assert model.input_names == ["x"] and model.output_names == ["h", "y"]


def test_export_is_cached_and_keyed_by_weights(net, tmp_path):
    first = _export(net, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert _export(net, tmp_path) == first and first.stat().st_mtime_ns == stamp  # reused, not rewritten
    with torch.no_grad():
        net.head.bias += 1
    second = _export(net, tmp_path)
    assert second != first and sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def test_export_keeps_each_submodule_mode(net, tmp_path):
    net.train()
    net.head.eval()
    _export(net, tmp_path)
    assert net.training and net.bn.training and not net.head.training


def test_fingerprint_sees_values_and_extras(net):
    base = module_fingerprint(net)
    assert module_fingerprint(net) == base and module_fingerprint(net, "v2") != base
    with torch.no_grad():
        net.conv.weight[0, 0, 0] += 1e-3
    assert module_fingerprint(net) != base


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("V2A_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("V2A_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "v2a"


def test_bad_graph_file_and_bad_calls(net, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        OrtModel(bad)
    with pytest.raises(ModelUnavailableError, match="no provider"):
        OrtModel(_export(net, tmp_path), device="tpu")
    with pytest.raises(ValueError, match="takes 1 inputs"):
        OrtModel(_export(net, tmp_path))()
