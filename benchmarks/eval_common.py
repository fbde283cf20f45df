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

from v2a.eval.breakdown import category_breakdown
from v2a.eval.runner import EvalOptions, Scorer, evaluate_manifest

Categories = dict[str, dict[str, dict[str, float]]]  # system -> category -> breakdown values

RESULTS = Path(__file__).resolve().parent / "results"
TABLE_KEYS = (
    "onset_acc", "onset_ap", "onset_f1", "onset_f1_strict", "av_lag_s", "ref_lag_s", "av_offset_s", "fad", "sim",
    "kl", "class_acc", "class_acc_coarse", "diversity", "silence_ratio", "clip_ratio", "wer", "rtf",
)  # fmt: skip


def score_systems(
    manifest: Path, systems: dict[str, Path | None], options: EvalOptions
) -> tuple[dict[str, dict[str, float]], dict[str, list[str]], float, Categories]:
    """Evaluate each system on ``manifest``.

    Returns:
        ``(summaries, notes, seconds, categories)``: the summary of each system, its notes, the total wall
        time, and each system's class metric per category (``v2a.eval.breakdown``; empty without classes).
    """
    scorer = Scorer(options)
    summaries: dict[str, dict[str, float]] = {}
    notes: dict[str, list[str]] = {}
    categories: Categories = {}
    start = time.perf_counter()
    for name, folder in systems.items():
        print(f"scoring {name} ...", flush=True)
        result = evaluate_manifest(manifest, audio_dir=folder, options=options, scorer=scorer, progress=True)
        summaries[name] = result.summary
        notes[name] = result.notes
        categories[name] = category_breakdown(result.clips)
    return summaries, notes, time.perf_counter() - start, categories


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


def category_table(categories: Categories) -> str:
    """One row per on-screen category, two columns per system: its recall and the share of tracks heard as it."""
    systems = [name for name, rows in categories.items() if rows]
    if not systems:
        return ""
    order: dict[str, dict[str, float]] = {}
    for name in systems:
        for cat, row in categories[name].items():
            order.setdefault(cat, row)
    header = "| category | clips | " + " | ".join(f"{n}: recall | {n}: heard" for n in systems) + " |"
    lines = [header, "| --- | ---: |" + " ---: | ---: |" * len(systems)]
    for cat, first in sorted(order.items(), key=lambda kv: (-kv[1]["clips"], kv[0])):
        cells = [f"{int(first['clips'])}"]
        for name in systems:
            row = categories[name].get(cat, {})
            cells.append("–" if "recall" not in row else f"{row['recall']:.2f}")
            cells.append(f"{row.get('heard_share', 0.0):.2f}")
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    name: str,
    summaries: dict[str, dict[str, float]],
    notes: dict[str, list[str]],
    info: dict[str, Any],
    keys: tuple[str, ...] = TABLE_KEYS,
    categories: Categories | None = None,
) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (columns ``keys``); returns both paths.

    ``categories`` (from ``score_systems``) adds the per-category table of the class metric below the main one.
    """
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        **info,
        "systems": summaries,
        **({"categories": categories} if categories else {}),
        "notes": notes,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(record, indent=2, allow_nan=False, default=_plain) + "\n")
    md_path = RESULTS / f"{name}.md"
    text = f"{info.get('title', name)}\n\n{markdown_table(summaries, keys)}"
    table = category_table(categories or {})
    if table:
        text += (
            "\nPer category of the clips' labels: how many clips have it, and per system the share of those clips'"
            " tracks whose top category (the class judge) is it (recall), and the share of all tracks heard as it"
            " (heard).\n\n" + table
        )
    md_path.write_text(text)
    return json_path, md_path


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
