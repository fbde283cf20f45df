from __future__ import annotations

import math

import pytest
import torch

from v2a.errors import InputError
from v2a.model.flow import (
    FlowMatching,
    GuidanceBranch,
    GuidedVelocity,
    make_noise,
    plan_guidance,
    seed_generators,
    time_grid,
)


def test_euler_one_step_is_exact_on_the_straight_path():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 3, 4, 10, generator=g).unbind(0)

    def fn(t, x):  # the conditional field of the straight path to x1: v = (x1 - x) / (1 - t) = x1 - x0
        return (x1 - x) / (1 - t).view(-1, 1, 1)

    assert torch.allclose(FlowMatching.sample(fn, x0, steps=1, method="euler"), x1, atol=1e-6)
    for method in ("heun", "midpoint"):  # a constant field is integrated exactly by every method
        out = FlowMatching.sample(lambda t, x: x1 - x0, x0, steps=3, method=method, shift=3.0)
        assert torch.allclose(out, x1, atol=1e-5)


def _rotation_error(method: str, steps: int) -> float:
    x0 = torch.tensor([[[1.0], [0.0]]])  # (B=1, C=2, T=1)
    omega = 3.0

    def fn(t, x):  # dx/dt = omega * J x: a circle, a curved path
        return omega * torch.stack((-x[:, 1], x[:, 0]), dim=1)

    exact = torch.tensor([math.cos(omega), math.sin(omega)])
    return float((FlowMatching.sample(fn, x0, steps=steps, method=method)[0, :, 0] - exact).norm())


def test_second_order_samplers_converge_faster_than_euler_on_a_curved_field():
    euler = [_rotation_error("euler", n) for n in (8, 16)]
    heun = [_rotation_error("heun", n) for n in (8, 16)]
    midpoint = [_rotation_error("midpoint", n) for n in (8, 16)]
    assert heun[1] < euler[1] / 10 and midpoint[1] < euler[1] / 10
    assert 1.6 < euler[0] / euler[1] < 2.6  # first order: halving h halves the error
    assert heun[0] / heun[1] > 3.2 and midpoint[0] / midpoint[1] > 3.2  # second order: a quarter


def test_time_grid_endpoints_and_shift():
    uniform = time_grid(4)
    assert torch.allclose(uniform, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    shifted = time_grid(4, shift=3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and bool((shifted.diff() > 0).all())
    assert shifted[1] < uniform[1]  # shift > 1: smaller steps at the noise end
    with pytest.raises(InputError, match="steps"):
        time_grid(0)
    with pytest.raises(InputError, match="unknown sampler 'rk4'"):
        FlowMatching.sample(lambda t, x: x, torch.zeros(1, 1, 1), steps=1, method="rk4")


def test_logit_normal_times():
    t = FlowMatching(logit_mean=0.0, logit_std=1.0).sample_t(
        20_000, generator=torch.Generator().manual_seed(0)
    )
    assert bool(((t > 0) & (t < 1)).all())
    assert abs(float(t.median()) - 0.5) < 0.02
    # sigmoid(N(0, 1)): P(t < sigmoid(-1)) = P(z < -1) = 0.159
    assert abs(float((t < 1 / (1 + math.e)).float().mean()) - 0.159) < 0.015
    later = FlowMatching(logit_mean=1.0).sample_t(20_000, generator=torch.Generator().manual_seed(0))
    assert float(later.median()) > 0.7


def test_loss_is_zero_for_the_true_velocity_and_ignores_masked_frames():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 2, 3, 8, generator=g).unbind(0)
    t = torch.tensor([0.2, 0.7])
    flow = FlowMatching()
    exact = flow.loss(lambda t_, x: x1 - x0, x1, t=t, x0=x0)
    assert float(exact) == 0.0
    mask = torch.ones(2, 1, 8)
    mask[:, :, 5:] = 0

    def wrong_on_masked(t_, x):
        v = x1 - x0
        v[:, :, 5:] += 100.0
        return v

    assert float(flow.loss(wrong_on_masked, x1, t=t, x0=x0, mask=mask)) == 0.0
    assert float(flow.loss(lambda t_, x: x1 - x0 + 1.0, x1, t=t, x0=x0, mask=mask)) == pytest.approx(1.0)


def test_noise_per_variant_does_not_depend_on_the_batch():
    both = make_noise((3, 5), seed_generators([11, 12]))
    alone = make_noise((3, 5), seed_generators([12]))
    assert torch.equal(both[1], alone[0]) and not torch.equal(both[0], both[1])


def test_guided_velocity_batches_the_branches_and_weights_them():
    calls = []

    def predict(x, t, cond):  # branch k adds its own offset
        calls.append(x.shape[0])
        return x + cond.view(-1, 1, 1)

    offsets = torch.tensor([0.0, 0.0, 10.0, 10.0, 100.0, 100.0])  # 3 branches x batch 2, branch-major
    fn = GuidedVelocity(predict, offsets, [-1.0, -2.0, 4.0])
    x = torch.randn(2, 1, 3)
    out = fn(torch.zeros(2), x)
    assert calls == [6]  # one forward pass for all branches
    assert torch.allclose(out, x + (-1.0 * 0 - 2.0 * 10 + 4.0 * 100))


def test_guidance_plan_merges_equal_branches_and_drops_zero_weights():
    def plan(video: bool, prompt: bool, negative: bool, wv: float, wt: float) -> list[GuidanceBranch]:
        return plan_guidance(
            has_video=video,
            has_prompt=prompt,
            has_negative=negative,
            guidance_scale=wv,
            text_guidance_scale=wt,
        )

    assert plan(True, True, False, 2.0, 5.0) == [
        GuidanceBranch(False, "null", -1.0),
        GuidanceBranch(True, "null", -3.0),
        GuidanceBranch(True, "prompt", 5.0),
    ]
    assert plan(True, True, False, 1.0, 1.0) == [GuidanceBranch(True, "prompt", 1.0)]  # no guidance: 1 pass
    assert plan(True, True, True, 3.0, 3.0) == [  # plain CFG with a negative prompt: 2 passes
        GuidanceBranch(False, "negative", -2.0),
        GuidanceBranch(True, "prompt", 3.0),
    ]
    # no prompt: v_full = v_video, merged
    assert plan(True, False, False, 3.0, 5.0) == [
        GuidanceBranch(False, "null", -2.0),
        GuidanceBranch(True, "null", 3.0),
    ]
    # no prompt but a negative one: the text scale pushes away from it
    assert [(b.video, b.text) for b in plan(True, False, True, 3.0, 5.0)] == [
        (False, "negative"),
        (True, "negative"),
        (True, "null"),
    ]
    # no video: v_video = v_uncond, merged
    assert plan(False, True, False, 3.0, 5.0) == [
        GuidanceBranch(False, "null", -4.0),
        GuidanceBranch(False, "prompt", 5.0),
    ]
    for args in [(True, True, True, 2.0, 7.0), (False, False, True, 4.0, 1.5)]:
        assert sum(b.weight for b in plan(*args)) == pytest.approx(1.0)
