"""Foley-world dataset builds: files and manifest schema, worker-count independence, split separation."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import soundfile as sf

from v2a.data.foley_world import FoleyConfig, build_foley_world
from v2a.data.manifest import read_manifest
from v2a.errors import InputError, OutputError

ROW_KEYS = {
    "id",
    "video",
    "audio",
    "caption",
    "transcript",
    "events",
    "fps",
    "duration_s",
    "split",
    "seed",
    "index",
}
EVENT_KEYS = {"t", "label", "source", "onset", "end", "on_screen", "origin", "file", "augmented"}


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames), float(stream.average_rate)


def _rows(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_manifest_rows_files_and_card(tmp_path, corpus_dir):
    manifest = build_foley_world(
        tmp_path / "fw",
        count=3,
        seed=1,
        corpus_dir=corpus_dir,
        size=96,
        duration_s=3.0,
        workers=1,
        progress=False,
    )
    rows = _rows(manifest)
    assert [r["index"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
        assert row["split"] == "train" and row["id"] == f"fw-train-s1-{row['index']:06d}"
        assert isinstance(row["caption"], str) and row["caption"]
        assert isinstance(row["transcript"], str)
        assert 12 <= row["fps"] <= 60 and row["duration_s"] == 3.0
        wav, sr = sf.read(manifest.parent / row["audio"])
        assert sr == 24_000 and wav.ndim == 1 and wav.size == 72_000
        frames, fps = _decode(manifest.parent / row["video"])
        assert frames.shape[2] == 96 and abs(fps - row["fps"]) < 1e-3
        assert frames.shape[0] == round(3.0 * row["fps"])
        times = [e["t"] for e in row["events"]]
        assert times == sorted(times)
        for event in row["events"]:
            assert set(event) >= EVENT_KEYS
            assert 0 <= event["t"] <= event["end"] <= 3.0 + 1e-6
            assert "/" in event["label"] and event["origin"] in ("corpus", "procedural", "tts")
            assert (event["file"] is not None) == (event["origin"] == "corpus")
    shared = read_manifest(manifest)  # the project's one clip-manifest reader accepts the rows
    assert [r.id for r in shared] == [r["id"] for r in rows]
    assert all(e["start_s"] == e["t"] for r in shared for e in r.events)
    card = (manifest.parent / "card.md").read_text()
    assert "| label | events | seconds |" in card and "--split train --seed 1 --count 3" in card


def test_worker_count_does_not_change_clips(tmp_path):
    one = build_foley_world(
        tmp_path / "a", count=2, seed=4, size=64, duration_s=2.0, workers=1, progress=False
    )
    two = build_foley_world(
        tmp_path / "b", count=2, seed=4, size=64, duration_s=2.0, workers=2, progress=False
    )
    for a, b in zip(_rows(one), _rows(two), strict=True):
        assert a == b
        assert np.array_equal(sf.read(one.parent / a["audio"])[0], sf.read(two.parent / b["audio"])[0])
        assert np.array_equal(_decode(one.parent / a["video"])[0], _decode(two.parent / b["video"])[0])


def test_train_clips_only_use_train_recordings_and_test_clips_only_test(tmp_path, corpus_dir):
    split_of = {r["path"]: r["split"] for r in _rows(corpus_dir / "manifest.jsonl")}
    used = {}
    for split in ("train", "test"):
        manifest = build_foley_world(
            tmp_path / split, count=6, seed=0, split=split, corpus_dir=corpus_dir, size=64, duration_s=4.0,
            workers=2, progress=False,
        )  # fmt: skip
        files = {f for row in _rows(manifest) for f in row["corpus_files"]}
        assert files, "the corpus should be used"
        assert {split_of[f] for f in files} == {split}
        used[split] = files
    assert not used["train"] & used["test"]


def test_corpus_picture_sources_appear_with_their_sound(corpus_dir):
    from v2a.data.foley_world import render_clip

    config = FoleyConfig(
        size=96, duration_s=4.0, fps=20.0, corpus_dir=corpus_dir, kinds=("stamp",), cuts=False
    )
    clip = render_clip(0, 0, config)
    stamps = [e for s in clip.scene.shots for e in s.entities if e.kind == "stamp"]
    assert stamps and all(c.label == "animal/dog" for e in stamps for c in e.cues)
    assert any(ev["label"] == "animal/dog" and ev["origin"] == "corpus" for ev in clip.events)
    assert "a dog barks" in clip.caption


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"count": 0}, InputError, "count"),
        ({"count": 2.5}, InputError, "count"),
        ({"seed": -3}, InputError, "seed"),
        ({"workers": 0}, InputError, "workers"),
        ({"split": "holdout"}, InputError, "split"),
        ({"size": 4096}, InputError, "size"),
        ({"backgrounds_dir": "/nonexistent"}, InputError, "backgrounds_dir"),
    ],
)
def test_bad_build_arguments(tmp_path, kwargs, error, message):
    args = {"count": 1, "seed": 0, "progress": False} | kwargs
    with pytest.raises(error, match=message):
        build_foley_world(tmp_path / "out", **args)


def test_output_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        build_foley_world(target, count=1, seed=0, progress=False)


def test_contact_sheet_shows_a_row_per_clip(tmp_path):
    from PIL import Image

    from v2a.data.foley_world import contact_sheet

    manifest = build_foley_world(
        tmp_path / "fw", count=2, seed=0, size=64, duration_s=2.0, workers=1, progress=False
    )
    sheet = contact_sheet(manifest, tmp_path / "sheet.png", clips=2, frames=3, width=64)
    with Image.open(sheet) as image:
        assert image.width == 3 * 68 and image.height > 2 * 36
        assert np.asarray(image).std() > 10  # real pictures, not a blank page


def test_speakers_also_say_recorded_lines_with_their_transcripts(corpus_dir):
    from v2a.data.foley_world import render_clip

    config = FoleyConfig(
        size=96, duration_s=4.0, fps=20.0, corpus_dir=corpus_dir, kinds=("speaker",), cuts=False
    )
    origins = set()
    for index in range(8):
        clip = render_clip(0, index, config)
        (event,) = [e for e in clip.events if e["label"] == "speech/voice"]
        origins.add(event["origin"])
        if event["origin"] == "corpus":
            assert event["file"] == "train/speech.flac" and clip.transcript == "this is the train split"
        else:
            assert event["origin"] == "tts" and clip.transcript
    assert origins == {"corpus", "tts"}
