"""`evaluate_manifest`: ground truth is the ceiling, corrupted generations score worse on every metric
group, and the JSON/summary/report outputs hold what the CLI prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_clips import SR, shift, write_clip_manifest

from v2a.errors import InputError
from v2a.eval.breakdown import category_breakdown
from v2a.eval.runner import EvalOptions, Scorer, evaluate_manifest, format_summary
from v2a.io.audio import save_audio


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    """One Scorer for the module, so references are embedded and videos read only once."""
    return Scorer(EvalOptions(metrics=("onset", "sync", "lag", "embedding", "class", "prompt", "quality")))


@pytest.fixture(scope="module")
def manifest(clips):
    return write_clip_manifest(clips[0].video.parent / "manifest.jsonl", clips)


@pytest.fixture(scope="module")
def corrupted(clips, tmp_path_factory):
    """One folder per corruption, each with a file per clip named after its video."""
    root = tmp_path_factory.mktemp("generated")
    rng = np.random.default_rng(0)
    kinds = {
        "shifted": lambda i, c: shift(c.wav, 0.4),
        "shuffled": lambda i, c: clips[(i + 1) % len(clips)].wav,
        "noise": lambda i, c: np.clip(0.2 * rng.standard_normal(c.wav.size), -1, 1).astype(np.float32),
        "silence": lambda i, c: np.zeros_like(c.wav),
    }
    folders = {}
    for kind, make in kinds.items():
        folders[kind] = root / kind
        folders[kind].mkdir()
        for i, clip in enumerate(clips):
            save_audio(folders[kind] / f"{clip.id}.wav", make(i, clip), SR)
    return folders


def test_ground_truth_is_the_ceiling_and_corruptions_move_each_metric_the_right_way(
    manifest, corrupted, scorer
):
    options = scorer.options
    gt = evaluate_manifest(manifest, options=options, scorer=scorer).summary
    assert gt["clips"] == 3 and gt["generations"] == 3
    assert gt["onset_acc"] == 1.0 and gt["onset_f1_strict"] == 1.0
    assert gt["av_lag_s"] < 0.05 and gt["ref_lag_s"] < 0.01
    assert gt["fad"] == pytest.approx(0.0, abs=1e-3) and gt["sim"] == pytest.approx(1.0)
    assert gt["kl"] == pytest.approx(0.0, abs=1e-6) and gt["silence_ratio"] < 0.9
    runs = {k: evaluate_manifest(manifest, audio_dir=d, options=options, scorer=scorer).summary
            for k, d in corrupted.items()}  # fmt: skip

    assert runs["shifted"]["onset_f1_strict"] == 0.0 and runs["shifted"]["onset_acc"] < gt["onset_acc"]
    assert runs["shifted"]["av_lag_s"] == pytest.approx(0.4, abs=0.08)
    assert runs["shifted"]["ref_lag_s"] == pytest.approx(0.4, abs=0.02)
    assert runs["shuffled"]["onset_f1"] < gt["onset_f1"] and runs["shuffled"]["sim"] < gt["sim"]
    assert runs["shuffled"]["kl"] > gt["kl"]
    for kind in ("noise", "silence"):
        assert runs[kind]["fad"] > 1.0 and runs[kind]["sim"] < runs["shuffled"]["sim"]
        assert runs[kind]["kl"] > gt["kl"] and runs[kind]["onset_f1"] < gt["onset_f1"]
        assert runs[kind]["class_acc_coarse"] <= gt["class_acc_coarse"]
    assert runs["silence"]["silence_ratio"] == 1.0 and runs["silence"]["loudness_lufs"] == -70.0
    assert "av_lag_s" not in runs["silence"] and "av_offset_s" not in runs["silence"]  # undefined for silence


def test_seeds_prompts_and_negative_prompts(clips, manifest, scorer, tmp_path):
    clip = clips[0]
    rng = np.random.default_rng(1)
    save_audio(tmp_path / f"{clip.id}_s0.wav", clip.wav, SR)
    save_audio(tmp_path / f"{clip.id}_s1.wav", shift(clip.wav, 0.05), SR)
    save_audio(
        tmp_path / f"{clip.id}_neg.wav", 0.2 * rng.standard_normal(clip.wav.size).astype(np.float32), SR
    )
    for name, side in (("s0", {"prompt": "wood knocks", "seed": 0}), ("s1", {"prompt": "wood knocks", "seed": 1}),
                       ("neg", {"prompt": "wood knocks", "negative_prompt": "impact"})):  # fmt: skip
        (tmp_path / f"{clip.id}_{name}.json").write_text(json.dumps(side))
    result = evaluate_manifest(manifest, audio_dir=tmp_path, options=scorer.options, scorer=scorer)
    assert [c.id for c in result.clips] == [clip.id] and "not scored" in result.notes[0]
    scored = result.clips[0]
    assert len(scored.generations) == 3 and scored.metrics["diversity"] > 0
    by_file = {g["file"]: g for g in scored.generations}
    assert by_file[f"{clip.id}_s0.wav"]["prompt_match"] == 1.0
    assert by_file[f"{clip.id}_neg.wav"]["prompt_match"] == 0.0
    assert scored.metrics["neg_prompt_drop"] > 0.3  # the negative prompt took the impacts away
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    stored = {g["file"]: g for g in data["clips"][0]["generations"]}
    assert stored[f"{clip.id}_s0.wav"]["seed"] == 0 and "path" not in stored[f"{clip.id}_s0.wav"]


def test_summary_text_and_errors(manifest, scorer, tmp_path):
    result = evaluate_manifest(manifest, options=EvalOptions(metrics=("quality",), limit=1))
    assert result.summary["clips"] == 1 and "onset_acc" not in result.summary
    assert "silence_ratio" in format_summary(result)
    with pytest.raises(InputError, match="no clip to score"):
        evaluate_manifest(manifest, audio_dir=tmp_path, options=scorer.options, scorer=scorer)
    with pytest.raises(InputError, match="unknown metric group"):
        EvalOptions(metrics=("onset", "vibes"))


def test_the_learned_offset_estimator_is_called_with_the_video_and_track(clips, manifest):
    calls = []

    def fake(video, wav, sr):
        calls.append((str(video), wav.shape, sr))
        return -0.25

    options = EvalOptions(metrics=("sync",), limit=2)
    summary = evaluate_manifest(
        manifest, options=options, scorer=Scorer(options, offset_estimator=fake)
    ).summary
    assert summary["av_offset_s"] == 0.25
    assert calls == [(str(c.video), (round(c.duration_s * SR),), SR) for c in clips[:2]]


def test_the_class_metric_per_category_names_what_each_system_is_heard_as(manifest, corrupted, scorer):
    gt = evaluate_manifest(manifest, options=scorer.options, scorer=scorer)
    assert all(c.targets and all(t.startswith("impact") for t in c.targets) for c in gt.clips)
    rows = category_breakdown(gt.clips)
    assert (
        next(iter(rows)) == "impact"
        and rows["impact"]["clips"] == 3
        and rows["impact"]["target_share"] == 1.0
    )
    assert rows["impact"]["recall"] == pytest.approx(gt.summary["class_acc_coarse"])
    assert sum(r["heard_share"] for r in rows.values()) == pytest.approx(1.0)
    assert all(
        "recall" not in r for cat, r in rows.items() if cat != "impact"
    )  # heard, but on no clip's list
    silent = evaluate_manifest(
        manifest, audio_dir=corrupted["silence"], options=scorer.options, scorer=scorer
    )
    assert category_breakdown(silent.clips) == {
        "impact": {"clips": 3.0, "target_share": 1.0, "recall": 0.0, "heard_share": 0.0}
    }
    stored = gt.to_dict()["clips"][0]
    assert stored["targets"] == gt.clips[0].targets and "top_category" in stored["generations"][0]
    quiet = evaluate_manifest(manifest, options=EvalOptions(metrics=("quality",)))
    assert category_breakdown(quiet.clips) == {}
