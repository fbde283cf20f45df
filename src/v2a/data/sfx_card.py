"""The dataset card of the real SFX corpus: a markdown README written next to manifest.jsonl.

It states what a user needs to use and redistribute the corpus: counts, hours per label and kind,
licences, and the exact package names and versions that rebuild it.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from v2a.io.atomic import atomic_output

if TYPE_CHECKING:
    from v2a.data.sfx_corpus import CorpusSummary


def write_card(
    path: Path, summary: CorpusSummary, rows: list[dict], *, options: dict, failures: list[str]
) -> Path:
    """Write the dataset card for a finished build.

    Args:
        path: the card file (README.md in the corpus folder).
        summary: the build summary.
        rows: the manifest rows.
        options: build options to record (packages, full, workers, sample rate).
        failures: messages of sounds that could not be decoded.

    Returns:
        ``path``.
    """
    lines = _header(summary, rows, options)
    lines += _by_kind(rows)
    lines += _by_label(rows)
    lines += _by_license(rows)
    lines += _packages(summary)
    lines += _dropped(summary, failures)
    lines += _format_notes()
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _minutes(seconds: float) -> str:
    return f"{seconds / 60.0:.1f}"


def _header(summary: CorpusSummary, rows: list[dict], options: dict) -> list[str]:
    test = sum(1 for r in rows if r["split"] == "test")
    paired = sum(1 for r in rows if "image" in r)
    spoken = sum(1 for r in rows if "transcript" in r)
    packages = " ".join(p.name for p in summary.packages)
    return [
        "# Foley real SFX corpus",
        "",
        f"Built {datetime.date.today().isoformat()} by `v2a data sfx` "
        f"in {summary.seconds_taken / 60:.1f} min.",
        "",
        f"- **{summary.clips} clips**, **{summary.hours:.2f} hours**, **{len(summary.labels)} labels**, "
        f"{len(summary.packages)} packages",
        f"- audio: FLAC, 16-bit, mono, {options['sample_rate']} Hz; silence trimmed (-45 dB below the peak "
        "frame); files longer than 10 s split at their quietest moments into segments of at most 10 s",
        f"- split: {len(rows) - test} train / {test} test clips (a source file's hash decides, so all "
        "segments of one file share a split)",
        f"- {paired} clips come with a picture of the sounding object (Tux Paint stamps), "
        f"{spoken} with a transcript",
        f"- full build: {'yes' if options['full'] else 'no (large optional sources left out; add --full)'}",
        "",
        "Rebuild with the same packages (versions are listed below; Debian serves the current version of "
        "each, so check them against the table):",
        "",
        "```",
        f"v2a data sfx --out DIR --packages {packages}" + (" --full" if options["full"] else ""),
        "```",
        "",
    ]


def _by_kind(rows: list[dict]) -> list[str]:
    secs: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        secs[r["kind"]] += r["duration_s"]
        counts[r["kind"]] += 1
    lines = ["## Kinds", "", "| kind | clips | minutes |", "|---|---:|---:|"]
    lines += [f"| {k} | {counts[k]} | {_minutes(secs[k])} |" for k in sorted(secs)]
    return [*lines, ""]


def _by_label(rows: list[dict]) -> list[str]:
    secs: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    packages: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        secs[r["label"]] += r["duration_s"]
        counts[r["label"]] += 1
        packages[r["label"]].add(r["package"])
    lines = [
        "## Labels",
        "",
        "Labels are `category/subtype`, taken from file and folder names by the rules in "
        "`v2a/data/taxonomy.py` (or from the package's context, e.g. speech prompts, sound-font programs).",
        "",
        "| label | clips | minutes | hours | packages |",
        "|---|---:|---:|---:|---|",
    ]
    for label in sorted(secs):
        names = sorted(packages[label])
        shown = ", ".join(names[:4]) + (f" +{len(names) - 4}" if len(names) > 4 else "")
        lines.append(
            f"| {label} | {counts[label]} | {_minutes(secs[label])} | {secs[label] / 3600:.3f} | {shown} |"
        )
    return [*lines, ""]


def _by_license(rows: list[dict]) -> list[str]:
    secs: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        secs[r["license"]] += r["duration_s"]
        counts[r["license"]] += 1
    lines = [
        "## Licences",
        "",
        "Per clip in the manifest's `license` field (from the package's DEP-5 copyright file, the most "
        "specific `Files:` stanza that matches, or the licence a container stores per sound). The full "
        "copyright files are in `licenses/`. Respect attribution and share-alike terms when redistributing.",
        "",
        "| licence | clips | minutes |",
        "|---|---:|---:|",
    ]
    for name in sorted(secs, key=lambda n: -secs[n]):
        lines.append(f"| {name} | {counts[name]} | {_minutes(secs[name])} |")
    return [*lines, ""]


def _packages(summary: CorpusSummary) -> list[str]:
    lines = [
        "## Packages",
        "",
        "| package | version | registry | download MB | clips | minutes | unlabelled | licence |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for p in summary.packages:
        lines.append(
            f"| {p.name} | {p.version} | {p.registry} | {p.archive_bytes / 1e6:.1f} | {p.clips} | "
            f"{_minutes(p.seconds)} | {p.unlabelled} | {p.license} |"
        )
    return [*lines, ""]


def _dropped(summary: CorpusSummary, failures: list[str]) -> list[str]:
    lines = ["## Left out", "", "| reason | count |", "|---|---:|"]
    lines += [f"| {reason} | {count} |" for reason, count in sorted(summary.dropped.items())]
    lines += [
        "",
        "`unlabelled`: no taxonomy rule matched the name (examples per package in corpus.json); "
        "`duplicate`: a bit-identical or near-identical clip (log-mel fingerprint cosine >= 0.97, durations "
        "within 15 %) came earlier in build order; `over_max_segments`: long music and ambience files keep "
        "their first segments only; `silent`: peak below -60 dBFS; `too_short`: under 0.1 s after trimming.",
        "",
    ]
    if failures:
        lines += ["Undecodable files (first 20):", ""]
        lines += [f"- {f}" for f in failures[:20]]
        lines.append("")
    return lines


def _format_notes() -> list[str]:
    return [
        "## Manifest format",
        "",
        "`manifest.jsonl`, one JSON object per clip:",
        "",
        "| field | meaning |",
        "|---|---|",
        "| path | FLAC file, relative to this folder |",
        "| label | `category/subtype` |",
        "| tags | descriptive words from the source path |",
        "| package | Debian package (or PyPI project) the sound comes from |",
        "| license | licence of the source file |",
        "| duration_s | clip length in seconds |",
        "| rms_db | RMS level of the clip in dBFS |",
        "| kind | sfx, ambience, speech, music or ui |",
        "| source | path of the source file inside the package (`container/member` for game archives, "
        "`font.sf2#bank:program:variant` for rendered sound-font phrases) |",
        "| split | train or test |",
        "| segment | index of this segment within its source file |",
        "| augmented | always false here (no synthetic changes) |",
        "| transcript | (speech only) what is said |",
        "| image | (Tux Paint stamps only) PNG of the object that makes the sound, relative to this folder |",
        "",
    ]
