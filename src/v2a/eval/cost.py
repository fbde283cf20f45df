"""Cost of generation, per stage: wall time, real-time factor and peak memory.

``CostMeter`` times named stages (decode, encode, sample, vocode, mux, ...). A stage's peak memory is the
highest resident set size seen while it ran, sampled every few milliseconds from ``/proc/self/statm``
(``getrusage``'s lifetime peak where /proc is missing), plus the CUDA allocator's peak when a GPU is in use.
A generator writes ``meter.to_dict()`` into the JSON sidecar of its output; ``summarize_costs`` pools those
records for ``v2a eval``: ``rtf`` = total seconds / seconds of audio made, ``rtf_<stage>`` per stage, and
``peak_mb`` (the largest stage peak).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_SAMPLE_S = 0.005


@dataclass(frozen=True)
class StageCost:
    """What one stage took.

    Attributes:
        name: the stage.
        seconds: wall-clock time.
        cpu_seconds: CPU time of the process (all threads).
        peak_rss_mb: highest resident memory while the stage ran, in MiB.
        peak_cuda_mb: highest CUDA memory allocated by torch, in MiB (None without CUDA).
        audio_s: seconds of audio the stage produced or handled (None: not given).
    """

    name: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    peak_cuda_mb: float | None = None
    audio_s: float | None = None

    @property
    def rtf(self) -> float | None:
        """Real-time factor: seconds taken per second of audio (None without ``audio_s``)."""
        return self.seconds / self.audio_s if self.audio_s else None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # no procfs: the lifetime peak is the best we have
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class _PeakSampler:
    """Background thread recording the highest RSS until stopped."""

    def __init__(self):
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_S):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _cuda():
    torch = sys.modules.get("torch")  # only when the caller already uses torch
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda
    return None


class CostMeter:
    """Collects ``StageCost`` records.

    Example::

        meter = CostMeter()
        with meter.stage("sample", audio_s=8.0):
            latents = sample(...)
        meter.to_dict()  # {"stages": [{"name": "sample", "seconds": ..., ...}]}
    """

    def __init__(self):
        self.stages: list[StageCost] = []

    @contextlib.contextmanager
    def stage(self, name: str, *, audio_s: float | None = None) -> Iterator[None]:
        """Time the enclosed block as stage ``name`` (``audio_s``: seconds of audio it is for)."""
        cuda = _cuda()
        if cuda is not None:
            cuda.synchronize()
            cuda.reset_peak_memory_stats()
        wall, cpu = time.perf_counter(), time.process_time()
        with _PeakSampler() as sampler:
            yield
            if cuda is not None:
                cuda.synchronize()
        self.stages.append(
            StageCost(
                name=name,
                seconds=time.perf_counter() - wall,
                cpu_seconds=time.process_time() - cpu,
                peak_rss_mb=sampler.peak / 2**20,
                peak_cuda_mb=cuda.max_memory_allocated() / 2**20 if cuda is not None else None,
                audio_s=audio_s,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: ``{"stages": [StageCost fields, ...]}``."""
        return {"stages": [asdict(s) for s in self.stages]}


def summarize_costs(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Pool cost records (``CostMeter.to_dict()`` of several runs).

    Returns:
        ``rtf`` (all stages' seconds / audio seconds of the stages that give ``audio_s``), ``rtf_<stage>``
        per stage with audio, ``seconds_<stage>`` (mean per run) and ``peak_mb`` (largest RSS or CUDA peak);
        empty when there are no stages.
    """
    seconds: dict[str, float] = {}
    audio: dict[str, float] = {}
    runs: dict[str, int] = {}
    peak = 0.0
    for record in records:
        for s in record.get("stages", []):
            name = str(s["name"])
            seconds[name] = seconds.get(name, 0.0) + float(s["seconds"])
            runs[name] = runs.get(name, 0) + 1
            if s.get("audio_s"):
                audio[name] = audio.get(name, 0.0) + float(s["audio_s"])
            peak = max(peak, float(s.get("peak_rss_mb") or 0.0), float(s.get("peak_cuda_mb") or 0.0))
    if not seconds:
        return {}
    out: dict[str, float] = {}
    produced = max(audio.values(), default=0.0)
    if produced > 0:
        out["rtf"] = sum(seconds.values()) / produced
    for name in seconds:
        out[f"seconds_{name}"] = seconds[name] / runs[name]
        if audio.get(name):
            out[f"rtf_{name}"] = seconds[name] / audio[name]
    out["peak_mb"] = peak
    return out
