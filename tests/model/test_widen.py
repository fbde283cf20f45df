"""Widening a generator to a codec with more latent channels keeps what it knew, and only for a true extension."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from dit_helpers import micro_config, random_conditions, randomize

from v2a.audio.codec import Codec, codec_config, fit_pca
from v2a.audio.mel import log_mel
from v2a.errors import InputError
from v2a.model.dit import AudioDiT
from v2a.model.widen import check_codec_extends, widen_generator
from v2a.train.codec_trainer import latent_statistics


def _velocity(net: AudioDiT, x: torch.Tensor, cond, t: float = 0.4) -> torch.Tensor:
    prepared = net.prepare_conditions(cond, num_frames=x.shape[-1])
    with torch.no_grad():
        return net.predict_flow(x, torch.full((x.shape[0],), t), prepared)


def test_the_widened_network_predicts_what_the_narrow_one_did_and_nothing_new():
    narrow = randomize(AudioDiT(micro_config(latent_dim=8)), seed=1).eval()
    narrow.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    wide = widen_generator(narrow, 12).eval()
    assert wide.cfg.latent_dim == 12 and not wide.training
    T = narrow.cfg.sequence(2.0).latent_frames
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, T, generator=g)
    context = torch.randn(2, 8, T, generator=g)
    mask = torch.zeros(2, 1, T)
    mask[..., : T // 3] = 1
    cond = random_conditions(narrow.cfg, batch=2, duration=2.0)
    extra = 5 * torch.randn(2, 4, T, generator=g)  # anything in the new channels is ignored at the start
    wide_cond = cond.replace(context=torch.cat((context, extra), 1), context_mask=mask)
    before = _velocity(narrow, x, cond.replace(context=context, context_mask=mask))
    after = _velocity(wide, torch.cat((x, extra), 1), wide_cond)
    torch.testing.assert_close(after[:, :8], before, atol=1e-5, rtol=1e-5)
    assert torch.equal(after[:, 8:], torch.zeros_like(after[:, 8:]))
    torch.testing.assert_close(wide.latent_mean[:8], narrow.latent_mean)
    torch.testing.assert_close(wide.latent_std[:8], narrow.latent_std)
    with pytest.raises(InputError, match="cannot widen"):
        widen_generator(narrow, 8)


def _sounds(seed: int, kinds: tuple[str, ...] = ("tone", "burst")) -> np.ndarray:
    """(N, 24000) one-second sounds: harmonic tones of random pitch and decaying noise bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(24_000) / 24_000
    out = []
    for kind in kinds * 4:
        if kind == "tone":
            f0 = rng.uniform(100, 1200)
            out.append(sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5)))
        else:
            out.append(rng.standard_normal(len(t)) * np.exp(-t / rng.uniform(0.05, 0.4)))
    return (0.3 * np.stack(out) / np.abs(np.stack(out)).max(axis=1, keepdims=True)).astype(np.float32)


def _pca_codec(components: int, sounds: np.ndarray) -> Codec:
    codec = Codec(dataclasses.replace(codec_config("pca"), latent_dim=components))
    mels = [log_mel(torch.from_numpy(sounds))]
    fit_pca(codec, mels)
    codec.set_latent_stats(*latent_statistics(codec, mels))
    return codec.eval()


def test_only_a_codec_whose_first_channels_are_the_old_latent_counts_as_an_extension():
    sounds = _sounds(0)
    narrow, wide = _pca_codec(8, sounds), _pca_codec(12, sounds)
    check_codec_extends(wide, narrow)  # fitted on the same sounds: the leading components agree
    other = _pca_codec(12, _sounds(1, ("tone",)))
    with pytest.raises(InputError, match="not the started generator's latent space"):
        check_codec_extends(other, narrow)
    with pytest.raises(InputError, match="not more than"):
        check_codec_extends(narrow, wide)
    with pytest.raises(InputError, match="needs pca codecs"):
        check_codec_extends(wide, Codec(codec_config("patch")))
