"""Dialogue timing: is the speech made from a transcript intelligible, and does it move with the mouths?

Clips: held-out Foley-world talking heads (``--split test``), built with the Foley-world builder into a
temporary folder with only speakers and silent distractors (``FoleyConfig(kinds=("speaker",
"distractor"))``; cuts, camera moves, compression and real backdrops as usual), 6 s each. Only English
lines are kept, since the voice and the recogniser are English: lines Foley world speaks with espeak-ng
(English voices) and recorded English Tux Paint descriptions (``*_desc.ogg``; the corpus's other
recorded lines are in about 15 languages, and "Un kiwi." passes an ASCII test). Every clip is rendered
again in memory to read its ground truth: the drawn mouth opening per frame and the time of the line.

For each clip, ``v2a.dialogue.plan_dialogue(video, transcript)`` measures the mouths, places the line(s)
and speaks them (Piper). Its speech track is compared with:

- ``reference``: the clip's own sound (the line the mouth was drawn from, plus the scene's other sounds);
- ``random offset``: the same synthesised lines, each placed at a uniformly random start in the clip
  (``--controls`` draws per clip), the control the timing must beat;
- ``from start``: the same lines placed one after another from 0 s (what happens without mouth timing).

Metrics (``v2a.eval.speech``): ``lip_corr`` at zero lag between the speech envelope and the drawn mouth
(ground truth) and the mouth activity the face mesh measured (``lip_corr_seen``); the line's start error
against the true start; the IoU of the speech interval with the true one; WER of Whisper tiny.en on the
track (speech alone, before any Foley mix).

Usage: ``python benchmarks/dialogue_sync.py [--clips 15] [--seed 0] [--corpus data/sfx]
[--backgrounds data/backgrounds] [--engine auto]``. Results: ``benchmarks/results/dialogue_sync.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from v2a.data.foley_world.build import build_foley_world, render_clip
from v2a.data.foley_world.config import FoleyConfig
from v2a.data.manifest import read_manifest
from v2a.dialogue import plan_dialogue
from v2a.eval.speech import default_transcriber, is_english_like, lip_sync, word_error_rate
from v2a.io.atomic import atomic_output
from v2a.io.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dialogue_sync.json"
SR = 24_000
METHODS = ("reference", "ours", "random_offset", "from_start")
_LOUD = 0.01  # speech-interval threshold on the track (speech peaks at 0.7)


def english(row) -> bool:
    """Whether the clip's line is English: espeak-ng speech, or a recorded line from an English file."""
    (event,) = [e for e in row.events if e["label"].startswith("speech")]
    if event.get("origin") == "tts":
        return True
    stem = Path(str(event.get("file") or "")).name.split(".ogg")[0]
    return stem.endswith("_desc") and is_english_like(row.transcript)


def truth(seed: int, index: int, config: FoleyConfig) -> dict:
    """The drawn mouth (0..1 per frame, 0 off screen), the clip's frame rate and the line's (start, end)."""
    clip = render_clip(seed, index, config)
    (speaker,) = [e for shot in clip.scene.shots for e in shot.entities if e.kind == "speaker"]
    (event,) = [e for e in clip.events if e["label"].startswith("speech")]
    mouth = np.where(np.isnan(speaker.track.x), 0.0, speaker.track.variant / 5.0)
    return {"mouth": mouth, "fps": clip.fps, "line": (event["t"], event["end"])}


def interval(track: np.ndarray) -> tuple[float, float] | None:
    """First and last loud sample of a track, in seconds."""
    loud = np.flatnonzero(np.abs(track) > _LOUD)
    return (loud[0] / SR, (loud[-1] + 1) / SR) if loud.size else None


def iou(a: tuple[float, float] | None, b: tuple[float, float]) -> float:
    if a is None:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def place(wavs: list[np.ndarray], starts: list[float], n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    for wav, t in zip(wavs, starts, strict=True):
        at = round(t * SR)
        piece = wav[: max(0, n - at)]
        out[at : at + piece.size] += piece
    return out


def score(track: np.ndarray, gt: dict, seen: np.ndarray | None, *, timing: bool = True) -> dict[str, float]:
    """Lip correlation with the drawn and the measured mouth; start error and interval IoU of a speech-only
    track (``timing``; not for the reference, whose other sounds and noise blur the speech interval)."""
    row = {"lip_corr": lip_sync(gt["mouth"], gt["fps"], track, SR).get("lip_corr", float("nan"))}
    if timing:
        got = interval(track)
        row["start_error_s"] = abs(got[0] - gt["line"][0]) if got else float("nan")
        row["iou"] = iou(got, gt["line"])
    if seen is not None:
        row["lip_corr_seen"] = lip_sync(seen, 25.0, track, SR).get("lip_corr", float("nan"))
    return row


def run_clip(row, gt: dict, engine: str, controls: int, rng: np.random.Generator, asr) -> dict:
    t0 = time.perf_counter()
    plan = plan_dialogue(row.video, row.transcript, engine=engine)
    seconds = time.perf_counter() - t0
    ours = plan.track()
    n = ours.size
    seen = plan.mouth.activity if plan.mouth is not None else None
    reference, _ = load_audio(row.audio, sr=SR)
    reference = np.pad(reference, (0, max(0, n - reference.size)))[:n]
    wavs = [s.wav for s in plan.speeches]
    result = {
        "id": row.id,
        "transcript": row.transcript,
        "line_s": [round(x, 3) for x in gt["line"]],
        "placements": [
            {
                "start_s": round(p.start_s, 3),
                "target_s": round(p.target_s, 3),
                "rate": round(s.rate, 3),
                "source": p.source,
            }
            for p, s in zip(plan.placements, plan.speeches, strict=True)
        ],
        "face_fraction": plan.mouth.face_fraction if plan.mouth is not None else 0.0,
        "spans": [[round(a, 3), round(b, 3)] for a, b in (plan.mouth.spans() if plan.mouth else [])],
        "seconds": seconds,
        "reference": score(reference, gt, seen, timing=False),
        "ours": score(ours, gt, seen),
    }
    draws = []
    for _ in range(controls):
        starts = [rng.uniform(0, max(0.0, n / SR - w.size / SR)) for w in wavs]
        draws.append(score(place(wavs, starts, n), gt, seen))
    result["random_offset"] = {k: float(np.nanmean([d[k] for d in draws])) for k in draws[0]}
    starts, t = [], 0.0
    for w in wavs:
        starts.append(t)
        t += w.size / SR + 0.4
    result["from_start"] = score(place(wavs, starts, n), gt, seen)
    result["reference"]["wer"] = word_error_rate(row.transcript, asr.transcribe(reference, SR))
    result["ours"]["wer"] = word_error_rate(row.transcript, asr.transcribe(ours, SR))
    return result


def finite(obj):
    """The same structure with NaN/inf floats as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


def summarise(clips: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    for method in METHODS:
        keys = sorted({k for c in clips for k in c[method]})
        out[method] = {k: float(np.nanmean([c[method].get(k, np.nan) for c in clips])) for k in keys}
    return out


def table(summary: dict[str, dict[str, float]]) -> str:
    cols = ("lip_corr", "lip_corr_seen", "start_error_s", "iou", "wer")
    lines = [f"{'method':<15}" + "".join(f"{c:>15}" for c in cols)]
    for method, row in summary.items():
        cells = "".join(f"{row[c]:>15.3f}" if c in row else f"{'-':>15}" for c in cols)
        lines.append(f"{method:<15}{cells}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=15, help="English talking-head clips to score")
    ap.add_argument("--seed", type=int, default=0, help="Foley-world build seed (test split)")
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "sfx", help="SFX corpus (None if missing)")
    ap.add_argument("--backgrounds", type=Path, default=ROOT / "data" / "backgrounds")
    ap.add_argument("--engine", default="auto", help="speech engine: auto, piper, espeak-ng")
    ap.add_argument("--controls", type=int, default=5, help="random-offset placements per clip")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    config = FoleyConfig(
        duration_s=6.0, split="test", kinds=("speaker", "distractor"),
        corpus_dir=args.corpus if args.corpus.is_dir() else None,
        backgrounds_dir=args.backgrounds if args.backgrounds.is_dir() else None,
    )  # fmt: skip
    asr = default_transcriber()
    rng = np.random.default_rng(args.seed)
    clips, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="dialogue-sync-") as tmp:
        t0 = time.perf_counter()
        manifest = build_foley_world(
            tmp, count=3 * args.clips, seed=args.seed, workers=1, progress=False, config=config
        )
        build_s = time.perf_counter() - t0
        for row in read_manifest(manifest):
            if len(clips) == args.clips:
                break
            if not english(row):
                skipped.append(row.id)
                continue
            gt = truth(args.seed, int(row.extra["index"]), config)
            clips.append(run_clip(row, gt, args.engine, args.controls, rng, asr))
            c, ours = clips[-1], clips[-1]["ours"]
            print(
                f"{c['id']}: lip {ours['lip_corr']:.2f} (random {c['random_offset']['lip_corr']:.2f}) "
                f"start err {ours['start_error_s']:.2f} s  WER {ours['wer']:.2f}  {c['seconds']:.1f} s"
            )
    summary = summarise(clips)
    result = {
        "summary": summary,
        "clips": clips,
        "skipped_not_english": skipped,
        "meta": {
            "clips": len(clips), "seed": args.seed, "split": "test", "engine": args.engine,
            "controls": args.controls, "build_s": round(build_s, 1),
            "corpus": str(config.corpus_dir), "backgrounds": str(config.backgrounds_dir),
            "mean_plan_s": float(np.mean([c["seconds"] for c in clips])),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
            "command": "python benchmarks/dialogue_sync.py "
            + f"--clips {args.clips} --seed {args.seed} --engine {args.engine} --controls {args.controls}",
        },
    }  # fmt: skip
    with atomic_output(args.out) as tmp_path:
        tmp_path.write_text(json.dumps(finite(result), indent=2, allow_nan=False) + "\n")
    print(table(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
