"""Any-length generation (v2a.longform): window plans, per-variant seeds, continuation through the context.

The generator is the tiny config with random weights (every adaLN-Zero layer given random values, so the
conditions and the audio context reach the output); the tests check the windowing, not sound quality.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from v2a.errors import InputError
from v2a.longform import Window, generate_long, plan_windows
from v2a.model.config import model_config
from v2a.model.dit import AudioDiT
from v2a.model.inputs import ClipFeatures, collate, crop

SAMPLING = dict(prompt=None, negative_prompt=None, num_inference_steps=2)
WINDOW_S, CONTEXT_S = 8.0, 2.0  # 250 and 62 latent frames at 31.25 fps


@pytest.mark.parametrize(
    ("total", "window", "context"), [(625, 250, 62), (626, 250, 62), (1000, 100, 0), (7, 3, 2)]
)
def test_windows_cover_every_frame_and_overlap_by_exactly_the_context(total, window, context):
    windows = plan_windows(total, window, context)
    assert windows[0] == Window(0, window, 0)
    assert all(w.context == context and 0 < w.frames <= window for w in windows[1:])
    for a, b in itertools.pairwise(windows):
        assert b.start == a.start + a.frames - context  # overlap = the context, no gap
    assert windows[-1].start + windows[-1].frames == total
    covered = torch.zeros(total, dtype=torch.bool)
    for w in windows:
        covered[w.start : w.start + w.frames] = True
    assert bool(covered.all())
    assert len(windows) == max(1, -(-(total - context) // (window - context)))  # no window more than needed


def test_short_clips_are_one_window_and_bad_plans_are_input_errors():
    assert plan_windows(100, 250, 62) == [Window(0, 100, 0)]
    assert plan_windows(250, 250, 62) == [Window(0, 250, 0)]
    for window, context in ((0, 0), (50, 50), (50, 60), (50, -1)):
        with pytest.raises(InputError, match="context < window"):
            plan_windows(100, window, context)


def test_an_empty_clip_is_an_input_error():
    with pytest.raises(InputError):
        plan_windows(0, 250, 62)


@pytest.fixture(scope="module")
def net() -> AudioDiT:
    """The tiny generator with its zero-initialised (adaLN-Zero) weights given random values."""
    torch.manual_seed(0)
    net = AudioDiT(model_config("tiny"))
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(0.1 * torch.randn_like(p))
    return net.eval()


def _gens(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="module")
def long_01(net) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """20 s text-only generation, seeds [0, 1], and the progress calls it made."""
    calls: list[tuple[int, int]] = []
    out = generate_long(net, ClipFeatures(duration_s=20.0), generators=_gens([0, 1]), window_s=WINDOW_S,
                        context_s=CONTEXT_S, on_window=lambda i, n: calls.append((i, n)), **SAMPLING)  # fmt: skip
    return out, calls


def test_long_generation_has_the_clip_length_and_is_seeded_per_variant(net, long_01):
    out, calls = long_01
    total = net.cfg.sequence(20.0).latent_frames
    assert out.shape == (2, net.cfg.latent_dim, total) and bool(torch.isfinite(out).all())
    assert calls == [(1, 3), (2, 3), (3, 3)]  # windows at 0, 188 and 376 frames
    assert out[:, :, -10:].abs().mean() > 0.1  # the last window was written, not left at zeros
    again = generate_long(net, ClipFeatures(duration_s=20.0), generators=_gens([0, 1]), window_s=WINDOW_S,
                          context_s=CONTEXT_S, **SAMPLING)  # fmt: skip
    torch.testing.assert_close(again, out, atol=0, rtol=0)  # same seeds, same latents
    other = generate_long(net, ClipFeatures(duration_s=20.0), generators=_gens([0, 2]), window_s=WINDOW_S,
                          context_s=CONTEXT_S, **SAMPLING)  # fmt: skip
    torch.testing.assert_close(other[0], out[0], atol=0, rtol=0)  # a variant depends on its own seed only
    assert (other[1] - out[1]).abs().mean() > 0.1


def test_later_windows_keep_the_first_and_continue_from_its_last_seconds(net, long_01):
    out, _ = long_01
    fps, T = net.cfg.latent_fps, round(WINDOW_S * net.cfg.latent_fps)
    ctx = round(CONTEXT_S * fps)
    gens = _gens([0, 1])
    first = generate_long(net, ClipFeatures(duration_s=WINDOW_S), generators=gens, window_s=WINDOW_S,
                          context_s=CONTEXT_S, **SAMPLING)  # fmt: skip
    assert first.shape[-1] == T
    # window 2 rewrote frames T - ctx .. T with its given context: the first 8 s are window 1's, exactly
    torch.testing.assert_close(out[:, :, :T], first, atol=0, rtol=0)

    # window 2 = the next noise of each generator, continued from window 1's last 2 s
    states = [g.get_state() for g in gens]
    part = crop(ClipFeatures(duration_s=20.0), (T - ctx) / fps, T / fps, latent_fps=fps)
    _, cond, _ = collate([part, part], net.cfg, num_frames=T)
    mask = torch.zeros(2, 1, T)
    mask[:, :, :ctx] = 1.0

    def window_two(context: torch.Tensor) -> torch.Tensor:
        for g, s in zip(gens, states, strict=True):
            g.set_state(s)
        full = torch.zeros(2, net.cfg.latent_dim, T)
        full[:, :, :ctx] = context
        c = cond.replace(context=full, context_mask=mask)
        return net.generate(c, num_frames=T, num_samples=1, generators=gens, num_inference_steps=2)

    continued = window_two(first[:, :, T - ctx :])
    torch.testing.assert_close(out[:, :, T - ctx : 2 * T - ctx], continued, atol=0, rtol=0)
    unrelated = window_two(torch.zeros(2, net.cfg.latent_dim, ctx))
    assert (unrelated[:, :, ctx:] - continued[:, :, ctx:]).abs().mean() > 1e-2  # the context steers the rest


def test_bad_windows_are_input_errors(net):
    clip = ClipFeatures(duration_s=4.0)
    for window_s, context_s in ((2.0, 2.0), (2.0, 3.0), (0.0, 1.0)):
        with pytest.raises(InputError):
            generate_long(
                net, clip, generators=_gens([0]), window_s=window_s, context_s=context_s, **SAMPLING
            )
