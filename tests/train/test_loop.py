from __future__ import annotations

import json
import time

import pytest
import torch
from PIL import Image
from torch import nn

from v2a.train.loop import (
    EMA,
    Every,
    MetricsLog,
    TimeBudget,
    plot_metrics,
    read_metrics,
    setup_distributed,
    unwrap,
)


def test_single_process_context_without_torchrun(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = setup_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    assert ctx.device == torch.device("cpu") and ctx.any(True) and not ctx.any(False)


def test_time_budget_and_periodic_trigger():
    assert not TimeBudget(None).expired()
    assert TimeBudget(0.0).expired()
    every = Every(1e-4)  # 6 ms
    assert not every.due()
    time.sleep(0.02)
    assert every.due() and not every.due()  # the period restarts when it fires
    assert not Every(None).due()


def test_ema_moves_towards_the_model_by_its_decay():
    model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # warm-up: the first update uses decay min(0.9, 1/10) = 0.1
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 0.9))
    for _ in range(200):
        ema.update(model)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model)  # warmed up: decay 0.9, so 10 % of the step from 1 to 2
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 1.1))
    restored = EMA(nn.Linear(2, 1, bias=False), decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 202 and torch.equal(restored.model.weight, ema.model.weight)
    assert unwrap(model) is model
    with pytest.raises(ValueError, match="EMA decay"):
        EMA(model, decay=1.0)


def test_metrics_log_and_plot(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 6):
        log.log(step, {"loss/a": 1.0 / step, "loss/b": torch.tensor(2.0), "val/x": float("nan")})
    MetricsLog(tmp_path / "metrics.jsonl", enabled=False).log(99, {"loss/a": 0.0})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "loss/a"')  # a torn line from a crash
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert records[1]["loss/a"] == 0.5 and records[0]["loss/b"] == 2.0 and records[0]["val/x"] is None
    json.dumps(records)  # strict JSON values only
    png = plot_metrics(tmp_path / "metrics.jsonl", tmp_path / "losses.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 400
    assert plot_metrics(tmp_path / "none.jsonl", tmp_path / "empty.png") is None
