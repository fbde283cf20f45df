"""Score a manifest: the engine of ``v2a eval``.

For each clip of a manifest (the ``v2a.data.manifest`` format) the runner scores either the clip's own
audio (ground truth: the ceiling every model is compared with) or, given ``audio_dir``, the generated files
of that clip (see ``v2a.eval.inputs``), always with the same code path. Metric groups:

========== ==================================================================================================
onset      ``onset_acc/ap/f1`` (±0.3 s) and ``*_strict`` (±0.05 s) against the clip's event times
sync       ``av_lag_s`` (|weight-free envelope-vs-motion lag|, with ``av_lag_conf``) and ``av_offset_s``
           (|offset| from the learned sync estimator, when it is installed); reads the video; both are
           undefined (left out) for a silent track
lag        ``ref_lag_s`` (|lag behind the reference audio|, from onset envelopes; audio only)
embedding  ``fad`` (Fréchet distance of aisfx block embeddings, generated set vs reference set), ``sim``
           (cosine similarity to the clip's reference), ``diversity`` (across a clip's generations)
class      ``class_acc`` / ``class_acc_coarse`` (classifier top label / category among the clip's labels)
           and ``kl`` (KL(reference posterior || generated posterior))
prompt     ``prompt_match``, ``prompt_prob`` and ``neg_prompt_drop`` for prompted generations
quality    ``clip_ratio``, ``silence_ratio``, ``loudness_lufs``, ``peak_db``
speech     ``wer`` (Whisper tiny.en vs the clip's transcript, English transcripts only) and ``lip_corr`` /
           ``lip_lag_s`` (vs the row's ``mouth_activity``)
cost       ``rtf``, ``rtf_<stage>``, ``seconds_<stage>``, ``peak_mb`` from the generations' sidecars
========== ==================================================================================================

A clip's value of a metric is the mean over its generations; the summary is the mean over the clips where
the metric is defined (e.g. onset metrics only on clips with onset events), with ``fad`` and the cost
figures pooled over the whole set. ``notes`` says what was skipped and why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from tqdm import tqdm

from v2a.data.manifest import ClipRow, read_manifest
from v2a.errors import InputError
from v2a.eval.classifier import SILENT_PEAK, kl_divergence, label_match, top_category
from v2a.eval.cost import summarize_costs
from v2a.eval.diversity import pairwise_diversity
from v2a.eval.fad import cosine_similarity, frechet_distance
from v2a.eval.inputs import Generation, find_generations, load_generation
from v2a.eval.onset import onset_metrics
from v2a.eval.prompt import negative_prompt_drop, prompt_adherence
from v2a.eval.quality import quality_metrics
from v2a.eval.results import ClipResult, EvalResult, format_summary
from v2a.eval.scorer import METRIC_GROUPS, SR, EvalOptions, Scorer
from v2a.eval.speech import is_english_like, lip_sync, mouth_activity, word_error_rate
from v2a.eval.sync import av_lag, reference_lag

__all__ = [
    "METRIC_GROUPS",
    "EvalOptions",
    "EvalResult",
    "Scorer",
    "evaluate_manifest",
    "evaluate_rows",
    "format_summary",
]


def evaluate_manifest(
    manifest: str | os.PathLike,
    *,
    audio_dir: str | os.PathLike | None = None,
    options: EvalOptions | None = None,
    scorer: Scorer | None = None,
    progress: bool = False,
) -> EvalResult:
    """Score a manifest's clips: their own audio, or the generated files in ``audio_dir``.

    Args:
        manifest: the clip manifest (JSON Lines, ``v2a.data.manifest`` format).
        audio_dir: folder of generated files ``<video stem>*.wav`` (None: score the manifest's audio).
        options: metric groups and settings (None: ``EvalOptions()``, every group).
        scorer: models and cached reference features to reuse, built with the same ``options`` (None: a
            new Scorer).
        progress: show a progress bar.

    Returns:
        The per-clip scores, their means and notes.

    Raises:
        InputError: unreadable manifest, audio folder or audio file; no clip to score.
        ModelUnavailableError: a model a requested metric group needs is missing.
    """
    options = options or EvalOptions()
    rows = read_manifest(manifest)
    if options.limit is not None:
        rows = rows[: options.limit]
    generations = find_generations(audio_dir, rows) if audio_dir is not None else None
    result = evaluate_rows(rows, generations, options=options, scorer=scorer, progress=progress)
    result.meta.update(
        {"manifest": str(manifest), "audio_dir": None if audio_dir is None else str(audio_dir)}
    )
    return result


def evaluate_rows(
    rows: Iterable[ClipRow],
    generations: dict[str, list[Generation]] | None,
    *,
    options: EvalOptions | None = None,
    scorer: Scorer | None = None,
    progress: bool = False,
) -> EvalResult:
    """Score clips (see ``evaluate_manifest``).

    Args:
        rows: the clips.
        generations: clip id -> tracks to score; None scores each clip's reference audio.
        options: metric groups and settings.
        scorer: models to reuse.
        progress: show a progress bar.

    Returns:
        The run's result.
    """
    rows = list(rows)
    options = options or EvalOptions()
    scorer = scorer or Scorer(options)
    if scorer.options != options:
        raise ValueError("the scorer was built for other options; make a Scorer(options) for these")
    groups = set(options.metrics)
    notes: list[str] = []
    clips: list[ClipResult] = []
    missing = [r.id for r in rows if generations is not None and not generations.get(r.id)]
    if missing:
        notes.append(f"{len(missing)} clip(s) have no generated file and are not scored: {', '.join(missing[:5])}"
                     + (" ..." if len(missing) > 5 else ""))  # fmt: skip
    skipped = set(missing)
    todo = [r for r in rows if r.id not in skipped]
    if not todo:
        raise InputError("no clip to score: the manifest is empty or no generated file matches its videos")
    if generations is None:
        no_audio = [r.id for r in todo if r.audio is None]
        if no_audio:
            raise InputError(f"clip {no_audio[0]!r} has no reference audio to score; pass an audio folder")
    gen_blocks: list[np.ndarray] = []
    ref_blocks: list[np.ndarray] = []
    costs: list[dict] = []
    for row in tqdm(todo, desc="scoring clips", unit="clip", disable=not progress):
        gens = generations[row.id] if generations is not None else [Generation(None)]
        clip = _score_clip(row, gens, scorer, options, gen_blocks, ref_blocks)
        clips.append(clip)
        costs.extend(g.cost for g in gens if g.cost)
    summary = _summarize(clips)
    if "embedding" in groups and min(sum(map(len, gen_blocks)), sum(map(len, ref_blocks))) >= 2:
        summary["fad"] = frechet_distance(np.concatenate(gen_blocks), np.concatenate(ref_blocks))
    if "cost" in groups and costs:
        summary.update(summarize_costs(costs))
    summary["clips"] = float(len(clips))
    summary["generations"] = float(sum(len(c.generations) for c in clips))
    if "sync" in groups and scorer.offset_error:
        notes.append(f"av_offset_s skipped: {scorer.offset_error}")
    if "speech" in groups and scorer.transcriber_error:
        notes.append(f"wer skipped: {scorer.transcriber_error}")
    meta = {"metrics": list(options.metrics), "sample_rate": SR,
            "classifier": options.classifier or "bundled", "max_lag_s": options.max_lag_s}  # fmt: skip
    return EvalResult(summary=summary, clips=clips, notes=notes, meta=meta)


def _score_clip(
    row: ClipRow,
    gens: list[Generation],
    scorer: Scorer,
    options: EvalOptions,
    gen_blocks: list[np.ndarray],
    ref_blocks: list[np.ndarray],
) -> ClipResult:
    groups = set(options.metrics)
    ref = scorer.reference(row) if row.audio is not None else None
    if ref is not None and ref[1] is not None:
        ref_blocks.append(ref[1].blocks)
    targets = sorted(set(row.labels) | {str(e["label"]) for e in row.events})
    per_gen: list[dict[str, Any]] = []
    embeddings: list[np.ndarray] = []
    posteriors: list[tuple[Generation, np.ndarray]] = []
    for gen in gens:
        if gen.path is None:
            assert ref is not None
            wav, emb, probs = ref
        else:
            wav = load_generation(gen, row, SR)
            emb, probs = scorer.features(wav)
        values: dict[str, Any] = {}
        if "quality" in groups:
            values.update(quality_metrics(wav, SR))
        if "onset" in groups:
            values.update(onset_metrics(wav, SR, row.events))
        if "sync" in groups:
            values.update(_sync_metrics(row, wav, scorer, options))
        if "lag" in groups and ref is not None:
            rlag = reference_lag(wav, ref[0], SR, max_lag_s=options.max_lag_s)
            if math.isfinite(rlag.lag_s):
                values["ref_lag_s"] = abs(rlag.lag_s)
        if emb is not None:
            gen_blocks.append(emb.blocks)
            embeddings.append(emb.clip)
            if "embedding" in groups and ref is not None and ref[1] is not None:
                values["sim"] = cosine_similarity(emb.clip, ref[1].clip)
        if probs is not None:
            posteriors.append((gen, probs))
            if "class" in groups:
                values.update(label_match(scorer.classifier, probs, targets))
                values["top_label"] = scorer.classifier.labels[int(np.argmax(probs))]
                values["top_category"] = top_category(scorer.classifier, probs)
                if ref is not None and ref[2] is not None:
                    values["kl"] = kl_divergence(ref[2], probs)
            if "prompt" in groups and gen.prompt:
                values.update(prompt_adherence(scorer.classifier, probs, gen.prompt))
        if "speech" in groups:
            values.update(_speech_metrics(row, wav, scorer))
        per_gen.append({"file": gen.name, "path": None if gen.path is None else str(gen.path),
                        "prompt": gen.prompt, "negative_prompt": gen.negative_prompt, "seed": gen.seed,
                        **values})  # fmt: skip
    metrics = _mean_numbers(per_gen)
    if "embedding" in groups:
        div = pairwise_diversity(embeddings)
        if div is not None:
            metrics["diversity"] = div
    if "prompt" in groups:
        drop = _negative_drop(scorer, posteriors)
        if drop is not None:
            metrics["neg_prompt_drop"] = drop
    events = [{k: e[k] for k in ("start_s", "end_s", "label") if e.get(k) is not None} for e in row.events]
    return ClipResult(
        row.id, row.video, row.audio, row.duration_s, row.caption, events, metrics, per_gen, targets
    )


def _sync_metrics(row: ClipRow, wav: np.ndarray, scorer: Scorer, options: EvalOptions) -> dict[str, float]:
    out: dict[str, float] = {}
    lag = av_lag(wav, SR, scorer.motion(row.video), max_lag_s=options.max_lag_s)
    if math.isfinite(lag.lag_s):
        out["av_lag_s"] = abs(lag.lag_s)
        out["av_lag_conf"] = lag.confidence
    estimator = scorer.offset_estimator
    if estimator is not None and np.any(np.abs(wav) >= SILENT_PEAK):  # like av_lag: undefined for silence
        out["av_offset_s"] = abs(float(estimator(row.video, wav, SR)))
    return out


def _speech_metrics(row: ClipRow, wav: np.ndarray, scorer: Scorer) -> dict[str, float]:
    out: dict[str, float] = {}
    if is_english_like(row.transcript):
        transcriber = scorer.transcriber
        if transcriber is not None:
            out["wer"] = word_error_rate(row.transcript, transcriber.transcribe(wav, SR))
    mouth = mouth_activity(row.extra, f"clip row {row.id!r}")
    if mouth is not None:
        values, fps, start = mouth
        out.update(lip_sync(values, fps, wav, SR, start_s=start))
    return out


def _negative_drop(scorer: Scorer, posteriors: list[tuple[Generation, np.ndarray]]) -> float | None:
    """Mean drop over the clip's negative prompts, each against the same-prompt generations without one."""
    drops = []
    for negative in sorted({g.negative_prompt for g, _ in posteriors if g.negative_prompt}):
        with_neg = [p for g, p in posteriors if g.negative_prompt == negative]
        prompts = {g.prompt for g, _ in posteriors if g.negative_prompt == negative}
        without = [p for g, p in posteriors if not g.negative_prompt and g.prompt in prompts]
        drop = negative_prompt_drop(scorer.classifier, without, with_neg, negative)
        if drop is not None:
            drops.append(drop)
    return float(np.mean(drops)) if drops else None


def _mean_numbers(dicts: list[dict[str, Any]]) -> dict[str, float]:
    """Per key, the mean of the finite numbers (bools and strings skipped)."""
    values: dict[str, list[float]] = {}
    for d in dicts:
        for key, value in d.items():
            number = isinstance(value, int | float) and not isinstance(value, bool) and key != "seed"
            if number and math.isfinite(value):
                values.setdefault(key, []).append(float(value))
    return {key: float(np.mean(v)) for key, v in values.items()}


def _summarize(clips: list[ClipResult]) -> dict[str, float]:
    return _mean_numbers([c.metrics for c in clips])
