"""Pieces every Foley trainer shares: DDP setup, seeds, bf16 autocast, time budget, EMA, metric log and plot.

A trainer built on these runs unchanged on one CPU, one GPU or many GPUs::

    v2a train vocoder --data DIR --run-dir runs/voc                       # one process, CPU or GPU
    torchrun --standalone --nproc_per_node=8 -m v2a.cli train vocoder ...   # 8 GPUs on one node
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 --nproc_per_node=8 ...

``torchrun`` sets RANK / LOCAL_RANK / WORLD_SIZE; :func:`setup_distributed` reads them. Only rank 0 writes
files; seeds are offset by rank so every process draws different crops.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from v2a.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) run.

    Attributes:
        rank: global process index; local_rank: index on this machine; world_size: number of processes.
        device: the device this process trains on.
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that writes logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (so all ranks stop or save together)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        """Wait until every rank gets here (e.g. until rank 0 has written the final checkpoint)."""
        if self.distributed:
            dist.barrier()


def resolve_device(device: str = "auto", *, local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's CUDA device when there is one, else CPU; otherwise ``device`` as given.

    Raises:
        InputError: CUDA asked for but not available.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is available")
        return torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)
    return torch.device(device)


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPU, gloo on CPU.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank=local_rank)
    if world_size > 1 and not dist.is_initialized():
        if target.type == "cuda":
            torch.cuda.set_device(target)
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=target)


def teardown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Offset ``seed`` by rank before calling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, *, bf16: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked; a no-op on CPU (CPU bf16 is slower than float32 here)."""
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP (or ``torch.compile``) wrapper: the one to save."""
    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)


class TimeBudget:
    """Wall-clock budget of one invocation.

    Args:
        max_minutes: minutes allowed; None means no limit.
    """

    def __init__(self, max_minutes: float | None):
        self.max_seconds = None if max_minutes is None else max_minutes * 60.0
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.monotonic() - self.start

    def expired(self) -> bool:
        """True once the budget is spent."""
        return self.max_seconds is not None and self.elapsed >= self.max_seconds


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM, while active, asks the training loop to stop after this step and save.

    A second signal quits at once (KeyboardInterrupt). Handlers are only installed in the main thread, and
    the previous ones are restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "%s: stopping after this step and saving a checkpoint (send it again to quit at once)",
            signal.Signals(signum).name,
        )


class Every:
    """A periodic wall-clock trigger (for "checkpoint every K minutes").

    Args:
        minutes: the period; None or <= 0 never fires.
    """

    def __init__(self, minutes: float | None):
        self.seconds = None if not minutes or minutes <= 0 else minutes * 60.0
        self.last = time.monotonic()

    def due(self) -> bool:
        """True once per period; the period restarts when it fires."""
        if self.seconds is None or time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        return True


# checks of the settings every trainer config shares (applied to the fields a config has)
_COMMON_CHECKS: dict[str, Callable[[Any], bool]] = {
    "batch_size": lambda v: v >= 1,
    "segment_seconds": lambda v: v > 0,
    "lr": lambda v: v > 0,
    "lr_decay": lambda v: 0 < v <= 1,
    "grad_clip": lambda v: v > 0,
    "log_every": lambda v: v >= 1,
    "max_minutes": lambda v: v is None or v > 0,
    "max_steps": lambda v: v is None or v >= 0,
    "ema_decay": lambda v: v is None or 0 < v < 1,
}


def check_settings(config: Any, *, what: str, extra: Mapping[str, bool] | None = None) -> None:
    """Validate a trainer config: one InputError naming every bad setting, or the missing data.

    Args:
        config: a trainer config dataclass; the shared fields it has (``batch_size``, ``lr``, ``lr_decay``,
            ``max_steps``, ``ema_decay``, ...) are checked, and a ``data`` field must not be empty.
        what: the run kind in the message, e.g. ``"codec training"``.
        extra: more setting name -> whether its value is valid.
    """
    checks = {name: ok(getattr(config, name)) for name, ok in _COMMON_CHECKS.items() if hasattr(config, name)}
    checks.update(extra or {})
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise InputError(f"invalid {what} setting(s): {', '.join(bad)}")
    if hasattr(config, "data") and not config.data:
        raise InputError("no training data given: pass --data FOLDER or --data manifest.jsonl")


class RunningMeans:
    """Means of per-step values between two metric records, plus the step rate."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.start = time.monotonic()

    def add(self, values: Mapping[str, torch.Tensor | float]) -> None:
        """Accumulate one step's values."""
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def pop(self) -> dict[str, float]:
        """The means since the last pop and ``steps_per_s``; then start over."""
        elapsed = time.monotonic() - self.start
        record = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        record["steps_per_s"] = self.count / max(elapsed, 1e-9)
        self.sums, self.count, self.start = {}, 0, time.monotonic()
        return record


@dataclass(frozen=True)
class LoopLimits:
    """When a training loop stops, saves and logs: the settings every trainer config shares.

    Attributes:
        max_minutes: wall-clock budget of this invocation (None: unlimited).
        max_steps: stop at this global step (None: no limit).
        checkpoint_minutes: save period.
        log_every: steps between metric records.
    """

    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float | None = None
    log_every: int = 25

    @classmethod
    def of(cls, config: Any) -> LoopLimits:
        """The limits a trainer config sets (fields of the same names)."""
        return cls(config.max_minutes, config.max_steps, config.checkpoint_minutes, config.log_every)


def seed_run(seed: int, ctx: DistContext, step: int) -> np.random.Generator:
    """Seed every library for this rank and step (so a resumed run draws new data) and return a data RNG."""
    seed_everything(seed + 7919 * ctx.rank + step)
    return np.random.default_rng([seed, ctx.rank, step])


def train_loop(
    ctx: DistContext,
    *,
    step: int,
    train_step: Callable[[int], Mapping[str, torch.Tensor | float]],
    save: Callable[[int], None],
    metrics: MetricsLog,
    limits: LoopLimits,
    saved: bool,
    extra: Callable[[], Mapping[str, float]] | None = None,
    show: Sequence[str] = (),
) -> int:
    """Run optimisation steps until the step or time budget is spent; log and save along the way.

    All ranks stop and save together, also when the run is interrupted (Ctrl-C or SIGTERM, see
    :class:`StopRequest`; the run resumes from there). A final save happens when steps were taken since
    the last one, or when nothing was saved yet (``saved`` False: a fresh run that got no steps still
    leaves a release).
    Every rank returns only once the final save is done.

    Args:
        ctx: the process's place in the run.
        step: the global step to start from (0, or the resumed step).
        train_step: trains on one batch given the current global step; returns scalar values to log.
        save: writes checkpoints for a global step (called on every rank; only rank 0 should write).
        metrics: where the averaged values go every ``limits.log_every`` steps.
        limits: time and step budget of this invocation, save period and log period.
        saved: whether the run folder already holds a checkpoint for ``step``.
        extra: values added to each record (e.g. the learning rate).
        show: keys printed to the log at each record, beside the step rate.

    Returns:
        The global step reached.
    """
    budget, saver, means = TimeBudget(limits.max_minutes), Every(limits.checkpoint_minutes), RunningMeans()
    saved_step = step if saved else None
    with StopRequest() as interrupted:
        while True:
            reached = limits.max_steps is not None and step >= limits.max_steps
            stop = reached or budget.expired() or interrupted.requested
            if ctx.any(stop):
                break
            values = train_step(step)
            step += 1
            means.add(values)
            if step % limits.log_every == 0:
                record = {**means.pop(), **(extra() if extra is not None else {})}
                metrics.log(step, record)
                if ctx.is_main:
                    shown = " | ".join(f"{k.split('/')[-1]} {record[k]:.4f}" for k in show if k in record)
                    log.info("step %d | %s | %.2f steps/s", step, shown, record["steps_per_s"])
            if ctx.any(saver.due()):
                save(step)
                saved_step = step
    if saved_step != step:
        save(step)
    ctx.barrier()  # no rank returns before the final checkpoint exists
    return step


def resume_state(run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, Path | None]:
    """The newest training state of a run folder and where it was read, or (None, None) for a fresh run."""
    from v2a.model.checkpoint import find_train_state, load_train_state

    found = find_train_state(run_dir)
    return (load_train_state(found), found) if found is not None else (None, None)


class EMA:
    """Exponential moving average of a model's parameters (integer buffers are copied as they are).

    The decay warms up as min(decay, (1 + n) / (10 + n)) over the first updates n, so the average is
    useful early in a run instead of being dominated by the random initialisation.

    Args:
        model: the (unwrapped) model to track.
        decay: weight of the old average per update once warmed up, e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        self.num_updates += 1
        current = unwrap(model).state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.lerp_(current[name].to(value.dtype), 1.0 - decay)
            else:
                value.copy_(current[name])

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights and the update count."""
        return {"weights": self.model.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (weights strictly)."""
        self.model.load_state_dict(state["weights"], strict=True)
        self.num_updates = int(state["num_updates"])


class MetricsLog:
    """Append-only JSON-lines metric log (one object per line; only the main rank writes).

    Args:
        path: the ``metrics.jsonl`` file; enabled: False on non-main ranks.
    """

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def log(self, step: int, values: dict[str, float]) -> None:
        """Write one record with ``step``, the wall time and ``values``."""
        if not self.enabled:
            return
        record = {
            "step": step,
            "time": round(time.time(), 3),
            **{k: _json_number(v) for k, v in values.items()},
        }
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _json_number(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a gap in the plot shows it
    return value


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    records = []
    p = Path(path)
    if not p.exists():
        return records
    for line in p.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def plot_metrics(
    metrics_path: str | os.PathLike, out_png: str | os.PathLike, *, groups: Sequence[str] = ("loss/", "val/")
) -> Path | None:
    """Plot every numeric series of a metrics log against step, one panel per key prefix.

    Args:
        metrics_path: the ``metrics.jsonl``.
        out_png: where to write the figure (atomically).
        groups: key prefixes; each gets a panel with a log-scaled y axis when all values are positive.
            A series with one value at step 0 (a baseline) is drawn as a dashed horizontal line.

    Returns:
        The PNG path, or None when there is nothing to plot yet.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    from v2a.io.atomic import atomic_output

    records = read_metrics(metrics_path)
    panels = []
    for prefix in groups:
        keys = sorted(
            {k for r in records for k, v in r.items() if k.startswith(prefix) and isinstance(v, int | float)}
        )
        if keys:
            panels.append((prefix, keys))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    for ax, (prefix, keys) in zip(axes[:, 0], panels, strict=True):
        positive = True
        for i, key in enumerate(keys):
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
            steps, values = zip(*points, strict=True)
            positive = positive and min(values) > 0
            if len(points) == 1 and steps[0] == 0:  # a baseline logged once at the start: a reference line
                ax.axhline(values[0], label=key[len(prefix) :], lw=1.0, ls="--", color=f"C{i % 10}")
            else:
                ax.plot(steps, values, label=key[len(prefix) :], lw=1.0, marker=".", ms=3, color=f"C{i % 10}")
        if positive:
            ax.set_yscale("log")
        ax.set_title(prefix.rstrip("/"))
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    out = Path(out_png)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


@contextlib.contextmanager
def maybe_no_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """``model.no_sync()`` for a DDP model when ``enabled`` (skip the gradient all-reduce), else nothing."""
    if enabled and isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    else:
        yield
