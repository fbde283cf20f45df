from __future__ import annotations

import pytest
import torch
from dit_helpers import micro_config, random_conditions, text_features

from v2a.errors import InputError
from v2a.model.conditions import (
    ConditionDropout,
    TextFeatures,
    resample_linear,
    sample_context_mask,
    sample_keep_masks,
)
from v2a.model.dit import AudioDiT


def test_missing_modalities_get_the_learned_null_embeddings():
    cfg = micro_config()
    T = cfg.sequence(2.0).latent_frames
    full = random_conditions(cfg, batch=2, duration=2.0)
    net = AudioDiT(cfg)
    enc = net.conditioner
    T_v = full.semantic.shape[1]

    bare = net.prepare_conditions(full.replace(semantic=None, sync=None, text=None), num_frames=T, batch=2)
    visual, text = bare.cond_tokens[:, :T_v], bare.cond_tokens[:, T_v:]
    assert torch.allclose(visual, (enc.null_visual + enc.visual_type).expand_as(visual))
    assert torch.allclose(bare.sync_c, enc.null_sync.expand_as(bare.sync_c))
    assert torch.allclose(text, (enc.null_text + enc.text_type).expand_as(text))
    assert bool(bare.cond_mask.all())

    # dropping a modality (condition dropout / guidance) is the same as not having it
    dropped = net.prepare_conditions(
        full, num_frames=T, keep_video=torch.tensor([False, True]), keep_text=torch.tensor([False, True])
    )
    assert torch.allclose(dropped.cond_tokens[0, :T_v], visual[0])
    assert torch.allclose(dropped.sync_c[0], bare.sync_c[0])
    assert torch.allclose(dropped.global_c[0], bare.global_c[0])
    n0 = cfg.null_text_tokens
    assert torch.allclose(dropped.cond_tokens[0, T_v : T_v + n0], text[0])
    assert not dropped.cond_mask[0, T_v + n0 :].any()  # the rest of the row is padding
    assert not torch.allclose(dropped.cond_tokens[1, :T_v], visual[1])  # the kept sample is conditioned
    assert not torch.allclose(dropped.sync_c[1], bare.sync_c[1])

    # an empty prompt (all-False mask row) is null text too
    empty = full.text.mask.clone()
    empty[0] = False
    blank = net.prepare_conditions(
        full.replace(text=TextFeatures(full.text.tokens, empty, full.text.pooled)), num_frames=T
    )
    no_text = net.prepare_conditions(full, num_frames=T, keep_text=torch.tensor([False, True]))
    assert torch.allclose(blank.global_c, no_text.global_c)
    assert torch.allclose(blank.cond_tokens, no_text.cond_tokens) and torch.equal(
        blank.cond_mask, no_text.cond_mask
    )


def test_condition_dropout_rates_match_the_config():
    keep_video, keep_text = sample_keep_masks(
        40_000, ConditionDropout(video=0.1, text=0.2), generator=torch.Generator().manual_seed(0)
    )
    assert abs(1 - float(keep_video.float().mean()) - 0.1) < 0.01
    assert abs(1 - float(keep_text.float().mean()) - 0.2) < 0.01
    both = float((~keep_video & ~keep_text).float().mean())
    assert abs(both - 0.02) < 0.005  # independent draws


def test_context_masks_are_prefixes_with_the_configured_rate():
    lengths = torch.randint(40, 320, (5_000,), generator=torch.Generator().manual_seed(1))
    dropout = ConditionDropout(context=0.3, context_min_s=0.5, context_max_fraction=0.5)
    mask = sample_context_mask(
        lengths, 320, dropout, latent_fps=31.25, generator=torch.Generator().manual_seed(0)
    )
    assert mask.shape == (5_000, 1, 320)
    n = mask.sum(dim=(1, 2))
    assert abs(float((n > 0).float().mean()) - 0.3) < 0.02
    assert bool((mask.diff(dim=-1) <= 0).all())  # prefixes: ones then zeros
    given = n[n > 0]
    assert float(given.min()) >= 15  # 0.5 s at 31.25 fps, rounded
    assert bool((n <= (lengths * 0.5).clamp_min(16).round()).all()) and bool((n < lengths).all())


def test_sync_features_are_resampled_linearly_by_timestamp():
    times = torch.tensor([[0.0, 0.04, 0.08, 0.12]])
    feats = torch.stack((2 * times, -times), dim=-1)  # (1, 4, 2), linear in time
    target = torch.tensor([[0.0, 0.01, 0.05, 0.12, 0.5]])
    out = resample_linear(feats, times, target)
    clamped = target.clamp(max=0.12)
    assert torch.allclose(out, torch.stack((2 * clamped, -clamped), dim=-1), atol=1e-6)


def test_presence_of_modalities_for_guidance():
    cfg = micro_config()
    cond = random_conditions(cfg, batch=2, duration=1.0)
    assert cond.has_any_video and cond.has_any_prompt and not cond.has_any_negative_prompt
    assert not cond.replace(semantic=None, sync=None).has_any_video
    assert not cond.replace(has_video=torch.tensor([False, False])).has_any_video
    assert cond.replace(sync=None).has_any_video
    empty = TextFeatures(cond.text.tokens, torch.zeros_like(cond.text.mask), cond.text.pooled)
    assert not cond.replace(text=empty).has_any_prompt
    assert cond.replace(negative_text=text_features(cfg, 2, 3, torch.Generator())).has_any_negative_prompt


def test_bad_shapes_raise_input_errors_naming_the_field():
    cfg = micro_config()
    net = AudioDiT(cfg)
    cond = random_conditions(cfg, batch=2, duration=1.0)
    T = cfg.sequence(1.0).latent_frames
    with pytest.raises(InputError, match=r"semantic has shape \(2, 8, 5\), expected \(2, \*, 16\)"):
        net.prepare_conditions(cond.replace(semantic=torch.zeros(2, 8, 5)), num_frames=T)
    with pytest.raises(InputError, match="context_mask"):
        net.prepare_conditions(cond.replace(context=torch.zeros(2, cfg.latent_dim, T)), num_frames=T)
    with pytest.raises(InputError, match=r"lengths must lie in \[1, 32\]"):
        net.prepare_conditions(cond.replace(lengths=torch.tensor([0, 32])), num_frames=T)
