from __future__ import annotations

import torch

from v2a.audio.spec import DEFAULT_SPEC
from v2a.train.discriminators import VocoderDiscriminators, discriminator_config


def test_every_sub_discriminator_scores_each_item_and_returns_features():
    config = discriminator_config("tiny")
    discs = VocoderDiscriminators(config, DEFAULT_SPEC)
    wav = torch.randn(3, 6001, requires_grad=True)  # odd length: the period ones pad it
    out = discs(wav)
    assert len(out["mpd"][0]) == len(config.periods) and len(out["mrd"][0]) == 3
    for scores, features in out.values():
        for s, f in zip(scores, features, strict=True):
            assert s.shape[0] == 3 and s.dim() == 2
            assert len(f) >= 5 and all(x.shape[0] == 3 for x in f)
    total = sum(s.sum() for scores, _ in out.values() for s in scores)
    total.backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all()
    # items are scored independently: changing one item leaves the other scores alone
    wav2 = wav.detach().clone()
    wav2[0] = 0
    again = discs(wav2)
    torch.testing.assert_close(again["mpd"][0][0][1:], out["mpd"][0][0][1:].detach())
