"""What an evaluation run returns: per-clip scores, their means and notes, as objects, JSON or text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ClipResult:
    """Scores of one clip.

    Attributes:
        id: the clip id.
        video: its video file.
        reference: its reference audio file (None when it has none).
        duration_s: clip length.
        caption: the clip's caption.
        events: the clip's events (``start_s``, ``label`` and ``end_s`` when known).
        metrics: clip-level values (means over generations, plus diversity and negative-prompt drop).
        generations: one dict per scored track: ``file``, ``path`` (None for the reference), ``prompt``,
            ``negative_prompt``, ``seed`` and its metric values.
        targets: the clip's sound labels (its own and its events'), which the class metrics are scored against.
    """

    id: str
    video: str
    reference: str | None
    duration_s: float
    caption: str
    events: list[dict[str, Any]]
    metrics: dict[str, float]
    generations: list[dict[str, Any]]
    targets: list[str] = field(default_factory=list)


@dataclass
class EvalResult:
    """A whole run.

    Attributes:
        summary: metric name -> mean over the clips where it is defined (``fad`` and cost pooled), plus
            ``clips`` and ``generations`` counts.
        clips: per-clip results in manifest order.
        notes: what was skipped and why.
        meta: manifest, audio folder and settings.
    """

    summary: dict[str, float]
    clips: list[ClipResult]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""
        return _finite(
            {
                "summary": self.summary,
                "clips": [
                    {"id": c.id, "video": c.video, "reference": c.reference, "targets": c.targets, "metrics": c.metrics,
                     "generations": [{k: v for k, v in g.items() if k != "path"} for g in c.generations]}
                    for c in self.clips
                ],
                "notes": self.notes,
                "meta": self.meta,
            }
        )  # fmt: skip


def format_summary(result: EvalResult) -> str:
    """The summary as aligned ``name  value`` lines, then the notes (for the CLI without ``--json``)."""
    width = max((len(k) for k in result.summary), default=0)
    lines = [f"{key:<{width}}  {value:.4g}" for key, value in sorted(result.summary.items())]
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return _finite(value.item())
    return value
