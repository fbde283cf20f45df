from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from v2a.audio.codec import Codec, CodecConfig, codec_config, fit_pca
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC, SPEC_48K
from v2a.audio.vocoder import Vocoder, vocoder_config
from v2a.errors import InputError
from v2a.model.checkpoint import save_checkpoint


def _small(spec=DEFAULT_SPEC, **changes) -> CodecConfig:
    base = dataclasses.replace(
        codec_config("tiny", spec), dim=32, intermediate_dim=64, mel_layers=1, latent_layers=1, latent_dim=8
    )
    return dataclasses.replace(base, **changes)


def _perturbed(config: CodecConfig) -> Codec:
    torch.manual_seed(1)
    model = Codec(config).eval()
    with torch.no_grad():  # move off the init so a silently skipped load would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 94, 100])
def test_lengths_for_any_number_of_frames(frames: int):
    model = Codec(_small()).eval()
    mel = torch.randn(2, DEFAULT_SPEC.n_mels, frames)
    latent = model.encode(mel)
    assert latent.shape == (2, 8, math.ceil(frames / 3)) == (2, 8, model.config.latent_frames(frames))
    assert model.decode(latent).shape == (2, DEFAULT_SPEC.n_mels, 3 * latent.shape[-1])
    assert model.decode(latent, num_frames=frames).shape == mel.shape
    recon, mean, logvar = model(mel, sample=False)
    assert recon.shape == mel.shape and mean.shape == logvar.shape == latent.shape


def test_latents_of_a_waveform_follow_the_spec_timeline():
    config = codec_config("tiny")
    assert config.latent_fps == pytest.approx(31.25) and config.latent_dim == 24
    model = Codec(_small()).eval()
    seconds = 2.5
    mel = log_mel(torch.randn(round(seconds * DEFAULT_SPEC.sample_rate)) * 0.1)  # (n_mels, T)
    latent = model.encode(mel)
    assert latent.dim() == 2 and latent.shape[-1] == math.ceil(mel.shape[-1] / 3)
    assert abs(latent.shape[-1] / config.latent_fps - seconds) < 2 / config.latent_fps


def test_padding_is_silence_and_leaves_whole_frames_alone():
    model = Codec(_small()).eval()
    mel = torch.randn(1, DEFAULT_SPEC.n_mels, 7)
    padded = model.pad(mel)
    assert padded.shape[-1] == 9 and torch.equal(padded[..., :7], mel)
    assert torch.all(padded[..., 7:] == math.log(DEFAULT_SPEC.log_floor))
    assert model.pad(padded) is padded


def test_encode_normalises_with_stored_statistics_and_decode_undoes_it():
    model = _perturbed(_small())
    mel = torch.randn(3, DEFAULT_SPEC.n_mels, 30) * 2 - 5
    raw = model.posterior(mel)[0].detach()
    mean, std = raw.mean(dim=(0, 2)), raw.std(dim=(0, 2))
    model.set_latent_stats(mean, std)
    latent = model.encode(mel)
    torch.testing.assert_close(latent.mean(dim=(0, 2)), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(latent.std(dim=(0, 2)), torch.ones(8), atol=1e-5, rtol=0)
    # whatever the statistics, encode -> decode gives the raw network's reconstruction
    recon_raw = model(mel, sample=False)[0].detach().clamp(min=math.log(DEFAULT_SPEC.log_floor))
    torch.testing.assert_close(model.decode(latent, num_frames=30), recon_raw, atol=1e-4, rtol=1e-4)
    assert "latent_mean" in model.state_dict() and "latent_std" in model.state_dict()
    floor = math.log(DEFAULT_SPEC.log_floor)
    assert float(model.decode(latent * 100).min()) >= floor  # a decoded mel never goes below the floor


def test_sampling_adds_posterior_noise_only_when_asked():
    model = _perturbed(_small())
    mel = torch.randn(1, DEFAULT_SPEC.n_mels, 12)
    a = model(mel, sample=True, generator=torch.Generator().manual_seed(0))[0]
    b = model(mel, sample=True, generator=torch.Generator().manual_seed(1))[0]
    c, d = model(mel, sample=False)[0], model(mel, sample=False)[0]
    assert not torch.equal(a, b) and torch.equal(c, d)


def test_batch_layout_and_bad_shapes():
    model = Codec(_small()).eval()
    mel = torch.randn(DEFAULT_SPEC.n_mels, 10)
    latent = model.encode(mel)
    assert latent.shape == (8, 4) and model.decode(latent).shape == (DEFAULT_SPEC.n_mels, 12)
    with pytest.raises(InputError, match=r"mel of shape \(n_mels=100, T\)"):
        model.encode(torch.zeros(80, 10))
    with pytest.raises(InputError, match=r"latent of shape \(latent_dim=8, T\)"):
        model.decode(torch.zeros(1, 7, 4))
    with pytest.raises(InputError, match=r"num_frames=13 is outside 1\.\.12"):
        model.decode(latent, num_frames=13)


def test_presets_sizes_and_unknown_preset():
    tiny, base = Codec(codec_config("tiny")), codec_config("base")
    params = sum(p.numel() for p in tiny.parameters())
    assert 1e6 <= params <= 3e6
    assert base.dim > tiny.config.dim and base.latent_dim == tiny.config.latent_dim
    assert codec_config("tiny", SPEC_48K).spec is SPEC_48K
    with pytest.raises(InputError, match="unknown codec preset 'huge'"):
        codec_config("huge")
    with pytest.raises(InputError, match="odd kernel_size"):
        Codec(_small(kernel_size=4))


def test_checkpoint_round_trip_keeps_weights_and_statistics(tmp_path):
    model = _perturbed(_small())
    model.set_latent_stats(torch.arange(8.0), torch.linspace(0.5, 2.0, 8))
    save_checkpoint(tmp_path / "codec", model, kind="codec", config=model.config.to_dict())
    loaded = Codec.from_checkpoint(tmp_path / "codec")
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.latent_mean, torch.arange(8.0))
    mel = torch.randn(1, DEFAULT_SPEC.n_mels, 20)
    assert torch.equal(loaded.encode(mel), model.encode(mel))
    assert torch.equal(loaded.decode(loaded.encode(mel)), model.decode(model.encode(mel)))


def test_mismatched_checkpoints_are_clear_errors(tmp_path):
    vocoder = Vocoder(dataclasses.replace(vocoder_config("tiny"), dim=16, intermediate_dim=32, num_layers=1))
    save_checkpoint(tmp_path / "voc", vocoder, kind="vocoder", config=vocoder.config.to_dict())
    with pytest.raises(InputError, match="holds a 'vocoder' checkpoint, not a 'codec'"):
        Codec.from_checkpoint(tmp_path / "voc")

    model = Codec(_small(SPEC_48K))
    save_checkpoint(tmp_path / "c48", model, kind="codec", config=model.config.to_dict())
    with pytest.raises(InputError, match="made for audio spec 'mel48k', but 'mel24k' is in use"):
        Codec.from_checkpoint(tmp_path / "c48")
    assert Codec.from_checkpoint(tmp_path / "c48", spec=None).spec is SPEC_48K

    model = Codec(_small())
    save_checkpoint(tmp_path / "c", model, kind="codec", config=model.config.to_dict())
    header = json.loads((tmp_path / "c" / "config.json").read_text())
    header["config"]["latent_dim"] = 16  # the weights were made for 8 channels
    (tmp_path / "c" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match="does not fit the Codec network: wrong shape"):
        Codec.from_checkpoint(tmp_path / "c")
    header["config"]["bottleneck"] = "tanh"
    (tmp_path / "c" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match=r"codec config has unknown fields \['bottleneck'\]"):
        Codec.from_checkpoint(tmp_path / "c")
    with pytest.raises(InputError, match="no checkpoint at"):
        Codec.from_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, SPEC_48K])
def test_the_patch_codec_stacks_frames_losslessly(spec):
    codec = Codec(codec_config("patch", spec))
    assert sum(p.numel() for p in codec.parameters()) == 0 and codec.config.latent_dim == 3 * spec.n_mels
    wav = torch.randn(2, 24_000) * torch.linspace(0, 1, 24_000)  # loud and near-silent frames
    mel = log_mel(wav, spec)
    codec.set_latent_stats(
        torch.linspace(-6, -2, codec.config.latent_dim), torch.full((3 * spec.n_mels,), 2.5)
    )
    latent = codec.encode(mel)
    assert latent.shape == (2, 3 * spec.n_mels, codec.config.latent_frames(mel.shape[-1]))
    # channel k * n_mels + m of latent frame l is mel bin m of frame 3 l + k, normalised
    raw = codec.unnormalize(latent)
    torch.testing.assert_close(raw[:, spec.n_mels + 5, 4], mel[:, 5, 13])
    torch.testing.assert_close(codec.decode(latent, num_frames=mel.shape[-1]), mel, atol=1e-5, rtol=0)


def test_a_patch_codec_of_the_wrong_width_or_an_unknown_architecture_is_refused():
    with pytest.raises(InputError, match="latent_dim must be n_mels \\* downsample = 300, got 24"):
        Codec(dataclasses.replace(codec_config("patch"), latent_dim=24))
    with pytest.raises(InputError, match="unknown codec architecture 'fsq'"):
        Codec(_small(architecture="fsq"))


def _sample_mel(sample_video) -> torch.Tensor:
    """(1, n_mels, T) log-mel of the bundled sample video's own soundtrack (bounces over a room tone)."""
    from v2a.io.audio import load_audio

    wav, _ = load_audio(sample_video, sr=DEFAULT_SPEC.sample_rate)
    return log_mel(torch.as_tensor(wav, dtype=torch.float32).reshape(1, -1))


def test_the_pca_codec_keeps_the_leading_components_of_stacked_frames(sample_video, tmp_path):
    mel = _sample_mel(sample_video)
    first, second = mel[..., : mel.shape[-1] // 2], mel[..., mel.shape[-1] // 2 :]
    errors = {}
    for dim in (4, 16, 64):
        codec = Codec(dataclasses.replace(codec_config("pca"), latent_dim=dim))
        explained = fit_pca(codec, [first])
        assert 0 < explained <= 1 + 1e-9
        rows = codec.encoder.basis.components.double()
        torch.testing.assert_close(rows @ rows.T, torch.eye(dim, dtype=torch.float64), atol=1e-5, rtol=0)
        raw, _ = codec.posterior(first)
        spread = raw.var(dim=(0, 2))
        assert torch.all(spread[:-1] >= spread[1:] - 1e-4)  # components come largest variance first
        torch.testing.assert_close(raw.mean(dim=(0, 2)), torch.zeros(dim), atol=1e-3, rtol=0)
        errors[dim] = float(
            (codec.decode(codec.encode(second), num_frames=second.shape[-1]) - second).abs().mean()
        )
    assert errors[4] > errors[16] > errors[64]  # held-out frames: more components, closer mel
    full = Codec(dataclasses.replace(codec_config("pca"), latent_dim=300))
    fit_pca(full, [torch.randn(1, DEFAULT_SPEC.n_mels, 1200) - 5])  # enough frames for all 300 components
    lossless = full.decode(full.encode(second), num_frames=second.shape[-1])
    torch.testing.assert_close(lossless, second, atol=1e-4, rtol=0)  # the full basis only rotates the frames

    refit = Codec(codec_config("pca"))
    fit_pca(refit, [first])
    again = Codec(codec_config("pca"))
    fit_pca(again, [first])
    assert torch.equal(refit.encode(second), again.encode(second))  # signs are fixed: refits agree
    save_checkpoint(tmp_path / "pca", refit, kind="codec", config=refit.config.to_dict())
    loaded = Codec.from_checkpoint(tmp_path / "pca")
    assert torch.equal(loaded.encode(second), refit.encode(second))
    assert torch.equal(loaded.decoder.basis.components, refit.encoder.basis.components)


def test_an_untrained_pca_residual_codec_decodes_like_its_pca_codec(sample_video, tmp_path):
    mel = _sample_mel(sample_video)
    pca = Codec(codec_config("pca"))
    fit_pca(pca, [mel])
    residual = Codec(codec_config("pca_residual"))
    fit_pca(residual, [mel])
    assert residual.config.latent_dim == pca.config.latent_dim == 32
    for frames in (1, 2, 3, 50, mel.shape[-1]):  # any length: padded to whole latent frames, then trimmed
        part = mel[..., :frames]
        latent = residual.encode(part)
        assert torch.equal(latent, pca.encode(part))  # the same latent space
        out = residual.decode(latent, num_frames=frames)
        assert out.shape == part.shape
        torch.testing.assert_close(out, pca.decode(latent, num_frames=frames))  # the correction starts at 0
    # a trained correction changes the mel, not the latents; it survives a save and load
    with torch.no_grad():
        residual.decoder.head.bias.fill_(0.1)
    latent = residual.encode(mel)
    torch.testing.assert_close(
        residual.decode(latent),
        pca.decode(latent).clamp(min=math.log(DEFAULT_SPEC.log_floor)) + 0.1 * residual.config.mel_scale,
    )
    save_checkpoint(tmp_path / "residual", residual, kind="codec", config=residual.config.to_dict())
    loaded = Codec.from_checkpoint(tmp_path / "residual")
    assert loaded.config.architecture == "pca_residual"
    assert torch.equal(loaded.decode(latent), residual.decode(latent))


def test_a_global_latent_scale_keeps_the_components_relative_sizes(sample_video):
    mel = _sample_mel(sample_video)
    per_channel = Codec(codec_config("pca"))
    shared = Codec(dataclasses.replace(codec_config("pca"), latent_scale="global"))
    for codec in (per_channel, shared):
        fit_pca(codec, [mel])
        raw, _ = codec.posterior(mel)
        codec.set_latent_stats(raw.mean(dim=(0, 2)), raw.std(dim=(0, 2)))
    spread = per_channel.encode(mel).std(dim=(0, 2))
    torch.testing.assert_close(spread, torch.ones_like(spread), atol=1e-3, rtol=0)
    spread = shared.encode(mel).std(dim=(0, 2))
    assert float(spread[0]) > 3 * float(spread[-1])  # the leading component stays the largest
    torch.testing.assert_close(spread.square().mean(), torch.tensor(1.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(  # decoding undoes either normalisation
        shared.decode(shared.encode(mel)), per_channel.decode(per_channel.encode(mel)), atol=1e-4, rtol=0
    )
    with pytest.raises(InputError, match="latent_scale must be one of"):
        Codec(dataclasses.replace(codec_config("pca"), latent_scale="band"))


def test_pca_codec_errors_are_clear(sample_video):
    with pytest.raises(
        InputError, match="keeps at most n_mels \\* downsample = 300 components, got latent_dim=301"
    ):
        Codec(dataclasses.replace(codec_config("pca"), latent_dim=301))
    with pytest.raises(InputError, match="fit_pca needs a pca codec, got architecture 'patch'"):
        fit_pca(Codec(codec_config("patch")), [_sample_mel(sample_video)])
    with pytest.raises(InputError, match="fitting 32 components needs more than 2 stacked frames"):
        fit_pca(Codec(codec_config("pca")), [torch.randn(1, DEFAULT_SPEC.n_mels, 6)])
