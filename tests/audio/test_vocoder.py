from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from v2a.audio.mel import log_mel, mel_to_magnitude
from v2a.audio.spec import DEFAULT_SPEC, SPEC_48K
from v2a.audio.vocoder import Vocoder, VocoderConfig, vocoder_config
from v2a.errors import InputError
from v2a.model.checkpoint import save_checkpoint


def _small(spec=DEFAULT_SPEC) -> VocoderConfig:
    return dataclasses.replace(vocoder_config("tiny", spec), dim=32, intermediate_dim=64, num_layers=2)


@pytest.mark.parametrize("frames", [1, 2, 7, 94])
def test_output_length_is_frames_minus_one_hops(frames: int):
    torch.manual_seed(0)
    model = Vocoder(_small()).eval()
    wav = model(torch.randn(2, DEFAULT_SPEC.n_mels, frames))
    assert wav.shape == (2, (frames - 1) * DEFAULT_SPEC.hop_length)
    assert torch.isfinite(wav).all()


def test_decode_keeps_batch_layout_and_round_trips_lengths_through_the_mel():
    model = Vocoder(_small(SPEC_48K)).eval()
    samples = 3 * SPEC_48K.hop_length
    mel = log_mel(torch.randn(samples) * 0.1, SPEC_48K)  # (n_mels, T)
    wav = model.decode(mel)
    assert wav.shape == (samples,) and wav.abs().max() <= 1.0
    assert model.decode(mel[None].repeat(3, 1, 1)).shape == (3, samples)
    assert log_mel(wav, SPEC_48K).shape == mel.shape
    with pytest.raises(InputError, match="n_mels=128"):
        model.decode(torch.zeros(100, 5))


def test_presets_and_unknown_preset():
    tiny, base = vocoder_config("tiny"), vocoder_config("base")
    assert tiny.spec_name == DEFAULT_SPEC.name and tiny.n_fft == DEFAULT_SPEC.n_fft
    assert base.dim > tiny.dim and base.num_layers > tiny.num_layers
    assert vocoder_config("tiny", SPEC_48K).spec is SPEC_48K
    with pytest.raises(InputError, match="unknown vocoder preset 'huge'"):
        vocoder_config("huge")


def test_checkpoint_round_trip_gives_identical_output(tmp_path):
    torch.manual_seed(1)
    model = Vocoder(_small()).eval()
    with torch.no_grad():  # move off the init so a silently skipped load would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_checkpoint(tmp_path / "voc", model, kind="vocoder", config=model.config.to_dict(), meta={"step": 3})
    loaded = Vocoder.from_checkpoint(tmp_path / "voc")
    assert loaded.config == model.config and not loaded.training
    mel = torch.randn(1, DEFAULT_SPEC.n_mels, 20)
    assert torch.equal(loaded(mel), model(mel))
    assert torch.equal(Vocoder.from_checkpoint(tmp_path / "voc" / "config.json")(mel), model(mel))


def test_checkpoint_for_another_spec_is_refused_clearly(tmp_path):
    model = Vocoder(_small(SPEC_48K))
    save_checkpoint(tmp_path / "voc48", model, kind="vocoder", config=model.config.to_dict())
    with pytest.raises(InputError, match=r"made for audio spec 'mel48k', but 'mel24k' is in use"):
        Vocoder.from_checkpoint(tmp_path / "voc48")
    assert Vocoder.from_checkpoint(tmp_path / "voc48", spec=SPEC_48K).spec is SPEC_48K
    assert Vocoder.from_checkpoint(tmp_path / "voc48", spec=None).spec is SPEC_48K


def test_checkpoint_of_other_kind_or_size_is_refused(tmp_path):
    model = Vocoder(_small())
    save_checkpoint(tmp_path / "codec", model, kind="codec", config=model.config.to_dict())
    with pytest.raises(InputError, match="holds a 'codec' checkpoint, not a 'vocoder'"):
        Vocoder.from_checkpoint(tmp_path / "codec")
    save_checkpoint(tmp_path / "voc", model, kind="vocoder", config=model.config.to_dict())
    header = json.loads((tmp_path / "voc" / "config.json").read_text())
    header["config"]["num_layers"] = 3
    (tmp_path / "voc" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match=r"does not fit the Vocoder network: missing: backbone\.blocks\.2"):
        Vocoder.from_checkpoint(tmp_path / "voc")
    header["config"]["colour"] = "red"
    (tmp_path / "voc" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match=r"unknown fields \['colour'\]"):
        Vocoder.from_checkpoint(tmp_path / "voc")


def test_magnitude_prior_head_starts_at_the_mels_least_squares_magnitude():
    torch.manual_seed(0)
    model = Vocoder(_small()).eval()
    assert model.config.magnitude_prior and model.config.phase_head == "complex"
    mel = log_mel(0.3 * torch.randn(1, 24 * DEFAULT_SPEC.hop_length))
    with torch.no_grad():
        spectrum = model.head.spectrum(model.backbone(mel), mel)
    prior = mel_to_magnitude(mel).clamp(min=DEFAULT_SPEC.log_floor)
    assert torch.allclose(spectrum.abs(), prior, rtol=1e-4, atol=1e-6)


def test_plain_vocos_head_is_still_available_and_differs():
    plain = vocoder_config("tiny-vocos")
    assert plain.phase_head == "angle" and not plain.magnitude_prior
    with pytest.raises(InputError, match="magnitude prior needs head_n_fft"):
        Vocoder(dataclasses.replace(_small(), head_n_fft=2 * DEFAULT_SPEC.n_fft))
    with pytest.raises(InputError, match="unknown vocoder phase head"):
        Vocoder(dataclasses.replace(_small(), phase_head="polar"))
