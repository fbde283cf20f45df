from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_corpus import synth_clip

from v2a.audio.codec import Codec, codec_config
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError
from v2a.model.checkpoint import load_checkpoint, load_train_state
from v2a.train.audio_data import load_split, whole_hops
from v2a.train.codec_trainer import CodecStep, CodecTrainConfig, train_codec
from v2a.train.loop import read_metrics

SMALL = {"dim": 32, "intermediate_dim": 64, "mel_layers": 1, "latent_layers": 1, "latent_dim": 8}


def _small_codec(**changes) -> Codec:
    return Codec(dataclasses.replace(codec_config("tiny"), **{**SMALL, **changes}))


def _config(manifest: Path, run_dir: Path, **changes) -> CodecTrainConfig:
    base = CodecTrainConfig(
        data=(str(manifest),),
        run_dir=str(run_dir),
        latent_dim=8,
        batch_size=2,
        segment_seconds=0.25,
        log_every=1,
        val_clips=2,
        stats_clips=4,
        checkpoint_minutes=60.0,
        ema_decay=0.9,
        device="cpu",
    )
    return dataclasses.replace(base, **changes)


def test_tiny_run_writes_metrics_resumes_and_releases_a_normalised_codec(corpus: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    release = train_codec(_config(corpus, run_dir, max_steps=2))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss/mel_l1" in r] == [1, 2]
    assert all(r["loss/kl"] >= 0 and r["loss/mel_l1"] > 0 for r in records if "loss/kl" in r)
    assert (run_dir / "losses.png").stat().st_size > 0
    assert load_train_state(run_dir / "last")["step"] == 2

    train_codec(_config(corpus, run_dir, max_steps=3))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss/mel_l1" in r] == [1, 2, 3]
    assert load_train_state(run_dir / "shadow")["step"] == 2
    assert [r["step"] for r in records if "val/mel_l1" in r] == [2, 3]  # validated at each save

    ckpt = load_checkpoint(release, kind="codec")
    assert ckpt.meta["step"] == 3 and ckpt.meta["latent_fps"] == pytest.approx(31.25)
    codec = Codec.from_checkpoint(release)
    assert codec.config.latent_dim == 8 and not torch.equal(codec.latent_std, torch.ones(8))
    # the stored statistics are those of the release weights on the fixed training crops: they normalise them
    crops = load_split((corpus,), "train", DEFAULT_SPEC, segment_samples=whole_hops(0.25, DEFAULT_SPEC))
    wav = torch.from_numpy(crops.fixed_batch(4, seed=0))
    latent = codec.encode(log_mel(wav))
    assert latent.shape == (4, 8, codec.config.latent_frames(wav.shape[-1] // DEFAULT_SPEC.hop_length + 1))
    torch.testing.assert_close(latent.mean(dim=(0, 2)), torch.zeros(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(latent.std(dim=(0, 2)), torch.ones(8), atol=1e-4, rtol=0)


def test_resuming_a_run_for_another_spec_is_refused(corpus: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train_codec(_config(corpus, run_dir, max_steps=0))
    assert load_train_state(run_dir / "last")["step"] == 0
    with pytest.raises(
        InputError, match="made for audio spec 'mel24k', but 'mel48k' is in use; use another --run-dir"
    ):
        train_codec(_config(corpus, run_dir, max_steps=0, spec_name="mel48k"))


def test_resume_keeps_the_checkpoint_architecture(corpus: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train_codec(_config(corpus, run_dir, max_steps=1))
    release = train_codec(_config(corpus, run_dir, max_steps=2, latent_dim=12))
    assert Codec.from_checkpoint(release).config.latent_dim == 8


def test_codec_overfits_a_fixed_batch():
    torch.manual_seed(0)
    config = CodecTrainConfig(data=("unused",), run_dir="unused", lr=3e-3, device="cpu")
    model = _small_codec()
    step = CodecStep(model, torch.optim.AdamW(model.parameters(), lr=config.lr), config, DEFAULT_SPEC)
    segment = 30 * DEFAULT_SPEC.hop_length
    wav = torch.from_numpy(np.stack([synth_clip("tone", 1)[:segment], synth_clip("burst", 2)[:segment]]))
    history = [step(wav) for _ in range(60)]
    first, last = history[0], history[-1]
    assert float(last["loss/mel_l1"]) < 0.5 * float(first["loss/mel_l1"])
    assert torch.isfinite(last["grad/codec"]) and float(last["loss/kl"]) > 0


def test_bad_settings_and_missing_audio_are_clear_errors(tmp_path: Path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(InputError, match="no usable training audio"):
        train_codec(CodecTrainConfig(data=(str(folder),), run_dir=str(tmp_path / "r"), device="cpu"))
    with pytest.raises(InputError, match=r"invalid codec training setting\(s\): batch_size, kl_weight"):
        train_codec(CodecTrainConfig(data=(str(folder),), run_dir="r", batch_size=0, kl_weight=-1.0))
    with pytest.raises(InputError, match="unknown codec preset 'huge'"):
        train_codec(CodecTrainConfig(data=(str(folder),), run_dir="r", preset="huge"))
    with pytest.raises(InputError, match="the patch codec has no decoder to train"):
        train_codec(
            CodecTrainConfig(data=(str(folder),), run_dir="r", preset="patch", decoder_from="bundled")
        )
    with pytest.raises(InputError, match="no training data given"):
        train_codec(CodecTrainConfig(data=(), run_dir="r"))


@pytest.mark.slow
def test_two_process_ddp_run_on_cpu(corpus: Path, tmp_path: Path):
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import sys\n"
        "from v2a.train.codec_trainer import CodecTrainConfig, train_codec\n"
        "cfg = CodecTrainConfig(data=(sys.argv[1],), run_dir=sys.argv[2], batch_size=2, segment_seconds=0.25,\n"
        "    latent_dim=8, max_steps=int(sys.argv[3]), log_every=1, val_clips=2, stats_clips=4, device='cpu')\n"
        "train_codec(cfg)\n"
    )
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for steps in (2, 3):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        done = subprocess.run(
            [*cmd, str(script), str(corpus), str(run_dir), str(steps)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert load_train_state(run_dir / "last")["step"] == 3
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss/mel_l1" in r] == [1, 2, 3]


def test_decoder_only_run_keeps_the_latent_space_of_the_codec_it_starts_from(corpus: Path, tmp_path: Path):
    first = train_codec(
        _config(corpus, tmp_path / "first", max_steps=2)
    )  # a trained (vae) codec to start from
    run_dir = tmp_path / "run"
    release = train_codec(_config(corpus, run_dir, max_steps=3, decoder_from=str(first), lr=1e-3))
    start, tuned = Codec.from_checkpoint(first), Codec.from_checkpoint(release)
    assert tuned.config == start.config
    for name, value in start.state_dict().items():
        same = torch.equal(tuned.state_dict()[name], value)
        assert same == (not name.startswith("decoder.")), name  # encoder + statistics frozen, decoder moved
    mel = log_mel(torch.from_numpy(synth_clip("burst", 3)[: whole_hops(0.5, DEFAULT_SPEC)]), DEFAULT_SPEC)
    torch.testing.assert_close(tuned.encode(mel), start.encode(mel))  # the generator's latents are unchanged
    # resuming keeps the encoder frozen too
    release = train_codec(_config(corpus, run_dir, max_steps=4, decoder_from=str(first), lr=1e-3))
    torch.testing.assert_close(Codec.from_checkpoint(release).encode(mel), start.encode(mel))


def test_the_pca_preset_is_fitted_in_closed_form_and_released_at_once(corpus: Path, tmp_path: Path):
    release = train_codec(_config(corpus, tmp_path / "run", preset="pca", latent_dim=16, stats_clips=32))
    codec = Codec.from_checkpoint(release)
    assert codec.config.architecture == "pca" and codec.config.latent_dim == 16
    meta = load_checkpoint(release, kind="codec").meta
    assert 0.5 < meta["explained_variance"] <= 1.0 and meta["step"] == 0
    rows = codec.encoder.basis.components
    torch.testing.assert_close(rows @ rows.T, torch.eye(16), atol=1e-4, rtol=0)
    assert torch.equal(codec.decoder.basis.components, rows)
    # the held-out mel comes back closer than the corpus's own spread around its mean
    val = load_split((corpus,), "val", DEFAULT_SPEC, segment_samples=whole_hops(1.0, DEFAULT_SPEC))
    mel = log_mel(torch.from_numpy(val.fixed_batch(2)), DEFAULT_SPEC)
    error = (codec.decode(codec.encode(mel), num_frames=mel.shape[-1]) - mel).abs().mean()
    assert meta["val/mel_l1"] < 0.5 * float((mel - mel.mean()).abs().mean())
    assert float(error) < 0.5 * float((mel - mel.mean()).abs().mean())
    with pytest.raises(
        InputError, match="is a pca codec: train a learned decoder for it with --preset pca_residual"
    ):
        train_codec(_config(corpus, tmp_path / "tune", decoder_from=str(release), max_steps=1))


def test_a_global_latent_scale_is_released_with_one_shared_std(corpus: Path, tmp_path: Path):
    settings = {"preset": "pca", "latent_dim": 16, "stats_clips": 32}
    release = train_codec(_config(corpus, tmp_path / "run", latent_scale="global", **settings))
    codec = Codec.from_checkpoint(release)
    assert codec.config.latent_scale == "global"
    assert torch.all(codec.latent_std == codec.latent_std[0])
    channel = Codec.from_checkpoint(train_codec(_config(corpus, tmp_path / "channel", **settings)))
    assert float(channel.latent_std[0]) > 2 * float(channel.latent_std[-1])  # per channel: all differ
    with pytest.raises(InputError, match="latent_scale"):
        train_codec(_config(corpus, tmp_path / "bad", latent_scale="band", **settings))


def test_a_learned_decoder_for_a_pca_codec_keeps_its_latent_space(corpus: Path, tmp_path: Path):
    pca_release = train_codec(_config(corpus, tmp_path / "pca", preset="pca", latent_dim=16, stats_clips=32))
    pca = Codec.from_checkpoint(pca_release)
    release = train_codec(
        _config(corpus, tmp_path / "run", preset="pca_residual", decoder_from=str(pca_release), max_steps=40)
    )
    tuned = Codec.from_checkpoint(release)
    assert tuned.config.architecture == "pca_residual" and tuned.config.latent_dim == 16
    for name, value in pca.state_dict().items():  # basis and statistics as fitted
        assert torch.equal(tuned.state_dict()[name], value), name
    val = load_split((corpus,), "val", DEFAULT_SPEC, segment_samples=whole_hops(1.0, DEFAULT_SPEC))
    mel = log_mel(torch.from_numpy(val.fixed_batch(2)), DEFAULT_SPEC)
    latent = tuned.encode(mel)
    assert torch.equal(latent, pca.encode(mel))  # a generator trained on the pca latents still fits
    frames = mel.shape[-1]
    before = (pca.decode(latent, num_frames=frames) - mel).abs().mean()
    after = (tuned.decode(latent, num_frames=frames) - mel).abs().mean()
    assert float(after) < float(before)  # the held-out mel comes back closer
    metrics = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert all(r["loss/kl"] == 0.0 for r in metrics if "loss/kl" in r)  # no prior on a fitted encoder


def test_a_fresh_pca_residual_run_fits_its_basis_first(corpus: Path, tmp_path: Path):
    settings = {"latent_dim": 16, "stats_clips": 32}
    pca = Codec.from_checkpoint(train_codec(_config(corpus, tmp_path / "pca", preset="pca", **settings)))
    release = train_codec(_config(corpus, tmp_path / "run", preset="pca_residual", max_steps=2, **settings))
    tuned = Codec.from_checkpoint(release)
    torch.testing.assert_close(tuned.encoder.basis.components, pca.encoder.basis.components)
    torch.testing.assert_close(tuned.latent_std, pca.latent_std)
