"""Shared parts of the evaluation benchmarks: score several systems on one manifest with one Scorer, and
write the results JSON plus the markdown table the README shows.

A *system* is a folder of generated files (``<video stem>*.wav``), or None for the manifest's own audio
(the ground-truth reference row).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from v2a.eval.runner import EvalOptions, Scorer, evaluate_manifest

RESULTS = Path(__file__).resolve().parent / "results"
TABLE_KEYS = (
    "onset_acc", "onset_ap", "onset_f1", "onset_f1_strict", "av_lag_s", "ref_lag_s", "av_offset_s", "fad", "sim",
    "kl", "class_acc", "class_acc_coarse", "diversity", "silence_ratio", "clip_ratio", "wer", "rtf",
)  # fmt: skip


def score_systems(
    manifest: Path, systems: dict[str, Path | None], options: EvalOptions
) -> tuple[dict[str, dict[str, float]], dict[str, list[str]], float]:
    """Evaluate each system on ``manifest``.

    Returns:
        ``(summaries, notes, seconds)``: the summary of each system, its notes, and the total wall time.
    """
    scorer = Scorer(options)
    summaries: dict[str, dict[str, float]] = {}
    notes: dict[str, list[str]] = {}
    start = time.perf_counter()
    for name, folder in systems.items():
        print(f"scoring {name} ...", flush=True)
        result = evaluate_manifest(manifest, audio_dir=folder, options=options, scorer=scorer, progress=True)
        summaries[name] = result.summary
        notes[name] = result.notes
    return summaries, notes, time.perf_counter() - start


def markdown_table(summaries: dict[str, dict[str, float]], keys: tuple[str, ...] = TABLE_KEYS) -> str:
    """One row per system, one column per metric that some system has."""
    shown = [k for k in keys if any(k in s for s in summaries.values())]
    lines = ["| system | " + " | ".join(shown) + " |", "| --- |" + " ---: |" * len(shown)]
    for name, summary in summaries.items():
        cells = []
        for key in shown:
            value = summary.get(key)
            cells.append("–" if value is None or not math.isfinite(value) else f"{value:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    name: str,
    summaries: dict[str, dict[str, float]],
    notes: dict[str, list[str]],
    info: dict[str, Any],
    keys: tuple[str, ...] = TABLE_KEYS,
) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (columns ``keys``); returns both paths."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        **info,
        "systems": summaries,
        "notes": notes,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(record, indent=2, allow_nan=False, default=_plain) + "\n")
    md_path = RESULTS / f"{name}.md"
    md_path.write_text(f"{info.get('title', name)}\n\n{markdown_table(summaries, keys)}")
    return json_path, md_path


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
