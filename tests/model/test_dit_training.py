"""The generator learns: a few hundred steps of the training recipe overfit one clip."""

from __future__ import annotations

import pytest
import torch
from dit_helpers import micro_config, random_conditions, randomize

from v2a.model.conditions import ConditionDropout, TextFeatures, sample_context_mask, sample_keep_masks
from v2a.model.config import model_config
from v2a.model.dit import AudioDiT, loss_mask
from v2a.model.flow import FlowMatching


def _overfit(cfg, *, steps: int, batch: int = 8, duration: float = 1.0) -> tuple[list[float], float]:
    """Train on one (conditions, latent) pair; returns the losses and the relative error of a sample."""
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small ops: a second thread only adds waiting, worse on a busy machine
    net = AudioDiT(cfg)
    T = cfg.sequence(duration).latent_frames
    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, cfg.latent_dim, T, generator=g).cumsum(-1) / 4  # a smooth latent track
    net.set_latent_stats(target.mean(dim=(0, 2)), target.std(dim=(0, 2)))
    cond = random_conditions(cfg, batch=1, duration=duration)
    rep = lambda x: x.expand(batch, *x.shape[1:])  # noqa: E731
    text = TextFeatures(rep(cond.text.tokens), rep(cond.text.mask), rep(cond.text.pooled))
    batch_cond = cond.replace(semantic=rep(cond.semantic), sync=rep(cond.sync), text=text)
    x1 = net.normalize(target).expand(batch, -1, -1)
    mask = loss_mask(torch.full((batch,), T), None, T)
    flow, dropout = FlowMatching(), ConditionDropout(video=0.0, text=0.0)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        keep_video, keep_text = sample_keep_masks(batch, dropout, generator=g)
        prepared = net.prepare_conditions(
            batch_cond, num_frames=T, keep_video=keep_video, keep_text=keep_text
        )
        loss = flow.loss(lambda t, x, p=prepared: net.predict_flow(x, t, p), x1, mask=mask, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    out = net.generate(cond, num_frames=T, num_inference_steps=8, guidance_scale=1.0, text_guidance_scale=1.0)
    return losses, float((out - target).square().mean() / target.var())


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("micro", 150),
        pytest.param("tiny", 300, marks=pytest.mark.slow),  # ~1-2 min on 2 cores
    ],
)
def test_generator_overfits_one_conditioning_to_one_target(name, steps):
    cfg = micro_config(width=128, heads=4) if name == "micro" else model_config("tiny")
    losses, sample_error = _overfit(cfg, steps=steps)
    first, last = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert last < first / 10, (first, last)
    assert sample_error < 0.05  # 8 Euler steps from noise land on the memorised latent


def test_training_step_with_dropout_context_and_padding_reaches_every_part():
    cfg = micro_config()
    torch.manual_seed(0)
    net = randomize(AudioDiT(cfg))  # past adaLN-Zero's first step, when only the read-out gets gradients
    B, T = 16, cfg.sequence(2.0).latent_frames
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(B, cfg.latent_dim, T, generator=g)
    lengths = torch.randint(20, T + 1, (B,), generator=g)
    dropout = ConditionDropout(video=0.3, text=0.3, context=0.5)
    keep_video, keep_text = sample_keep_masks(B, dropout, generator=g)
    cmask = sample_context_mask(lengths, T, dropout, latent_fps=cfg.latent_fps, generator=g)
    assert not keep_video.all() and not keep_text.all() and bool(cmask.any())
    cond = random_conditions(cfg, batch=B, duration=2.0).replace(
        context=latents, context_mask=cmask, lengths=lengths
    )
    prepared = net.prepare_conditions(cond, num_frames=T, keep_video=keep_video, keep_text=keep_text)
    mask = loss_mask(lengths, cmask, T)
    loss = FlowMatching().loss(
        lambda t, x: net.predict_flow(x, t, prepared), net.normalize(latents), mask=mask, generator=g
    )
    loss.backward()
    assert loss.isfinite()
    enc = net.conditioner
    for name, p in [
        ("null_visual", enc.null_visual),
        ("null_sync", enc.null_sync),
        ("null_text", enc.null_text),
        ("semantic_proj", enc.semantic_proj[0].weight),
        ("sync_proj", enc.sync_proj.conv1.weight),
        ("text_proj", enc.text_proj[0].weight),
        ("input_proj", net.input_proj.conv1.weight),
        ("final", net.final.linear.weight),
    ]:
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
