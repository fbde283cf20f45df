"""Foley world clips: determinism, event/audio sync, speech with a moving mouth, splits, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.data.foley_world import FoleyConfig, render_clip
from v2a.data.foley_world.speech import envelope
from v2a.data.onsets import detect_onsets, match_onsets, merge_onsets
from v2a.errors import InputError

SMALL = FoleyConfig(size=96, duration_s=4.0, fps=20.0)


def test_same_seed_and_index_give_identical_clips_and_other_indices_differ():
    a = render_clip(5, 3, SMALL)
    b = render_clip(5, 3, SMALL)
    assert a.id == b.id == "fw-train-s5-000003"
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.audio, b.audio)
    assert a.events == b.events and a.caption == b.caption
    c = render_clip(5, 4, SMALL)
    assert c.frames.shape != a.frames.shape or not np.array_equal(c.frames, a.frames)
    assert c.audio.shape != a.audio.shape or not np.array_equal(c.audio, a.audio)


def test_clip_shapes_follow_the_config():
    clip = render_clip(0, 0, FoleyConfig(size=128, duration_s=3.0, fps=30.0))
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[0] == 90 and clip.frames.shape[2] == 128
    assert clip.frames.shape[1] % 2 == 0 and clip.frames.shape[1] in (72, 96, 128)
    assert clip.audio.shape == (72_000,) and clip.stereo.shape == (2, 72_000)
    assert np.abs(clip.audio).max() < 1.0 and np.abs(clip.audio).max() > 0.1
    assert clip.caption and all(e["t"] <= f["t"] for e, f in zip(clip.events, clip.events[1:], strict=False))


def test_train_and_test_seed_spaces_differ():
    train = render_clip(0, 0, SMALL)
    test = render_clip(0, 0, FoleyConfig(size=96, duration_s=4.0, fps=20.0, split="test"))
    assert test.id == "fw-test-s0-000000"
    assert train.audio.shape != test.audio.shape or not np.array_equal(train.audio, test.audio)


def test_impact_onsets_in_the_audio_match_the_event_list():
    """The sync guarantee: every contact is heard where the event list says (±30 ms), nothing else is."""
    config = FoleyConfig(size=96, duration_s=5.0, fps=25.0, kinds=("faller",), cuts=False, artefacts=False)
    refs, found = 0, []
    precision, recall = [], []
    for index in range(8):
        clip = render_clip(11, index, config)
        reference = merge_onsets([e["t"] for e in clip.events if e["onset"]])
        assert all(e["label"].startswith(("impact/", "glass/")) for e in clip.events)
        score = match_onsets(reference, detect_onsets(clip.audio, clip.sample_rate), tolerance_s=0.03)
        refs += reference.size
        found.append(score.offsets_s)
        precision.append(score.precision)
        recall.append(score.recall)
    assert refs >= 20, "the scenes should contain a fair number of contacts"
    assert np.mean(precision) >= 0.9 and np.mean(recall) >= 0.9, (np.mean(precision), np.mean(recall))
    offsets = np.concatenate(found)
    assert abs(np.median(offsets)) < 0.005


def test_events_shift_with_the_audio():
    """On audio delayed by 100 ms the same check fails: the sync test can tell."""
    config = FoleyConfig(size=96, duration_s=5.0, fps=25.0, kinds=("faller",), cuts=False, artefacts=False)
    recall = []
    for index in range(4):
        clip = render_clip(11, index, config)
        reference = merge_onsets([e["t"] for e in clip.events if e["onset"]])
        late = np.concatenate([np.zeros(2400, np.float32), clip.audio])
        recall.append(match_onsets(reference, detect_onsets(late, clip.sample_rate), tolerance_s=0.03).recall)
    assert np.mean(recall) < 0.35


def test_speaker_has_a_transcript_and_a_mouth_that_follows_the_speech():
    config = FoleyConfig(size=128, duration_s=6.0, fps=25.0, kinds=("speaker",), cuts=False, artefacts=False)
    clip = render_clip(2, 0, config)
    speakers = [e for s in clip.scene.shots for e in s.entities if e.kind == "speaker"]
    assert len(speakers) == 1 and clip.transcript and clip.transcript == speakers[0].transcript
    speech = [e for e in clip.events if e["label"] == "speech/voice"]
    assert len(speech) == 1 and speech[0]["origin"] == "tts"
    mouth = speakers[0].track.variant.astype(float)
    env = envelope(clip.audio, clip.sample_rate, clip.scene.times)
    talking = (clip.scene.times >= speech[0]["t"]) & (clip.scene.times <= speech[0]["end"])
    assert mouth[~talking].max() <= 1, "the mouth stays (nearly) shut outside the speech"
    assert np.corrcoef(mouth, env)[0, 1] > 0.6
    # the drawn mouth really changes: frames differ around the face while talking
    face_rows = clip.frames[talking].astype(np.int16)
    assert np.abs(np.diff(face_rows, axis=0)).mean() > 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 10}, "size"),
        ({"size": 160.5}, "size"),
        ({"duration_s": 0.5}, "duration_s"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"fps": 0.0}, "fps"),
        ({"split": "val"}, "split"),
        ({"kinds": ("dragon",)}, "unknown entity kinds"),
        ({"corpus_dir": "/nonexistent/corpus"}, "corpus_dir"),
    ],
)
def test_bad_settings_raise_one_clear_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        render_clip(0, 0, FoleyConfig(**kwargs))


def test_bad_seed_or_index_raise():
    with pytest.raises(InputError, match="seed"):
        render_clip(-1, 0, SMALL)
    with pytest.raises(InputError, match="index"):
        render_clip(0, "3", SMALL)
