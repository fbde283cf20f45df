from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import pytest
import torch
from PIL import Image
from torch import nn

from v2a.errors import InputError
from v2a.model.checkpoint import save_train_state
from v2a.train.loop import (
    EMA,
    Every,
    LoopLimits,
    MetricsLog,
    StopRequest,
    TimeBudget,
    check_settings,
    plot_metrics,
    read_metrics,
    resume_state,
    seed_run,
    setup_distributed,
    train_loop,
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


def test_train_loop_logs_means_saves_periodically_and_at_the_end(tmp_path):
    ctx = setup_distributed("cpu")
    saves: list[int] = []
    metrics = MetricsLog(tmp_path / "metrics.jsonl")
    common = {"save": saves.append, "metrics": metrics}
    step = train_loop(
        ctx,
        step=0,
        train_step=lambda s: {"loss/x": float(s)},
        limits=LoopLimits(max_steps=5, log_every=2),
        saved=False,
        extra=lambda: {"lr": 0.1},
        **common,
    )
    assert step == 5 and saves == [5]
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["loss/x"], r["lr"]) for r in records] == [(2, 0.5, 0.1), (4, 2.5, 0.1)]
    assert all(r["steps_per_s"] > 0 for r in records)
    # nothing to do and a checkpoint already there: no save; none there yet: one save
    assert train_loop(ctx, step=5, train_step=None, limits=LoopLimits(max_steps=5), saved=True, **common) == 5
    assert saves == [5]
    train_loop(ctx, step=5, train_step=None, limits=LoopLimits(max_minutes=0.0), saved=False, **common)
    assert saves == [5, 5]


def test_ctrl_c_stops_the_loop_after_the_step_and_saves_it(tmp_path):
    ctx = setup_distributed("cpu")
    saves: list[int] = []

    def train_step(step: int) -> dict[str, float]:
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends, mid-step
        return {"loss/x": 1.0}

    before = signal.getsignal(signal.SIGINT)
    step = train_loop(
        ctx, step=0, train_step=train_step, save=saves.append, metrics=MetricsLog(tmp_path / "m.jsonl"),
        limits=LoopLimits(max_steps=100, log_every=10), saved=False,
    )  # fmt: skip
    assert step == 3 and saves == [3]  # the interrupted step finished and was saved
    assert signal.getsignal(signal.SIGINT) is before  # the handler is gone again

    def stubborn(step: int) -> dict[str, float]:
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C quits at once
        return {"loss/x": 1.0}

    with StopRequest() as request:
        stubborn(0)
        assert request.requested
        with pytest.raises(KeyboardInterrupt):
            stubborn(1)


def test_check_settings_names_every_bad_field_and_missing_data():
    @dataclasses.dataclass(frozen=True)
    class Config:
        data: tuple[str, ...] = ("x",)
        lr: float = 1e-3
        batch_size: int = 4
        max_steps: int | None = None

    check_settings(Config(), what="demo")
    with pytest.raises(InputError, match=r"invalid demo setting\(s\): batch_size, lr, depth$"):
        check_settings(Config(lr=0.0, batch_size=0), what="demo", extra={"depth": False})
    with pytest.raises(InputError, match="no training data given"):
        check_settings(Config(data=()), what="demo")


def test_seed_run_differs_by_rank_and_step_and_resume_state_finds_last(tmp_path):
    ctx = setup_distributed("cpu")
    first, again = seed_run(3, ctx, 0).random(), seed_run(3, ctx, 0).random()
    assert first == again and seed_run(3, ctx, 10).random() != first
    assert resume_state(tmp_path) == (None, None)
    save_train_state(tmp_path, {"step": 7, "w": torch.ones(2)})
    state, where = resume_state(tmp_path)
    assert where == tmp_path / "last" and state["step"] == 7 and torch.equal(state["w"], torch.ones(2))
