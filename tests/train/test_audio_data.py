from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_corpus import RATE, synth_clip

from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError
from v2a.train.audio_data import AudioCrops, list_audio_files, load_train_val, whole_hops


def test_manifest_and_folder_splits(corpus: Path, tmp_path: Path):
    assert [p.name for p in list_audio_files(corpus, "val")] == ["burst_4.flac", "tone_5.flac"]
    assert len(list_audio_files(corpus, "train")) == 4
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(25):
        sf.write(folder / f"c{i}.wav", synth_clip("burst", i), RATE)
    train, val = list_audio_files(folder, "train"), list_audio_files(folder, "val")
    assert len(val) >= 1 and len(train) + len(val) == 25 and not set(train) & set(val)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"split": "train"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1: a manifest row must be a JSON object with a 'path'"):
        list_audio_files(bad, "train")
    with pytest.raises(InputError, match="neither a folder nor a manifest"):
        list_audio_files(tmp_path / "missing", "train")


def test_crops_have_the_segment_length_and_resample(corpus: Path):
    crops = AudioCrops(list_audio_files(corpus, "train"), DEFAULT_SPEC, segment_samples=12_000)
    assert len(crops) == 4 and not crops.skipped
    batch = crops.batch(5, np.random.default_rng(0))
    assert batch.shape == (5, 12_000) and batch.dtype == np.float32
    peaks = np.abs(batch).max(axis=1)
    assert np.all(peaks > 0.1) and np.all(peaks <= 10 ** (-1 / 20) + 1e-6)  # random gain in [-18, -1] dBFS


def test_quiet_clips_keep_their_precision_and_level(tmp_path: Path):
    quiet = (0.01 * np.sin(np.linspace(0, 300, 6000))).astype(np.float32)
    sf.write(tmp_path / "quiet.wav", quiet, RATE, subtype="FLOAT")
    crops = AudioCrops([tmp_path / "quiet.wav"], DEFAULT_SPEC, segment_samples=6000, workers=1)
    crop = crops.crop(np.random.default_rng(0), gain=False)
    np.testing.assert_allclose(crop, quiet, atol=0.01 / 32767)  # int16 relative to the clip's own peak


def test_whole_hops_split_loading_and_fixed_batches(corpus: Path):
    assert whole_hops(1.0, DEFAULT_SPEC) == 94 * DEFAULT_SPEC.hop_length
    assert whole_hops(1e-6, DEFAULT_SPEC) == DEFAULT_SPEC.hop_length
    train, val = load_train_val(
        [corpus],
        DEFAULT_SPEC,
        train_split="train",
        val_split="val",
        segment_samples=2560,
        val_segment_samples=5120,
    )
    assert (len(train), len(val), train.segment, val.segment) == (4, 2, 2560, 5120)
    fixed = val.fixed_batch(3)
    assert np.array_equal(fixed, val.fixed_batch(3)) and fixed.shape == (3, 5120)
    assert np.abs(fixed).max() <= 0.5 + 1e-4  # recorded levels (the clips peak at 0.5), no random gain
    assert (
        load_train_val(
            [corpus],
            DEFAULT_SPEC,
            train_split="train",
            val_split="val",
            segment_samples=256,
            val_segment_samples=256,
            with_val=False,
        )[1]
        is None
    )
    with pytest.raises(InputError, match=r"no usable training audio .* \(split 'nope'\)"):
        load_train_val(
            [corpus],
            DEFAULT_SPEC,
            train_split="nope",
            val_split="val",
            segment_samples=256,
            val_segment_samples=256,
        )
