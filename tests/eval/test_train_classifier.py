"""Training the classifier from a corpus folder: selection, procedural clips, cache, report, checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_clips import SR, impacts_at

from v2a.data.procedural_audio import noise_texture
from v2a.errors import InputError
from v2a.eval.classifier import load_classifier
from v2a.eval.embeddings import default_embedder
from v2a.eval.train_classifier import (
    PROCEDURAL_S,
    procedural_clip,
    procedural_labels,
    select_training_rows,
    train_classifier,
)
from v2a.io.audio import save_audio


def _corpus(folder):
    rng = np.random.default_rng(0)
    (folder / "audio").mkdir(parents=True)
    rows = []
    for i in range(10):
        for label in ("impact/wood", "weather/rain"):
            name = f"audio/{label.replace('/', '_')}_{i}.flac"
            wav = (impacts_at(np.sort(rng.uniform(0, 1.2, 2)), 1.5, "wood", seed=i) if label == "impact/wood"
                   else noise_texture("rain", 1.5, sample_rate=SR, rng=rng))  # fmt: skip
            save_audio(folder / name, wav, SR)
            rows.append({"path": name, "label": label, "split": "test" if i >= 8 else "train", "kind": "sfx"})
    rows.append({"path": "audio/impact_wood_0.flac", "label": "bell/ring", "split": "train", "kind": "sfx"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_train_from_a_corpus_folder(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "emb.npz"
    settings = {"max_per_label": 6, "max_blocks": 2, "procedural_per_label": 0, "progress": False,
                "round_trip": "none"}  # fmt: skip
    report = train_classifier(corpus, tmp_path / "clf", cache=cache, embedder=default_embedder(), **settings)
    assert report.labels == 2 and report.train_clips == 12 and report.test_clips == 4  # bell/ring: too few
    assert report.test_acc >= 0.75 and report.test_acc_coarse >= 0.75
    assert report.test_acc_round_trip is None and report.train_blocks == 12  # 1.5 s clips: one block each
    model = load_classifier(tmp_path / "clf")
    assert model.labels == ("impact/wood", "weather/rain")
    meta = json.loads((tmp_path / "clf" / "config.json").read_text())["meta"]
    assert meta["report"]["test_clips"] == 4 and meta["data"]["train_per_label"]["impact/wood"] == 6
    stamp = cache.stat().st_mtime_ns
    train_classifier(corpus, tmp_path / "clf2", cache=cache, embedder=default_embedder(), **settings)
    assert cache.stat().st_mtime_ns == stamp  # everything came from the cache


def test_round_trips_through_the_bundled_codec_train_and_test_beside_the_recordings(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "emb.npz"
    settings = {"max_per_label": 6, "max_blocks": 2, "procedural_per_label": 1, "progress": False}
    report = train_classifier(corpus, tmp_path / "clf", cache=cache, embedder=default_embedder(), **settings)
    assert report.labels == len(set(procedural_labels()) | {"impact/wood", "weather/rain"})
    assert report.train_clips == 12 + len(procedural_labels())
    # every clip's block twice: the recording's and the round trip's
    assert report.train_blocks == 2 * (12 + len(procedural_labels()))
    assert report.test_acc_coarse >= 0.75 and report.test_acc_coarse_round_trip >= 0.75
    meta = json.loads((tmp_path / "clf" / "config.json").read_text())["meta"]
    assert meta["data"]["round_trip"] == "codec" and meta["report"]["test_acc_coarse_round_trip"] >= 0.75
    assert set(meta["data"]["round_trip_models"]) == {"codec", "vocoder"}  # which bundle made the round trips
    with np.load(cache) as stored:
        keys = json.loads(str(stored["keys"]))
    models = meta["data"]["round_trip_models"]
    tag = f"codec-trip-{models['codec']}-{models['vocoder']}:"
    round_trips = sum(k.startswith(tag) for k in keys)
    assert round_trips == len(keys) // 2  # both copies cached, the round trips under the bundle's hashes


def test_an_unknown_round_trip_is_refused(tmp_path):
    with pytest.raises(InputError, match="round_trip"):
        train_classifier(_corpus(tmp_path / "corpus"), tmp_path / "clf", round_trip="vocoder", progress=False)


def test_selection_caps_and_drops_labels():
    rows = [{"label": "a/x", "split": "train", "path": str(i)} for i in range(10)]
    rows += [{"label": "b/y", "split": "train", "path": "b"}, {"label": "a/x", "split": "test", "path": "t"}]
    chosen = select_training_rows(rows, max_per_label=4, min_per_label=2)
    assert len(chosen) == 4 and {r["label"] for r in chosen} == {"a/x"}
    assert chosen == select_training_rows(rows, max_per_label=4, min_per_label=2)  # seeded


def test_procedural_clips_cover_foley_world_sounds():
    labels = procedural_labels()
    assert {
        "impact/plastic",
        "footstep/gravel",
        "glass/clink",
        "door/close",
        "weather/rain",
        "engine/car",
    } <= set(labels)
    for label in labels:
        wav = procedural_clip(label, np.random.default_rng(1), SR)
        assert wav.shape == (round(PROCEDURAL_S * SR),) and 0.01 < np.abs(wav).max() <= 1.0, label
