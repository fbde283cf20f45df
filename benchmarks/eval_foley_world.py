"""Evaluation benchmark on a held-out Foley-world set: ground truth, trivial baselines and any models.

Rows of the table:

- ``ground truth``: the clips' own soundtracks (the ceiling);
- ``baseline: random sfx at motion onsets``: one random corpus sound (train split) played at every motion
  onset of the video (``v2a.eval.baselines``), with its cost measured per clip;
- ``shuffled ground truth``: another clip's soundtrack (real sounds, unrelated timing and content);
- ``silence``: an all-zero track (the floor);
- ``ground truth via vocoder`` and ``ground truth via codec -> vocoder``: the clips' own soundtracks passed
  through the bundled audio representation (``v2a reconstruct --via vocoder|codec``): the ceiling of any
  generator that outputs codec latents, e.g. for sound class; ``--codec-ceiling NAME=CHECKPOINT`` adds the
  same row for another codec (e.g. one a candidate generator was trained with);
- one row per ``--system NAME=DIR`` (a folder of generated ``<video stem>*.wav`` files, sidecars optional).

Usage::

    python benchmarks/eval_foley_world.py --manifest data/fw/test200/manifest.jsonl --corpus data/sfx \
        [--system ours=runs/gen/fw_test] [--limit 50]

Writes ``benchmarks/results/foley_world.json`` and ``foley_world.md`` (the table the README shows).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from eval_common import score_systems, write_results
from v2a.audio.bundled import default_codec, default_vocoder
from v2a.audio.codec import Codec
from v2a.audio.reconstruct import reconstruct_waveform
from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import read_manifest
from v2a.eval.baselines import RandomOnsetBaseline
from v2a.eval.cost import CostMeter
from v2a.eval.inputs import load_reference
from v2a.eval.runner import EvalOptions
from v2a.io.audio import save_audio

SR = DEFAULT_SPEC.sample_rate


def make_baseline(rows, corpus: Path, out: Path) -> None:
    """Write the random-sound baseline's track (and a cost sidecar) for every clip."""
    baseline = RandomOnsetBaseline(corpus)
    for i, row in enumerate(rows):
        meter = CostMeter()
        with meter.stage("generate", audio_s=row.duration_s):
            wav, _ = baseline.generate(row.video, seed=i)
        stem = Path(row.video).stem
        save_audio(out / f"{stem}.wav", wav, SR)
        (out / f"{stem}.json").write_text(json.dumps({"seed": i, "cost": meter.to_dict()}))


def make_shuffled(rows, out: Path) -> None:
    """Give each clip the soundtrack of the next clip (cut or padded to its length)."""
    for i, row in enumerate(rows):
        other = rows[(i + 1) % len(rows)]
        wav = load_reference(other, SR)
        n = round(row.duration_s * SR)
        wav = np.pad(wav, (0, max(0, n - wav.size)))[:n]
        save_audio(out / f"{Path(row.video).stem}.wav", wav, SR)


def make_reconstructed(rows, vocoder_out: Path, codec_outs: dict[Path, Codec]) -> None:
    """Pass each clip's own soundtrack through the bundled vocoder alone, and through each codec then the vocoder.

    Args:
        rows: the clips.
        vocoder_out: folder for the vocoder-only reconstructions.
        codec_outs: folder -> the codec whose reconstructions (codec -> bundled vocoder) go there.
    """
    vocoder = default_vocoder()
    for row in rows:
        wav = load_reference(row, SR)
        rec = reconstruct_waveform(wav, via="vocoder", vocoder=vocoder)
        save_audio(vocoder_out / f"{Path(row.video).stem}.wav", rec, SR)
        for out, codec in codec_outs.items():
            rec = reconstruct_waveform(wav, via="codec", vocoder=vocoder, codec=codec)
            save_audio(out / f"{Path(row.video).stem}.wav", rec, SR)


def make_silence(rows, out: Path) -> None:
    for row in rows:
        save_audio(out / f"{Path(row.video).stem}.wav", np.zeros(round(row.duration_s * SR), np.float32), SR)


def reference_systems(
    rows: list, corpus: Path, tmp: Path, extra_codecs: dict[str, Codec]
) -> dict[str, Path | None]:
    """Make the reference rows' tracks under ``tmp``: ground truth, baselines and codec ceilings."""
    folders = {k: tmp / k for k in ("baseline", "shuffled", "silence", "vocoder", "codec")}
    for folder in folders.values():
        folder.mkdir()
    make_baseline(rows, corpus, folders["baseline"])
    make_shuffled(rows, folders["shuffled"])
    make_silence(rows, folders["silence"])
    codec_outs = {folders["codec"]: default_codec()}
    ceilings = {}
    for name, codec in extra_codecs.items():
        folder = tmp / f"codec-{len(ceilings)}"
        folder.mkdir()
        codec_outs[folder] = codec
        ceilings[f"ground truth via {name} codec -> vocoder"] = folder
    make_reconstructed(rows, folders["vocoder"], codec_outs)
    return {
        "ground truth": None,
        "baseline: random sfx at motion onsets": folders["baseline"],
        "shuffled ground truth": folders["shuffled"],
        "silence": folders["silence"],
        "ground truth via vocoder": folders["vocoder"],
        "ground truth via codec -> vocoder": folders["codec"],
        **ceilings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest",
        type=Path,
        default=Path("data/fw/test200/manifest.jsonl"),
        help="the held-out set (default: all 200 test clips; data/fw/test is its first 50)",
    )
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx"), help="SFX corpus for the baseline")
    parser.add_argument("--system", action="append", default=[], metavar="NAME=DIR", help="a model's outputs")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N clips")
    parser.add_argument("--name", default="foley_world", help="results file name")
    parser.add_argument(
        "--codec-ceiling", action="append", default=[], metavar="NAME=CHECKPOINT",
        help="another codec whose ground-truth round trip (codec -> bundled vocoder) is scored as a ceiling row",
    )  # fmt: skip
    parser.add_argument(
        "--systems-only", action="store_true",
        help="score only the --system folders, without the reference rows (an A/B of models in one run)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.systems_only and not args.system:
        parser.error("--systems-only needs at least one --system")
    if args.systems_only and args.codec_ceiling:
        parser.error("--codec-ceiling adds a reference row, which --systems-only leaves out")
    extra_codecs = {}
    for spec in args.codec_ceiling:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--codec-ceiling needs NAME=CHECKPOINT, got {spec!r}")
        extra_codecs[name] = Codec.from_checkpoint(path)

    rows = read_manifest(args.manifest)[: args.limit]
    options = EvalOptions(limit=args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        systems = {} if args.systems_only else reference_systems(rows, args.corpus, Path(tmp), extra_codecs)
        for spec in args.system:
            name, _, folder = spec.partition("=")
            if not folder:
                parser.error(f"--system needs NAME=DIR, got {spec!r}")
            systems[name] = Path(folder)
        summaries, notes, seconds, categories = score_systems(args.manifest, systems, options)
    title = f"Foley world held-out set `{args.manifest}` ({len(rows)} clips), scored by `v2a eval`"
    info = {"title": title, "manifest": str(args.manifest), "clips": len(rows), "seconds": round(seconds, 1)}
    json_path, md_path = write_results(args.name, summaries, notes, info, categories=categories)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
