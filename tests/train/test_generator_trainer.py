"""The generator trainer end to end on a tiny real shard set (counter videos with clicks) and a tiny corpus."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_corpus import synth_clip

from media import make_counter_video
from v2a.audio.codec import Codec
from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.shards import write_shards
from v2a.encoders.cache import extract_features, load_codec
from v2a.encoders.text import TextEncoder
from v2a.errors import InputError
from v2a.model.dit import load_generator
from v2a.pipeline import FoleyPipeline, default_generator_path
from v2a.train.codec_trainer import CodecTrainConfig, train_codec
from v2a.train.generator_data import (
    BatchSampler,
    build_corpus_cache,
    corpus_caption,
    load_corpus_cache,
    shard_clips,
)
from v2a.train.generator_trainer import GeneratorTrainConfig, lr_factor, train_generator

SR = 24_000


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Three 3 s clips: a counter video with a click at every second, its caption and its sound."""
    root = tmp_path_factory.mktemp("gen")
    rows = []
    for i in range(3):
        video = make_counter_video(root / f"c{i}.mp4", fps=25, num_frames=75)
        wav = np.zeros(3 * SR, np.float32)
        for t in (0.5, 1.5, 2.5):
            n = int(t * SR)
            wav[n : n + 2400] = synth_clip("burst", i)[:2400]
        sf.write(root / f"c{i}.flac", wav, SR)
        rows.append(ClipRow(id=f"c{i}", video=str(video), audio=str(root / f"c{i}.flac"), duration_s=3.0,
                            fps=25.0, caption="clicks", events=[{"start_s": t, "label": "impact/wood"}
                                                                for t in (0.5, 1.5, 2.5)]))  # fmt: skip
    folder = root / "shards"
    write_shards(write_manifest(root / "m.jsonl", rows), folder, progress=False)
    extract_features(folder, device="cpu", progress=False)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    rows = []
    for i in range(4):
        sf.write(root / f"audio/{i}.flac", synth_clip("tone" if i % 2 else "burst", i), SR)
        rows.append({"path": f"audio/{i}.flac", "label": "glass/break", "tags": ["shatter"], "kind": "sfx",
                     "split": "train"})  # fmt: skip
    rows.append(
        {"path": "audio/0.flac", "label": "speech/male", "tags": [], "kind": "speech", "split": "train"}
    )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_corpus_cache_keeps_sound_kinds_with_captions(corpus, tmp_path):
    path = build_corpus_cache(corpus, tmp_path / "c.npz", codec=load_codec(), text_encoder=TextEncoder(),
                              progress=False)  # fmt: skip
    clips = load_corpus_cache(path)
    assert len(clips) == 4  # the speech row is left out
    assert list(clips.captions) == ["glass break: shatter"]
    clip = clips.clip(0, 31.25)
    assert not clip.has_video and clip.latents.shape[1] == clips.lengths[0]
    assert corpus_caption({"label": "door/slam", "tags": ["door", "wood"]}) == "door slam: wood"


def test_batches_have_one_window_length_and_mix_sources(shards, corpus, tmp_path):
    from v2a.model.config import model_config

    cfg = model_config("tiny")
    cache = load_corpus_cache(build_corpus_cache(corpus, tmp_path / "c.npz", codec=load_codec(),
                                                 text_encoder=TextEncoder(), progress=False))  # fmt: skip
    sampler = BatchSampler(cfg, shard_clips(shards), cache, batch_size=8, corpus_fraction=0.5, min_seconds=1.0,
                           max_seconds=3.0, rng=np.random.default_rng(0))  # fmt: skip
    kinds = set()
    for _ in range(3):
        batch = next(sampler)
        assert batch.latents.shape == (8, cfg.latent_dim, batch.num_frames)
        assert int(batch.cond.lengths.min()) >= 1 and int(batch.cond.lengths.max()) <= batch.num_frames
        kinds |= set(batch.cond.has_video.tolist())
    assert kinds == {True, False}  # video clips and audio-only corpus sounds are mixed


def test_train_resume_and_release(shards, corpus, tmp_path):
    run = tmp_path / "run"
    config = GeneratorTrainConfig(
        run_dir=str(run), data=str(shards), corpus=str(corpus), val_data=str(shards), val_clips=2,
        batch_size=2, max_steps=3, log_every=1, val_steps=2, min_seconds=1.0, max_seconds=3.0, device="cpu",
    )  # fmt: skip
    release = train_generator(config)
    net = load_generator(release)
    assert float(net.latent_std.min()) > 0  # latent statistics were measured, not left at 1
    assert not torch.allclose(net.latent_std, torch.ones_like(net.latent_std))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 3 and "val/flow_loss" in records[-1]
    assert (run / "losses.png").exists() and (run / "corpus-features.npz").exists()
    train_generator(GeneratorTrainConfig(**{**config.to_dict(), "max_steps": 5}))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 5  # resumed from step 3, not restarted


def test_a_run_can_start_from_the_bundled_generator(shards, tmp_path):
    config = GeneratorTrainConfig(
        run_dir=str(tmp_path / "run"), data=str(shards), preset="small", init_from="bundled", batch_size=2,
        max_steps=0, min_seconds=1.0, max_seconds=3.0, device="cpu",
    )  # fmt: skip
    started = load_generator(train_generator(config))
    bundled = load_generator(default_generator_path())
    assert started.cfg == bundled.cfg  # the bundle's architecture wins over --preset
    for name, value in bundled.state_dict().items():  # weights and latent statistics, not re-measured
        torch.testing.assert_close(started.state_dict()[name], value)
    with pytest.raises(InputError):
        train_generator(dataclasses.replace(config, run_dir=str(tmp_path / "b"), init_from=str(tmp_path)))


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="--data"):
        train_generator(GeneratorTrainConfig(run_dir=str(tmp_path)))
    with pytest.raises(InputError, match="min_seconds"):
        train_generator(GeneratorTrainConfig(run_dir=str(tmp_path), data="x", min_seconds=9.0))


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    f = lr_factor(10, 110, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)


def test_a_generator_on_the_patched_mel_carries_its_codec_into_the_pipeline(shards, corpus, tmp_path):
    patch = train_codec(CodecTrainConfig(
        data=(str(corpus / "manifest.jsonl"),), run_dir=str(tmp_path / "codec"), preset="patch",
        val_split="train", segment_seconds=0.5, stats_clips=4, val_clips=2, device="cpu",
    ))  # fmt: skip
    assert Codec.from_checkpoint(patch).config.architecture == "patch"
    mel_shards = tmp_path / "shards"
    shutil.copytree(shards, mel_shards)
    config = GeneratorTrainConfig(
        run_dir=str(tmp_path / "run"), data=str(mel_shards), codec_checkpoint=str(patch), val_data=str(mel_shards),
        val_clips=1, val_steps=2, batch_size=2, max_steps=2, min_seconds=1.0, max_seconds=3.0, device="cpu",
    )  # fmt: skip
    with pytest.raises(InputError, match="made with another codec"):  # the shards hold the bundled codec's
        train_generator(dataclasses.replace(config, run_dir=str(tmp_path / "wrong")))

    extract_features(mel_shards, encoders=("latents",), overwrite=True, codec_checkpoint=patch, device="cpu",
                     progress=False)  # fmt: skip
    release = train_generator(config)
    assert load_generator(release).cfg.latent_dim == 300
    pipe = FoleyPipeline.from_pretrained(release, device="cpu")
    assert pipe.codec.config.architecture == "patch"
    result = pipe(shards.parent / "c0.mp4", seed=0, num_inference_steps=2, progress=False)
    assert result.waveforms.shape == (1, 3 * SR) and np.isfinite(result.waveforms).all()

    shutil.rmtree(release / "codec")  # without its own codec the bundled one is used, and does not fit
    with pytest.raises(InputError, match="models 300 latent channels but its codec has 32"):
        FoleyPipeline.from_pretrained(release, device="cpu")


def test_a_started_generator_is_widened_to_a_codec_that_extends_its_own(shards, corpus, tmp_path):
    def pca(name: str, components: int, seed: int = 0) -> Path:
        return train_codec(CodecTrainConfig(
            data=(str(corpus / "manifest.jsonl"),), run_dir=str(tmp_path / name), preset="pca",
            latent_dim=components, val_split="train", segment_seconds=0.5, stats_clips=4, val_clips=2,
            seed=seed, device="cpu",
        ))  # fmt: skip

    narrow_codec, wide_codec, other_codec = pca("c8", 8), pca("c12", 12), pca("o12", 12, seed=5)
    data = tmp_path / "shards"
    shutil.copytree(shards, data)
    extract_features(data, encoders=("latents",), overwrite=True, codec_checkpoint=narrow_codec, device="cpu",
                     progress=False)  # fmt: skip
    base = GeneratorTrainConfig(
        run_dir=str(tmp_path / "narrow"), data=str(data), codec_checkpoint=str(narrow_codec), batch_size=2,
        max_steps=1, min_seconds=1.0, max_seconds=3.0, device="cpu",
    )  # fmt: skip
    narrow = load_generator(train_generator(base))
    extract_features(data, encoders=("latents",), overwrite=True, codec_checkpoint=wide_codec, device="cpu",
                     progress=False)  # fmt: skip
    widened = dataclasses.replace(
        base, run_dir=str(tmp_path / "wide"), codec_checkpoint=str(wide_codec),
        init_from=str(tmp_path / "narrow" / "release"), max_steps=0,
    )  # fmt: skip
    wide = load_generator(train_generator(widened))
    assert wide.cfg.latent_dim == 12
    torch.testing.assert_close(wide.latent_std[:8], narrow.latent_std)  # the known channels keep their scale
    assert not torch.allclose(wide.latent_std[8:], torch.ones(4))  # the new ones are measured
    torch.testing.assert_close(wide.final.linear.weight[:8], narrow.final.linear.weight)
    with pytest.raises(InputError, match="not the started generator's latent space"):
        train_generator(
            dataclasses.replace(widened, run_dir=str(tmp_path / "other"), codec_checkpoint=str(other_codec))
        )
