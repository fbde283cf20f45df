"""`make demo`: generate 2 soundtracks for the bundled sample video with the bundled model, on CPU.

Writes ``OUT/bounce.<seed>.mp4`` (the video stream copied, the generated track muxed in, watermarked, with
provenance tags) and ``.wav`` for seeds 0 and 1, and ``OUT/index.html``: a listening page with both
videos, the sample's own soundtrack for comparison, spectrograms with the sample's events marked, the
watermark check of every track and the stage timings. ``OUT/summary.json`` holds the same facts.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

from v2a.errors import V2AError
from v2a.eval.report import spectrogram_png
from v2a.io.audio import load_video_audio
from v2a.io.video import probe
from v2a.pipeline import generate
from v2a.watermark import detect_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE_VIDEO = EXAMPLES / "bounce.mp4"
VARIANTS = 2


def _events(video: Path) -> list[dict]:
    """The sample's scripted events from ``<stem>.events.json`` beside it (``start_s``, ``label``), if any."""
    path = video.with_name(f"{video.stem}.events.json")
    if not path.is_file():
        return []
    try:
        events = json.loads(path.read_text())["events"]
        return [{"start_s": float(e["t"]), "label": str(e["label"])} for e in events]
    except (ValueError, KeyError, TypeError):
        return []


def run_demo(out_dir: Path, video: Path = SAMPLE_VIDEO, *, checkpoint: str | None = None) -> dict:
    """Generate the variants, check their watermarks and write the listening page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = probe(video)
    result = generate(
        video, checkpoint=checkpoint, device="cpu", num_waveforms_per_prompt=VARIANTS, seed=0,
        out_dir=out_dir, overwrite=True,
    )  # fmt: skip
    checks = [detect_file(files["wav"]).to_dict() for files in result.paths]
    panels = []
    if info.has_audio:
        panels.append(
            ("the sample's own soundtrack (reference)", load_video_audio(video, sr=result.sample_rate))
        )
    panels += [(f"generated, seed {s}", w) for s, w in zip(result.seeds, result.waveforms, strict=True)]
    spectrogram_png(panels, _events(video), result.duration_s, out_dir / "spectrograms.png")
    summary = {
        "input": info.to_dict(),
        "outputs": result.paths,
        "watermark": [{k: c[k] for k in ("detected", "p_value", "payload")} for c in checks],
        "result": result.to_dict(),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _write_page(out_dir / "index.html", video, summary)
    return summary


def _write_page(path: Path, video: Path, summary: dict) -> None:
    cards = []
    for files, mark, seed in zip(
        summary["outputs"], summary["watermark"], summary["result"]["seeds"], strict=True
    ):
        name = Path(files["mp4"]).name
        found = "watermark detected" if mark["detected"] else "NO watermark found"
        cards.append(
            f'<div class="card"><h3>seed {seed}</h3><video src="{html.escape(name)}" controls width="400"></video>'
            f"<p>{found} (p = {mark['p_value']:.1e}, payload {html.escape(str(mark['payload']))})</p></div>"
        )
    timings = summary["result"]["timings"]
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>Foley demo</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}.card{{display:inline-block;margin:8px;
vertical-align:top}}</style></head><body>
<h1>Foley demo: {VARIANTS} generated soundtracks</h1>
<p>Input: <code>{html.escape(video.name)}</code>, {summary["input"]["duration_s"]:.2f} s at
{summary["input"]["fps"]:.3f} fps. Model: the bundled default generator, on CPU, no prompt (the picture alone).
Every track is watermarked and the files carry provenance tags (<code>v2a probe</code> shows them).</p>
{"".join(cards)}
<h2>Spectrograms (cyan lines: the sample's scripted events)</h2><img src="spectrograms.png" width="100%">
<h2>Timings (seconds, both variants together)</h2><pre>{html.escape(json.dumps(timings, indent=2))}</pre>
</body></html>
"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default demo-out)")
    parser.add_argument(
        "--video", type=Path, default=SAMPLE_VIDEO, help="input video (default: bundled sample)"
    )
    parser.add_argument("--checkpoint", default=None, help="generator checkpoint (default: the bundled one)")
    args = parser.parse_args(argv)
    try:
        summary = run_demo(args.out, args.video, checkpoint=args.checkpoint)
    except V2AError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return err.exit_code
    for files, mark in zip(summary["outputs"], summary["watermark"], strict=True):
        print(f"wrote {', '.join(files.values())} (watermark detected: {mark['detected']})")
    t = summary["result"]["timings"]
    print(f"{VARIANTS} variants of {summary['result']['duration_s']:.1f} s in {t['total']:.1f} s on CPU")
    print(f"listening page: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
