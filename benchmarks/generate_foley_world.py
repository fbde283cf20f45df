"""Generate the held-out Foley-world set with a generator checkpoint, for ``eval_foley_world.py`` to score.

For every clip of the manifest it writes, with sidecars ``{prompt, negative_prompt, seed, cost}``:

- ``OUT/ours/<stem>.<seed>.wav``: ``--variants`` variants, no prompt (pixels alone), default settings (each
  arm at the shipped guidance for its prompt unless ``--cfg`` is given);
- ``OUT/shuffled/<stem>.0.wav``: the same model given the *next* clip's video (the shuffled-video control:
  right kind of sound, wrong timing and content);
- ``OUT/caption/<stem>.<seed>.wav`` (with ``--caption-prompt``): the clip's own caption as the prompt,
  which separates what the picture fails to convey from what the generator cannot make at all;
- ``OUT/negative/<stem>.{0,1}.wav`` and ``<stem>.{0,1}.neg.wav``: without and with a negative prompt naming
  a sound class present in the clip (the first labelled event the classifier knows);
- ``OUT/oracle/<stem>.<seed>.wav`` (with ``--oracle-head``, for a generator with a semantic head): no prompt,
  the head's vectors replaced by the phrases of the labels truly on screen in each frame's shot, which is
  what a perfect visual reader would tell this generator (the ceiling of its visual route).

It also measures the negative prompt's relative effect directly (the classifier's mass of the named class
with vs without, ``neg_mass_cut``: target >= 0.5) and the end-to-end time per 8 s clip (decode, encode,
sample, vocode, watermark; the first clip, which loads the models, is excluded).

Usage::

    python benchmarks/generate_foley_world.py --checkpoint checkpoints/generator --out runs/gen/fw_test
    python benchmarks/eval_foley_world.py --system "ours=runs/gen/fw_test/ours" \
        --system "ours, shuffled video=runs/gen/fw_test/shuffled" --system "ours, neg. prompt=runs/gen/fw_test/negative"

Writes ``benchmarks/results/generate_foley_world.json`` (with the non-default settings in the name, e.g.
``generate_foley_world_cfg7.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from v2a.data.manifest import read_manifest
from v2a.encoders.semantic_head import label_phrase
from v2a.eval.prompt import class_mass, prompt_classes
from v2a.eval.scorer import EvalOptions, Scorer
from v2a.io.audio import save_audio
from v2a.model.dit import DEFAULT_SAMPLER, DEFAULT_STEPS, default_guidance
from v2a.model.flow import SAMPLERS
from v2a.pipeline import FoleyPipeline
from v2a.train.semantic_head_trainer import on_screen_labels

RESULTS = Path(__file__).parent / "results"


def _save(folder: Path, name: str, wav: np.ndarray, sr: int, sidecar: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_audio(folder / f"{name}.wav", wav, sr)
    (folder / f"{name}.json").write_text(json.dumps(sidecar))


def _cost(result, duration: float) -> dict:
    stages = [
        {"name": k, "seconds": v, "audio_s": duration} for k, v in result.timings.items() if k != "total"
    ]
    return {"stages": stages}


class OnScreenLabels(FoleyPipeline):
    """The pipeline with its semantic head's half of the visual tokens replaced by the mean phrase vector of the
    labels on screen in each frame's shot (frames without one keep the head's), for the row in ``meta``."""

    meta: dict | None = None

    def video_features(self, video, start_s: float, duration_s: float):
        features = super().video_features(video, start_s, duration_s)
        assert self.semantic_head is not None and self.meta is not None, (
            "--oracle-head needs a head generator"
        )
        semantic = features.semantic.copy()
        for i, labels in enumerate(on_screen_labels(self.meta, features.semantic_times + start_s)):
            if labels:
                mean = np.mean([self._phrase(label) for label in labels], axis=0)
                semantic[i, semantic.shape[1] // 2 :] = mean / np.linalg.norm(mean)
        return dataclasses.replace(features, semantic=semantic)

    def _phrase(self, label: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_phrases", {})
        if label not in cache:
            cache[label] = np.asarray(self.text_encoder.embed([label_phrase(label)]), dtype=np.float32)[0]
        return cache[label]


def negative_label(row, labels: list[str]) -> str | None:
    """A phrase naming a sound class present in the clip that the classifier knows, or None."""
    for event in row.events:
        phrase = str(event.get("label", "")).replace("/", " ").replace("_", " ")
        if phrase and prompt_classes(phrase, labels):
            return phrase
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest",
        type=Path,
        default=Path("data/fw/test200/manifest.jsonl"),
        help="the held-out set (default: all 200 test clips; data/fw/test is its first 50)",
    )
    parser.add_argument("--checkpoint", default=None, help="generator checkpoint (default: the bundled one)")
    parser.add_argument("--out", type=Path, default=Path("runs/gen/fw_test"))
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--sampler", default=DEFAULT_SAMPLER, choices=SAMPLERS)
    parser.add_argument(
        "--cfg", type=float, default=None, help="video guidance scale (default: the shipped one, per prompt)"
    )
    parser.add_argument("--cfg-text", type=float, default=None, help="text guidance scale (default: --cfg)")
    parser.add_argument(
        "--negative-only",
        action="store_true",
        help="only the negative-prompt measurement (no ours/shuffled sets)",
    )
    parser.add_argument(
        "--caption-prompt", action="store_true", help="also generate with each clip's caption as the prompt"
    )
    parser.add_argument(
        "--oracle-head",
        action="store_true",
        help="also generate with the true on-screen labels in the semantic head's slot (a head generator only)",
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--name",
        default=None,
        help="results file name (default: generate_foley_world, plus each non-default setting)",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rows = read_manifest(args.manifest)[: args.limit]
    pipe = FoleyPipeline.from_pretrained(args.checkpoint, device="cpu")
    oracle = OnScreenLabels.from_pretrained(args.checkpoint, device="cpu") if args.oracle_head else None
    if oracle is not None and oracle.semantic_head is None:
        parser.error("--oracle-head needs a generator with a semantic head")
    scorer = Scorer(EvalOptions(metrics=("class",)))
    classifier = scorer.classifier
    sr = pipe.sample_rate
    common = dict(
        num_inference_steps=args.steps,
        method=args.sampler,
        guidance_scale=args.cfg,
        text_guidance_scale=args.cfg_text,
        progress=False,
    )
    seconds, masses = [], []
    for i, row in enumerate(rows):
        stem = Path(row.video).stem
        t0 = time.perf_counter()
        res = pipe(row.video, num_waveforms_per_prompt=args.variants, seed=0, **common)
        if i > 0:
            seconds.append(time.perf_counter() - t0)
        for wav, seed in zip(res.waveforms if not args.negative_only else [], res.seeds, strict=False):
            _save(
                args.out / "ours",
                f"{stem}.{seed}",
                wav,
                sr,
                {"seed": seed, "cost": _cost(res, res.duration_s)},
            )
        if not args.negative_only:
            other = rows[(i + 1) % len(rows)]
            shuf = pipe(other.video, duration=row.duration_s, seed=0, **common)
            _save(args.out / "shuffled", f"{stem}.0", shuf.waveforms[0], sr, {"seed": 0})
        if args.caption_prompt:
            cap = pipe(
                row.video, prompt=row.caption, num_waveforms_per_prompt=args.variants, seed=0, **common
            )
            for wav, seed in zip(cap.waveforms, cap.seeds, strict=True):
                _save(args.out / "caption", f"{stem}.{seed}", wav, sr, {"seed": seed, "prompt": row.caption})
        if oracle is not None:
            oracle.meta = {"shots": row.extra.get("shots"), "events": row.events}
            truth = oracle(row.video, num_waveforms_per_prompt=args.variants, seed=0, **common)
            for wav, seed in zip(truth.waveforms, truth.seeds, strict=True):
                _save(args.out / "oracle", f"{stem}.{seed}", wav, sr, {"seed": seed})
        negative = negative_label(row, classifier.labels)
        if negative is None:
            continue
        neg = pipe(row.video, negative_prompt=negative, num_waveforms_per_prompt=2, seed=0, **common)
        before, after = [], []
        for k in range(2):
            _save(
                args.out / "negative", f"{stem}.{k}", res.waveforms[k % len(res.waveforms)], sr, {"seed": k}
            )
            _save(args.out / "negative", f"{stem}.{k}.neg", neg.waveforms[k], sr,
                  {"seed": k, "negative_prompt": negative})  # fmt: skip
            classes = prompt_classes(negative, classifier.labels)
            plain = res.waveforms[k % len(res.waveforms)]
            before.append(class_mass(classifier, scorer.features(plain)[1], classes))
            after.append(class_mass(classifier, scorer.features(neg.waveforms[k])[1], classes))
        masses.append((float(np.mean(before)), float(np.mean(after)), negative))
        print(f"{i + 1}/{len(rows)} {stem}: {seconds[-1] if seconds else 0:.1f} s; neg '{negative}' "
              f"{masses[-1][0]:.3f} -> {masses[-1][1]:.3f}", flush=True)  # fmt: skip
    before = float(np.mean([m[0] for m in masses])) if masses else float("nan")
    after = float(np.mean([m[1] for m in masses])) if masses else float("nan")
    summary = {
        "checkpoint": args.checkpoint or "bundled",
        "clips": len(rows),
        "variants": args.variants,
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg": args.cfg
        if args.cfg is not None
        else {"without_prompt": default_guidance(False), "with_prompt": default_guidance(True)},
        "cfg_text": args.cfg_text if args.cfg_text is not None else args.cfg,
        "threads": args.threads,
        "seconds_per_clip_2_variants_median": float(np.median(seconds)) if seconds else None,
        "negative_prompt_clips": len(masses),
        "neg_class_mass_without": before,
        "neg_class_mass_with": after,
        "neg_mass_cut": (before - after) / before if before > 0 else None,
    }
    RESULTS.mkdir(exist_ok=True)
    name = args.name or default_name(args)
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def default_name(args: argparse.Namespace) -> str:
    """``generate_foley_world`` plus every sampling setting that differs from the shipped default, so runs
    with other settings never overwrite the defaults' file (e.g. ``generate_foley_world_cfg7_cfgtext5``)."""
    name = "generate_foley_world"
    if (args.sampler, args.steps) != (DEFAULT_SAMPLER, DEFAULT_STEPS):
        name += f"_{args.sampler}{args.steps}"
    if args.cfg is not None:
        name += f"_cfg{args.cfg:g}"
    if args.cfg_text is not None:
        name += f"_cfgtext{args.cfg_text:g}"
    return name


if __name__ == "__main__":
    main()
