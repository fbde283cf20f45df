from __future__ import annotations

import torch
from dit_helpers import micro_config, random_conditions, randomize, text_features

from v2a.model.conditions import Conditions, TextFeatures
from v2a.model.config import model_config
from v2a.model.dit import AudioDiT, load_generator, loss_mask, save_generator
from v2a.model.flow import seed_generators


def _net(cfg=None, seed=0) -> AudioDiT:
    torch.manual_seed(seed)
    return randomize(AudioDiT(cfg or micro_config()), seed=seed).eval()


def test_tiny_shapes_with_variable_lengths_and_masks():
    cfg = model_config("tiny")
    net = AudioDiT(cfg).eval()
    randomize(net, std=0.02)
    T = cfg.sequence(8.0).latent_frames
    cond = random_conditions(cfg, batch=3, duration=8.0, text_len=7)
    mask = cond.text.mask.clone()
    mask[1, 3:] = False  # a shorter prompt
    mask[2] = False  # no prompt
    lengths = torch.tensor([T, 180, 63])
    cond = cond.replace(text=TextFeatures(cond.text.tokens, mask, cond.text.pooled), lengths=lengths)
    x = torch.randn(3, cfg.latent_dim, T)
    with torch.no_grad():
        v = net(x, torch.tensor([0.1, 0.5, 0.9]), cond)
    assert v.shape == (3, cfg.latent_dim, T) and bool(v.isfinite().all())
    assert bool((v[1, :, 180:] == 0).all()) and bool((v[2, :, 63:] == 0).all())
    assert bool((v[1, :, :180].abs() > 0).any())


def test_a_padded_sample_gives_what_it_gives_alone():
    cfg = micro_config()
    net = _net(cfg)
    T = cfg.sequence(3.0).latent_frames
    cond = random_conditions(cfg, batch=2, duration=3.0).replace(lengths=torch.tensor([T, 40]))
    x = torch.randn(2, cfg.latent_dim, T)
    t = torch.tensor([0.3, 0.6])
    with torch.no_grad():
        batched = net(x, t, cond)
        garbage = x.clone()  # padding content is ignored
        garbage[1, :, 40:] = 100 * torch.randn(cfg.latent_dim, T - 40, generator=torch.Generator())
        assert torch.allclose(net(garbage, t, cond), batched, atol=1e-5)
        text = TextFeatures(cond.text.tokens[1:], cond.text.mask[1:], cond.text.pooled[1:])
        one = Conditions(semantic=cond.semantic[1:], sync=cond.sync[1:], text=text)
        alone = net(x[1:, :, :40], t[1:], one)
    assert torch.allclose(alone[0], batched[1, :, :40], atol=1e-5)


def _branch(net, cond, T, x, t, *, video: bool, text):
    keep = torch.full((x.shape[0],), video)
    p = net.prepare_conditions(cond.replace(text=text), num_frames=T, batch=x.shape[0], keep_video=keep)
    return net.predict_flow(x, t, p)


def test_guidance_scales_one_and_zero_give_the_plain_branches():
    cfg = micro_config()
    net = _net(cfg)
    T = cfg.sequence(2.0).latent_frames
    cond = random_conditions(cfg, batch=2, duration=2.0)
    cond = cond.replace(negative_text=text_features(cfg, 2, 3, torch.Generator().manual_seed(5)))
    x, t = torch.randn(2, cfg.latent_dim, T), torch.full((2,), 0.4)
    with torch.no_grad():
        full = _branch(net, cond, T, x, t, video=True, text=cond.text)
        uncond = _branch(net, cond, T, x, t, video=False, text=cond.negative_text)
        video = _branch(net, cond, T, x, t, video=True, text=cond.negative_text)

        def guided(wv: float, wt: float) -> torch.Tensor:
            return net.guided_velocity(cond, num_frames=T, guidance_scale=wv, text_guidance_scale=wt)(t, x)

        assert torch.allclose(guided(1.0, 1.0), full, atol=1e-5)
        assert torch.allclose(guided(0.0, 0.0), uncond, atol=1e-5)
        expected = uncond + 2.5 * (video - uncond) + 4.0 * (full - video)
        assert torch.allclose(guided(2.5, 4.0), expected, atol=1e-4)
        assert not torch.allclose(full, uncond, atol=1e-3)


def test_negative_prompt_changes_only_the_branches_without_the_prompt():
    cfg = micro_config()
    net = _net(cfg)
    T = cfg.sequence(2.0).latent_frames
    cond = random_conditions(cfg, batch=1, duration=2.0)
    neg_a = cond.replace(negative_text=text_features(cfg, 1, 3, torch.Generator().manual_seed(1)))
    neg_b = cond.replace(negative_text=text_features(cfg, 1, 4, torch.Generator().manual_seed(2)))
    x, t = torch.randn(1, cfg.latent_dim, T), torch.full((1,), 0.5)

    def guided(c: Conditions, w: float) -> torch.Tensor:
        return net.guided_velocity(c, num_frames=T, guidance_scale=w, text_guidance_scale=w)(t, x)

    with torch.no_grad():
        # w = 1 is the conditional branch alone, which the negative prompt does not touch
        assert torch.allclose(guided(neg_a, 1.0), guided(neg_b, 1.0), atol=1e-6)
        assert not torch.allclose(guided(neg_a, 3.0), guided(neg_b, 3.0), atol=1e-3)
        assert not torch.allclose(guided(neg_a, 3.0), guided(cond, 3.0), atol=1e-3)  # vs null text
        # w_v = w_t = w is plain CFG with the negative prompt in the unconditional branch
        full = _branch(net, neg_a, T, x, t, video=True, text=neg_a.text)
        uncond = _branch(net, neg_a, T, x, t, video=False, text=neg_a.negative_text)
        assert torch.allclose(guided(neg_a, 3.0), uncond + 3.0 * (full - uncond), atol=1e-4)


def test_generate_keeps_context_frames_and_seeds_each_variant():
    cfg = micro_config()
    net = _net(cfg)
    T = cfg.sequence(2.0).latent_frames
    cond = random_conditions(cfg, batch=1, duration=2.0, text_len=None)  # no prompt
    context = 3 + torch.randn(1, cfg.latent_dim, T)
    cmask = torch.zeros(1, 1, T)
    cmask[..., :20] = 1
    cond = cond.replace(context=context, context_mask=cmask)
    out = net.generate(
        cond, num_frames=T, num_samples=2, generators=seed_generators([3, 4]), num_inference_steps=4
    )
    assert out.shape == (2, cfg.latent_dim, T) and bool(out.isfinite().all())
    assert torch.equal(out[:, :, :20], context[:, :, :20].expand(2, -1, -1))
    assert not torch.allclose(out[0, :, 20:], out[1, :, 20:])
    single = net.generate(cond, num_frames=T, generators=seed_generators([4]), num_inference_steps=4)
    assert torch.allclose(single[0], out[1], atol=1e-5)  # a variant does not depend on its batch mates
    nothing = net.generate(Conditions(), num_frames=T, num_inference_steps=2, method="heun")
    assert nothing.shape == (1, cfg.latent_dim, T) and bool(nothing.isfinite().all())


def test_output_at_time_t_depends_on_sync_features_near_t():
    cfg = micro_config()
    net = _net(cfg, seed=1)
    duration = 6.0
    seq = cfg.sequence(duration)
    cond = random_conditions(cfg, batch=1, duration=duration)
    x, t = torch.randn(1, cfg.latent_dim, seq.latent_frames), torch.full((1,), 0.5)
    with torch.no_grad():
        base = net(x, t, cond)
        ratios = []
        for centre in (1.5, 3.0, 4.5):
            sync = cond.sync.clone()
            k = round(centre * cfg.sync_fps)
            sync[:, k - 2 : k + 3] += 3.0  # a burst of motion around `centre` seconds
            delta = (net(x, t, cond.replace(sync=sync)) - base).abs().mean(dim=1)[0]  # (T,)
            j = round(centre * cfg.latent_fps)
            near = float(delta[j - 3 : j + 4].mean())
            far = torch.cat(
                (delta[: j - round(0.7 * cfg.latent_fps)], delta[j + round(0.7 * cfg.latent_fps) :])
            )
            ratios.append(near / float(far.mean()))
    assert min(ratios) > 5.0, ratios


def test_loss_mask_excludes_padding_and_context():
    ctx = torch.zeros(2, 1, 10)
    ctx[0, :, :3] = 1
    mask = loss_mask(torch.tensor([10, 6]), ctx, 10)
    assert mask[0, 0].tolist() == [0, 0, 0] + [1] * 7
    assert mask[1, 0].tolist() == [1] * 6 + [0] * 4


def test_checkpoint_round_trip(tmp_path):
    cfg = micro_config(latent_dim=6)
    net = _net(cfg)
    net.set_latent_stats(torch.arange(6.0), torch.full((6,), 2.0))
    save_generator(net, tmp_path / "gen", meta={"step": 3})
    loaded = load_generator(tmp_path / "gen")
    assert loaded.cfg == cfg
    assert torch.equal(loaded.latent_mean, torch.arange(6.0))
    T = 20
    cond = random_conditions(cfg, batch=1, duration=T / cfg.latent_fps)
    x, t = torch.randn(1, 6, T), torch.full((1,), 0.2)
    with torch.no_grad():
        assert torch.equal(loaded(x, t, cond), net(x, t, cond))
