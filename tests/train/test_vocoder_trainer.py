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

from v2a.audio.bundled import load_vocoder
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC
from v2a.audio.vocoder import Vocoder, vocoder_config
from v2a.errors import InputError
from v2a.model.checkpoint import load_train_state
from v2a.train.discriminators import VocoderDiscriminators, discriminator_config
from v2a.train.loop import read_metrics
from v2a.train.vocoder_trainer import VocoderGANStep, VocoderTrainConfig, train_vocoder


def _config(manifest: Path, run_dir: Path, **changes) -> VocoderTrainConfig:
    base = VocoderTrainConfig(
        data=(str(manifest),),
        run_dir=str(run_dir),
        batch_size=2,
        segment_seconds=0.25,
        disc_start_step=2,
        log_every=1,
        val_clips=2,
        checkpoint_minutes=60.0,
        ema_decay=0.9,
        device="cpu",
    )
    return dataclasses.replace(base, **changes)


def test_tiny_run_writes_metrics_and_resumes_where_it_stopped(corpus: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    release = train_vocoder(_config(corpus, run_dir, max_steps=3))
    records = read_metrics(run_dir / "metrics.jsonl")
    train_steps = [r["step"] for r in records if "loss/mel_l1" in r]
    assert train_steps == [1, 2, 3]
    by_step = {r["step"]: r for r in records if "loss/mel_l1" in r}
    assert "loss/adv_mpd" not in by_step[2] and "loss/adv_mpd" in by_step[3]  # discriminators join at step 2
    baseline = next(r for r in records if "val/griffinlim_mel_l1" in r)
    assert baseline["step"] == 0 and baseline["val/griffinlim_mrstft"] > 0
    assert (run_dir / "losses.png").stat().st_size > 0
    assert load_train_state(run_dir / "last")["step"] == 3

    train_vocoder(_config(corpus, run_dir, max_steps=5))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss/mel_l1" in r] == [1, 2, 3, 4, 5]
    assert load_train_state(run_dir / "last")["step"] == 5
    assert load_train_state(run_dir / "shadow")["step"] == 3
    assert sum("val/mel_l1" in r for r in records) == 2  # validated at each save

    vocoder = Vocoder.from_checkpoint(release)
    wav = vocoder.decode(torch.zeros(DEFAULT_SPEC.n_mels, 10))
    assert wav.shape == (9 * DEFAULT_SPEC.hop_length,)


def test_resuming_a_run_for_another_spec_is_refused(corpus: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train_vocoder(_config(corpus, run_dir, max_steps=0))
    assert load_train_state(run_dir / "last")["step"] == 0
    with pytest.raises(
        InputError, match="made for audio spec 'mel24k', but 'mel48k' is in use; use another --run-dir"
    ):
        train_vocoder(_config(corpus, run_dir, max_steps=0, spec_name="mel48k"))


def test_a_run_can_start_from_the_bundled_vocoder(corpus: Path, tmp_path: Path):
    bundled = load_vocoder("bundled")
    run_dir = tmp_path / "run"
    release = train_vocoder(_config(corpus, run_dir, max_steps=0, preset="tiny-vocos", init_from="bundled"))
    started = Vocoder.from_checkpoint(release)
    assert started.config == bundled.config  # the bundle's architecture wins over --preset
    for name, value in bundled.state_dict().items():
        torch.testing.assert_close(started.state_dict()[name], value)
    with pytest.raises(InputError):
        train_vocoder(_config(corpus, tmp_path / "other", max_steps=0, init_from=str(tmp_path / "missing")))


def _overfit(preset: str, steps: int = 30, phase_weight: float = 0.0) -> list[dict[str, torch.Tensor]]:
    """Losses of ``steps`` spectral-only steps on one fixed batch (a tone and a noise burst)."""
    torch.manual_seed(0)
    spec = DEFAULT_SPEC
    config = VocoderTrainConfig(
        data=("unused",), run_dir="unused", lr=2e-3, disc_start_step=10**9, phase_weight=phase_weight
    )
    generator = Vocoder(vocoder_config(preset, spec))
    discs = VocoderDiscriminators(discriminator_config("tiny"), spec)
    opt_g = torch.optim.AdamW(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.AdamW(discs.parameters(), lr=config.lr, betas=config.betas)
    step = VocoderGANStep(generator, discs, opt_g, opt_d, config, spec)
    segment = 24 * spec.hop_length
    wav = torch.from_numpy(np.stack([synth_clip("tone", 1)[:segment], synth_clip("burst", 2)[:segment]]))
    return [step(wav, step=i) for i in range(steps)]


def test_generator_overfits_a_fixed_batch_and_the_magnitude_prior_learns_faster():
    plain, prior = _overfit("tiny-vocos"), _overfit("tiny", phase_weight=1.0)
    for history in (plain, prior):
        first, last = history[0], history[-1]
        assert float(last["loss/mel_l1"]) < 0.6 * float(first["loss/mel_l1"])
        assert float(last["loss/mrstft"]) < 0.9 * float(first["loss/mrstft"])
    assert float(prior[-1]["loss/mel_l1"]) < 0.5 * float(plain[-1]["loss/mel_l1"])
    assert float(prior[-1]["loss/phase"]) < float(prior[0]["loss/phase"])


def test_no_usable_audio_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(InputError, match="no usable training audio"):
        train_vocoder(VocoderTrainConfig(data=(str(folder),), run_dir=str(tmp_path / "r"), device="cpu"))
    with pytest.raises(InputError, match=r"invalid vocoder training setting\(s\): batch_size"):
        train_vocoder(VocoderTrainConfig(data=(str(folder),), run_dir=str(tmp_path / "r"), batch_size=0))


@pytest.mark.slow
def test_two_process_ddp_run_on_cpu_trains_and_resumes(corpus: Path, tmp_path: Path):
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import sys\n"
        "from v2a.train.vocoder_trainer import VocoderTrainConfig, train_vocoder\n"
        "cfg = VocoderTrainConfig(data=(sys.argv[1],), run_dir=sys.argv[2], batch_size=2, segment_seconds=0.25,\n"
        "    max_steps=int(sys.argv[3]), disc_start_step=2, log_every=1, val_clips=2, device='cpu')\n"
        "train_vocoder(cfg)\n"
    )
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for steps in (3, 4):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        done = subprocess.run(
            [*cmd, str(script), str(corpus), str(run_dir), str(steps)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert load_train_state(run_dir / "last")["step"] == 4
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss/mel_l1" in r]
    assert steps == [1, 2, 3, 4]  # only rank 0 writes: one record per step


def test_codec_round_trip_inputs_replace_the_chosen_share_of_rows():
    from v2a.audio.bundled import default_codec

    spec = DEFAULT_SPEC
    codec = default_codec()
    wav = torch.from_numpy(
        np.stack([synth_clip(k, i)[: 48 * spec.hop_length] for i, k in enumerate(("tone", "burst"))])
    )
    mel = log_mel(wav, spec)
    generator = Vocoder(vocoder_config("tiny", spec))
    discs = VocoderDiscriminators(discriminator_config("tiny"), spec)
    opt = torch.optim.AdamW(generator.parameters())

    def inputs(prob: float) -> torch.Tensor:
        config = VocoderTrainConfig(data=("unused",), run_dir="unused", codec_prob=prob)
        return VocoderGANStep(generator, discs, opt, opt, config, spec, codec)._vocoder_input(mel)

    assert torch.equal(inputs(0.0), mel)
    decoded = inputs(1.0)
    expected = codec.decode(codec.encode(mel), num_frames=mel.shape[-1])
    torch.testing.assert_close(decoded, expected)
    assert 0.1 < float((decoded - mel).abs().mean()) < 1.5  # a real, lossy reconstruction of the same sound
    assert not decoded.is_inference()  # usable as an input to a training step
