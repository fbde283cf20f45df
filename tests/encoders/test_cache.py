from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
from skimage import data

from media import make_counter_video, tone
from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.shards import ShardDataset, load_index, write_shards
from v2a.encoders.cache import (
    SEMANTIC_DTYPE,
    SYNC_DTYPE,
    audio_latents,
    extract_features,
    load_codec,
    pack_text,
    read_semantic,
    read_sync,
    read_text,
)
from v2a.encoders.sync import SyncEncoder
from v2a.errors import InputError, OutputError
from v2a.io.video import probe
from v2a.io.writer import write_video

CAPTIONS = {"cat": "a cat meowing", "count": "", "coffee": "coffee poured into a cup"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, ClipRow]:
    """Three real clips: a still cat (25 fps mp4), a counter video (30 fps mkv), a coffee cup (variable rate)."""
    root = tmp_path_factory.mktemp("clips")
    cat = np.stack([data.chelsea()[:296, :448]] * 25)
    coffee = np.stack([data.coffee()[:400, :592]] * 6)
    videos = {
        "cat": write_video(root / "cat.mp4", cat, fps=25),
        "count": make_counter_video(root / "count.mkv", fps=30, num_frames=21),
        "coffee": write_video(root / "coffee.mp4", coffee, timestamps_s=[0, 0.1, 0.35, 0.4, 0.8, 1.1], fps=5),
    }
    rows = {}
    for key, video in videos.items():
        audio = root / f"{key}.flac"
        sf.write(audio, tone(1.0), 24_000)
        rows[key] = ClipRow(
            id=key,
            video=str(video),
            audio=str(audio),
            duration_s=probe(video).duration_s,
            fps=25.0,
            caption=CAPTIONS[key],
        )
    return rows


@pytest.fixture(scope="module")
def shards(clips, tmp_path_factory, text_encoder):
    folder = tmp_path_factory.mktemp("shards") / "sh"
    manifest = write_manifest(folder.parent / "manifest.jsonl", list(clips.values()))
    write_shards(manifest, folder, progress=False)
    done = extract_features(folder, workers=2, batch_size=2, device="cpu", progress=False)
    assert done == ["semantic", "sync", "text", "latents"]
    return folder


def _samples(shards) -> dict[str, dict]:
    dataset = ShardDataset(shards, features=["semantic", "sync", "text", "latents"], shuffle_buffer=0)
    return {sample["key"]: sample for sample in dataset}


def test_index_lists_both_features(shards):
    features = load_index(shards)["features"]
    assert set(features) == {"semantic", "sync", "text", "latents"}


def test_cached_semantic_features_equal_fresh_ones(shards, clips, semantic_encoder):
    samples = _samples(shards)
    assert set(samples) == set(clips)
    for key, row in clips.items():
        stored = samples[key]["features"]["semantic"]
        assert stored.dtype == SEMANTIC_DTYPE
        cached, fresh = read_semantic(stored), semantic_encoder.encode_video(row.video)
        assert len(cached) == len(fresh) == math.ceil(row.duration_s * 8 - 1e-6)
        np.testing.assert_allclose(cached.times_s, np.arange(len(cached)) / 8)
        np.testing.assert_allclose(cached.features, fresh.features, rtol=2e-3, atol=2e-3)  # float16 storage
        np.testing.assert_allclose(cached.text_space, fresh.text_space, atol=2e-3)
        assert np.array_equal(cached.logits.argmax(axis=1), fresh.logits.argmax(axis=1))
    cat = read_semantic(samples["cat"]["features"]["semantic"]).top_classes(1)
    assert all(frame[0][0] in {281, 282, 283, 284, 285} for frame in cat)


def test_cached_text_features_equal_fresh_ones(shards, text_encoder):
    samples = _samples(shards)
    for key, caption in CAPTIONS.items():
        cached = read_text(samples[key]["features"]["text"])
        fresh = text_encoder.encode([caption])
        assert cached.is_null.tolist() == fresh.is_null.tolist() == [caption == ""]
        assert cached.mask.sum() == fresh.mask.sum()
        np.testing.assert_allclose(cached.pooled, fresh.pooled, atol=1e-3)
        n = int(fresh.mask.sum())
        np.testing.assert_allclose(cached.tokens[:, :n], fresh.tokens[:, :n], rtol=2e-3, atol=2e-3)
    assert read_text(samples["count"]["features"]["text"]).tokens.shape == (1, 1, 384)


def test_cached_sync_features_equal_fresh_ones_on_the_25fps_timeline(shards, clips):
    encoder = SyncEncoder.from_checkpoint()
    samples = _samples(shards)
    for key, row in clips.items():
        stored = samples[key]["features"]["sync"]
        assert stored.dtype == SYNC_DTYPE
        cached, fresh = read_sync(stored), encoder.encode_video(row.video)
        assert len(cached) == len(fresh) == math.ceil(row.duration_s * 25 - 1e-6)
        np.testing.assert_allclose(cached.times_s, np.arange(len(cached)) / 25)
        np.testing.assert_allclose(cached.features, fresh.features, atol=2e-3)
    # the counter video moves, the still cat does not: their features must differ
    count, cat = (read_sync(samples[k]["features"]["sync"]).features for k in ("count", "cat"))
    assert float(np.abs(count.mean(0) - cat.mean(0)).max()) > 0.05


def test_cached_latents_are_the_codec_encoding_of_the_target_sound(shards):
    codec = load_codec()
    for sample in _samples(shards).values():
        cached = sample["features"]["latents"]
        assert cached.dtype == np.float16 and cached.shape[0] == codec.config.latent_dim
        fresh = audio_latents(codec, sample["audio"])
        assert cached.shape == fresh.shape
        assert abs(cached.shape[1] - 1.0 * codec.config.latent_fps) <= 1  # 1 s of tone
        np.testing.assert_allclose(cached.astype(np.float32), fresh, atol=2e-2)


def test_text_pack_round_trip_keeps_only_real_tokens(text_encoder):
    batch = text_encoder.encode(["wind", "a long caption about waves on a beach"])
    packed = pack_text(batch, 0)
    assert packed["tokens"].shape == (3, 384)
    np.testing.assert_allclose(read_text(packed).tokens[0], batch.tokens[0, :3], atol=1e-2)


def test_existing_features_need_overwrite(shards):
    with pytest.raises(OutputError, match="already has the feature 'text'"):
        extract_features(shards, encoders=["text"], progress=False)
    assert extract_features(shards, encoders=["text"], overwrite=True, progress=False) == ["text"]


def test_bad_arguments_and_bad_clips(shards, tmp_path):
    with pytest.raises(InputError, match="encoders must be"):
        extract_features(shards, encoders=["motion"], progress=False)
    with pytest.raises(InputError, match="workers"):
        extract_features(shards, workers=0, progress=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    row = ClipRow(id="broken", video=str(broken), audio=None, duration_s=1.0, fps=25.0)
    folder = tmp_path / "sh"
    write_shards(write_manifest(tmp_path / "m.jsonl", [row]), folder, progress=False)
    with pytest.raises(InputError, match="clip 'broken'"):
        extract_features(folder, encoders=["semantic"], progress=False)
    assert "semantic" not in load_index(folder)["features"]
    with pytest.raises(InputError, match="not a cached semantic"):
        read_semantic(np.zeros((3, 1280), dtype=np.float16))
    with pytest.raises(InputError, match="not a cached text"):
        read_text(np.zeros(384, dtype=np.float16))
    with pytest.raises(InputError, match="not a cached sync"):
        read_sync(np.zeros((3, 128), dtype=np.float16))
