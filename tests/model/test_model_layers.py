from __future__ import annotations

import torch
from dit_helpers import micro_config, random_conditions

from v2a.model.dit import AudioDiT
from v2a.model.layers import apply_rope, rope_angles, rope_tables


def _rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    cos, sin = rope_tables(rope_angles(positions, x.shape[-1], 10_000.0))
    return apply_rope(x, cos, sin)


def test_rope_keeps_norms_and_scores_depend_only_on_the_offset():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 1, 1, 32, generator=g).unbind(0)  # (B=1, H=1, N=1, Dh=32)
    rq = _rotate(q, torch.tensor([[3.25]]))
    assert torch.allclose(rq.norm(), q.norm())
    scores = []
    for start in (0.0, 7.5, 120.125):  # fractional positions, same offset 2.75
        a = _rotate(q, torch.tensor([[start + 2.75]]))
        b = _rotate(k, torch.tensor([[start]]))
        scores.append((a * b).sum())
    assert torch.allclose(torch.stack(scores), scores[0].expand(3), atol=1e-5)
    assert not torch.allclose(scores[0], (_rotate(q, torch.tensor([[1.0]])) * k).sum(), atol=1e-3)


def test_visual_token_at_time_t_has_the_phase_of_the_audio_token_at_t():
    cfg = micro_config()
    net = AudioDiT(cfg)
    T = cfg.sequence(8.0).latent_frames
    cond = random_conditions(cfg, batch=1, duration=8.0)
    p = net.prepare_conditions(cond, num_frames=T)
    cos, sin = p.rope  # (B, 1, T + T_v + L, Dh/2)
    # 4 s is audio frame 125 (31.25 fps) and semantic frame 32 (8 fps)
    assert torch.allclose(cos[0, 0, 125], cos[0, 0, T + 32]) and torch.allclose(
        sin[0, 0, 125], sin[0, 0, T + 32]
    )
    assert not torch.allclose(cos[0, 0, 124], cos[0, 0, T + 32])
    # explicit timestamps (e.g. variable frame rate): a frame at 0.32 s lines up with audio frame 10
    times = torch.arange(64) / 8.0
    times[5] = 0.32
    times, _ = times.sort()
    p = net.prepare_conditions(cond.replace(semantic_times=times), num_frames=T)
    i = int((times == 0.32).nonzero())
    assert torch.allclose(p.rope[0][0, 0, 10], p.rope[0][0, 0, T + i], atol=1e-6)
    assert torch.allclose(p.rope[1][0, 0, 10], p.rope[1][0, 0, T + i], atol=1e-6)
    # text tokens carry no position: identity rotation
    assert torch.equal(cos[0, 0, T + 64 :], torch.ones_like(cos[0, 0, T + 64 :]))
    assert torch.equal(sin[0, 0, T + 64 :], torch.zeros_like(sin[0, 0, T + 64 :]))
