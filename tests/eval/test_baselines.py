"""The random-sound-at-motion-onsets baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_clips import SR, impacts_at

from v2a.data.onsets import detect_onsets
from v2a.errors import InputError
from v2a.eval.baselines import RandomOnsetBaseline, motion_onsets
from v2a.eval.sync import video_motion
from v2a.io.audio import save_audio


def _corpus(folder, rows):
    (folder / "audio").mkdir()
    with (folder / "manifest.jsonl").open("w") as f:
        for name, split, kind in rows:
            save_audio(folder / "audio" / f"{name}.flac", impacts_at(np.array([0.0]), 0.5, "glass"), SR)
            f.write(
                json.dumps(
                    {"path": f"audio/{name}.flac", "label": "glass/clink", "split": split, "kind": kind}
                )
                + "\n"
            )
    return folder


def test_motion_onsets_find_most_landings(clips):
    for clip in clips:
        found = motion_onsets(video_motion(clip.video))
        nearest = np.abs(found[:, None] - clip.landings[None, :]).min(axis=0)
        assert np.mean(nearest < 0.1) >= 0.5, (clip.id, found, clip.landings)  # the low last bounces may hide


def test_baseline_plays_a_train_split_sound_at_the_motion_onsets(clips, tmp_path):
    corpus = _corpus(tmp_path, [("a", "train", "sfx"), ("b", "test", "sfx"), ("c", "train", "speech")])
    wav, placed = RandomOnsetBaseline(corpus).generate(clips[0].video, seed=3)
    assert wav.shape == (round(clips[0].duration_s * SR),) and np.abs(wav).max() <= 1.0
    assert placed and all(p["path"] == "audio/a.flac" for p in placed)  # never the test split or speech
    heard = detect_onsets(wav, SR)
    assert np.abs(heard[:, None] - np.array([p["start_s"] for p in placed])[None, :]).min(axis=0).max() < 0.02


def test_baseline_needs_training_sound_effects(tmp_path):
    corpus = _corpus(tmp_path, [("b", "test", "sfx")])
    with pytest.raises(InputError, match="no train-split sound effects"):
        RandomOnsetBaseline(corpus)
