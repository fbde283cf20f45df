from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from v2a.errors import InputError
from v2a.model.checkpoint import (
    CheckpointPart,
    find_train_state,
    load_checkpoint,
    load_state_strict,
    load_train_state,
    save_checkpoint,
    save_train_state,
)


def test_release_checkpoint_round_trip_and_atomic_replace(tmp_path):
    net = nn.Linear(3, 2)
    out = save_checkpoint(tmp_path / "ck", net, kind="toy", config={"width": 3}, meta={"step": 7})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    ck = load_checkpoint(out, kind="toy")
    assert ck.config == {"width": 3} and ck.meta == {"step": 7} and ck.kind == "toy"
    fresh = nn.Linear(3, 2)
    ck.load_into(fresh)
    assert torch.equal(fresh.weight, net.weight)
    save_checkpoint(out, {"w": torch.ones(2)}, kind="toy", config={"width": 1})
    assert load_checkpoint(out).config == {"width": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary leftovers
    assert os.stat(out / "model.safetensors").st_mode & 0o044  # readable by others, like any output


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match=r"no checkpoint at .*expected a directory with config\.json"):
        load_checkpoint(tmp_path)
    out = save_checkpoint(tmp_path / "ck", nn.Linear(2, 2), kind="toy", config={})
    (out / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(InputError, match="is not a readable safetensors file"):
        load_checkpoint(out)
    (out / "config.json").write_text("{")
    with pytest.raises(InputError, match=r"cannot read .*config\.json"):
        load_checkpoint(out)
    with pytest.raises(InputError, match="does not fit the Linear network: wrong shape: weight"):
        load_state_strict(nn.Linear(2, 2), {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}, source="x")


def test_train_state_round_trips_optimizer_state_without_pickle(tmp_path):
    net = nn.Linear(4, 4)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.8, 0.99))
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    state = {"step": 12, "opt": opt.state_dict(), "net": net.state_dict(), "ema": None, "lr": math.inf}
    save_train_state(tmp_path, state)
    back = load_train_state(find_train_state(tmp_path))
    assert back["step"] == 12 and back["ema"] is None and back["lr"] == math.inf
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.99)  # tuples stay tuples
    assert set(back["opt"]["state"]) == {0, 1}  # int keys stay ints
    opt2 = torch.optim.AdamW(nn.Linear(4, 4).parameters(), lr=1e-3)
    opt2.load_state_dict(back["opt"])
    torch.testing.assert_close(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    with pytest.raises(TypeError, match="not saved without pickle"):
        save_train_state(tmp_path, {"bad": object()})


def test_previous_state_becomes_shadow_and_is_the_fallback(tmp_path):
    assert find_train_state(tmp_path) is None
    save_train_state(tmp_path, {"step": 1})
    save_train_state(tmp_path, {"step": 2})
    assert load_train_state(tmp_path / "last")["step"] == 2
    assert load_train_state(tmp_path / "shadow")["step"] == 1
    (tmp_path / "last" / "state.json").unlink()  # as if a crash tore the newest save
    assert find_train_state(tmp_path) == tmp_path / "shadow"


def test_a_checkpoint_part_in_a_subfolder_is_readable_by_others_too(tmp_path):
    part = CheckpointPart(nn.Linear(2, 2), "toy-part", {"width": 2}, {"source": "elsewhere"})
    out = save_checkpoint(
        tmp_path / "ck", nn.Linear(3, 2), kind="toy", config={"width": 3}, parts={"inner": part}
    )
    assert load_checkpoint(out / "inner", kind="toy-part").meta == {"source": "elsewhere"}
    assert os.stat(out / "inner").st_mode & 0o055 == 0o055  # others may enter and list it
    assert os.stat(out / "inner" / "model.safetensors").st_mode & 0o044 == 0o044
