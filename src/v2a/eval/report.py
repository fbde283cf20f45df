"""The HTML report of an evaluation run (``v2a eval ... --report out.html``).

One self-contained folder: ``out.html`` plus ``out_files/`` with, per clip, the video with the first
generated track muxed into a copy (video stream copied, AAC audio) and its middle frame as the poster, the
generated and reference tracks as FLAC for the audio players, and a PNG of their log-mel spectrograms with
the clip's events marked. The page starts with the summary table and notes and the class metric per
category, then one section per clip with its metric table (one column per track).
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError
from v2a.eval.breakdown import category_breakdown
from v2a.eval.inputs import fit_length, load_track
from v2a.eval.results import ClipResult, EvalResult
from v2a.io.atomic import atomic_output, check_output_path
from v2a.io.audio import load_audio, save_audio
from v2a.io.mux import mux
from v2a.io.video import read_video

SR = DEFAULT_SPEC.sample_rate
_HIDDEN = {"file", "path", "prompt", "negative_prompt", "seed"}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin: 0 0 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
section { border-top: 2px solid #ddd; padding: 14px 0; }
.media { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
.players div { font-size: 13px; margin-bottom: 6px; } .caption { color: #555; font-size: 14px; }
.spec { max-width: 100%; } .note { color: #a60; font-size: 13px; }
"""


def write_report(
    result: EvalResult, out: str | os.PathLike, *, max_clips: int = 50, title: str = "Foley evaluation"
) -> Path:
    """Write the HTML report.

    Args:
        result: the run to show.
        out: the ``.html`` file; its media go to ``<out stem>_files/`` beside it (replaced).
        max_clips: show at most this many clips (the summary always covers all).
        title: page heading.

    Returns:
        The written HTML path.

    Raises:
        OutputError: ``out`` cannot be written safely.
        InputError: ``out`` does not end in .html.
    """
    out_path = check_report_path(out)
    files = out_path.parent / f"{out_path.stem}_files"
    if files.exists():
        shutil.rmtree(files)
    files.mkdir()
    sections = [_clip_section(clip, i, files) for i, clip in enumerate(result.clips[:max_clips])]
    shown = (
        "" if len(result.clips) <= max_clips else f"<p>Showing {max_clips} of {len(result.clips)} clips.</p>"
    )
    meta = "<br>".join(f"{html.escape(k)}: {html.escape(_meta(v))}" for k, v in result.meta.items())
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    summary = _table(["metric", "mean"], [[k, _fmt(v)] for k, v in sorted(result.summary.items())])
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{meta}</p>{notes}"
        f"<h2>Summary</h2>{summary}{_category_section(result)}{shown}{''.join(sections)}</body></html>\n"
    )
    with atomic_output(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_path


def check_report_path(out: str | os.PathLike) -> Path:
    """Validate a report path before any work: an ``.html`` file in an existing folder.

    Raises:
        InputError: not an .html name.
        OutputError: the folder is missing or ``out`` is a directory.
    """
    out_path = check_output_path(out)
    if out_path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"the report {out_path} must be an .html file")
    return out_path


def _category_section(result: EvalResult) -> str:
    """The class metric per category of the clips' labels (empty when no track was classified)."""
    rows = category_breakdown(result.clips)
    if not rows:
        return ""
    cells = [
        [cat, _fmt(r["clips"]), _fmt(r.get("recall")), _fmt(r["heard_share"])] for cat, r in rows.items()
    ]
    return (
        "<h2>Sound class per category</h2><p class='caption'>clips: clips whose labels include the category; "
        "recall: share of their tracks whose top category is it; heard: share of all tracks heard as it.</p>"
        + _table(["category", "clips", "recall", "heard"], cells)
    )


def _clip_section(clip: ClipResult, index: int, files: Path) -> str:
    rel = files.name
    stem = f"{index:03d}"
    tracks: list[tuple[str, np.ndarray]] = []
    for g in clip.generations:
        wav = _load(clip, g.get("path"))
        if wav is not None:
            tracks.append((g["file"], wav))
    reference = _load(clip, None) if clip.reference is not None else None
    players = []
    for j, (name, wav) in enumerate(tracks):
        save_audio(files / f"{stem}.gen{j}.flac", wav, SR)
        players.append(
            (f"generated: {name}" if name != "reference" else "ground truth", f"{stem}.gen{j}.flac")
        )
    if reference is not None and any(g.get("path") for g in clip.generations):
        save_audio(files / f"{stem}.ref.flac", reference, SR)
        players.append(("reference", f"{stem}.ref.flac"))
    video_html = _video(clip, tracks[0][1] if tracks else reference, files / f"{stem}.mp4", rel)
    panels = tracks[:1] + ([("reference", reference)] if reference is not None and tracks[:1] and
                           tracks[0][0] != "reference" else [])  # fmt: skip
    spec_html = ""
    if panels:
        spectrogram_png(panels, clip.events, clip.duration_s, files / f"{stem}.png")
        spec_html = f'<img class="spec" src="{rel}/{stem}.png" alt="spectrograms of {html.escape(clip.id)}">'
    audio_html = "".join(
        f'<div>{html.escape(label)}<br><audio controls preload="none" src="{rel}/{name}"></audio></div>'
        for label, name in players
    )
    keys = sorted({k for g in clip.generations for k in g if k not in _HIDDEN})
    extra = [k for k in ("diversity", "neg_prompt_drop") if k in clip.metrics]
    rows = [[k] + [_fmt(g.get(k)) for g in clip.generations] for k in keys]
    rows += [[k, _fmt(clip.metrics[k])] + [""] * (len(clip.generations) - 1) for k in extra]
    table = _table(["metric", *(g["file"] for g in clip.generations)], rows)  # one column per track
    caption = f'<p class="caption">{html.escape(clip.caption)}</p>' if clip.caption else ""
    return (
        f"<section><h2>{html.escape(clip.id)}</h2>{caption}<div class='media'>{video_html}"
        f"<div class='players'>{audio_html}</div></div>{spec_html}{table}</section>"
    )


def _load(clip: ClipResult, path: str | None) -> np.ndarray | None:
    """A generated file, or (path None) the clip's reference, mono at SR and clip length."""
    n = round(clip.duration_s * SR)
    if path is not None:
        return fit_length(load_audio(path, sr=SR)[0], n)
    if clip.reference is None:
        return None
    return load_track(clip.reference, clip.video, clip.duration_s, SR)


def _video(clip: ClipResult, wav: np.ndarray | None, out: Path, rel: str) -> str:
    """Mux ``wav`` into a copy of the clip's video and save its middle frame as the poster."""
    if wav is None:
        return ""
    try:
        mux(clip.video, (wav, SR), out, audio_codec="aac", overwrite=True)
        frame = read_video(clip.video, 1.0, start_s=clip.duration_s / 2, duration_s=0.5)[0].frames[0]
    except InputError as err:
        return f'<p class="note">video not shown: {html.escape(str(err))}</p>'
    poster = out.with_suffix(".jpg")
    Image.fromarray(frame).save(poster, quality=85)
    return (
        f'<video controls preload="metadata" width="320" poster="{rel}/{poster.name}" '
        f'src="{rel}/{out.name}"></video>'
    )


def spectrogram_png(
    panels: list[tuple[str, np.ndarray]], events: list[dict[str, Any]], duration_s: float, out: Path
) -> Path:
    """Draw stacked log-mel spectrograms with the events as vertical lines (Agg backend, PNG).

    Args:
        panels: (title, (S,) waveform at the AudioSpec rate) pairs, drawn top to bottom.
        events: dicts with ``start_s`` and ``label``.
        duration_s: the time axis length.
        out: the PNG file.

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.1 * len(panels)), squeeze=False, sharex=True)
    for ax, (title, wav) in zip(axes[:, 0], panels, strict=True):
        mel = log_mel(np.asarray(wav, dtype=np.float32)).numpy()  # (n_mels, T)
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, duration_s, 0, mel.shape[0]),
                  vmin=max(mel.max() - 10.0, mel.min()), vmax=mel.max())  # fmt: skip
        for e in events:
            ax.axvline(float(e["start_s"]), color="cyan", linewidth=0.8, alpha=0.8)
        ax.set_ylabel("mel band")
        ax.set_title(title, fontsize=9, loc="left")
    top = axes[0, 0]
    for e in events:
        top.text(float(e["start_s"]), top.get_ylim()[1], str(e["label"]), rotation=60, fontsize=6,
                 color="black", ha="left", va="bottom")  # fmt: skip
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def _meta(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
