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
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from v2a.errors import InputError


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
