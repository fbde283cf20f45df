"""Conditional flow matching (rectified flow): the probability path, the training loss, ODE samplers, guidance.

Convention (as in MMAudio): ``x0`` is Gaussian noise, ``x1`` is data, and the straight path between them is
``x_t = (1 - t) * x0 + t * x1`` for t in [0, 1]; the network predicts the velocity ``v = x1 - x0``
(Lipman et al. 2023; Liu et al. 2023). Sampling integrates dx/dt = v(t, x) from noise at t = 0 to data at
t = 1. Everything here knows the network only as a velocity function ``fn(t, x)`` with t of shape (B,)
and x of shape (B, C, T); guidance wraps a ``predict(x, t, conditions)`` callable into such a function.

Guidance (one batched forward pass over up to three branches; ``w_v`` = ``guidance_scale``, ``w_t`` =
``text_guidance_scale``)::

    v = v_uncond + w_v * (v_video - v_uncond) + w_t * (v_full - v_video)
    v_uncond = v(video off, negative text)   v_video = v(video on, negative text)   v_full = v(video on, prompt)

The negative prompt (null text when there is none) thus stands in every branch without the prompt: ``w_v``
scales what the picture adds, ``w_t`` how far the prompt pulls away from the negative prompt. ``w_v = w_t =
1`` gives ``v_full``, ``w_v = w_t = 0`` gives ``v_uncond``, ``w_v = w_t = w`` is the usual CFG with a
negative prompt. Branches that coincide (no video, or neither prompt nor negative prompt) are evaluated once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from v2a.errors import InputError

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAMPLERS = ("euler", "heun", "midpoint")
EVALS_PER_STEP = {"euler": 1, "heun": 2, "midpoint": 2}


def time_grid(steps: int, *, shift: float = 1.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Integration times from 0 (noise) to 1 (data).

    Args:
        steps: number of ODE steps (>= 1).
        shift: SD3's timestep shift on the noise level ``s = 1 - t``: ``s' = shift * s / (1 + (shift - 1) * s)``.
            1 gives uniform steps; > 1 spends more of them near the noise end, where the path bends most.
        device: device of the result.

    Returns:
        (steps + 1,) increasing times, first 0, last 1.
    """
    if steps < 1:
        raise InputError(f"number of sampling steps must be >= 1, got {steps}")
    if not shift > 0:
        raise InputError(f"time shift must be > 0, got {shift}")
    s = 1.0 - torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    s = shift * s / (1.0 + (shift - 1.0) * s)
    return (1.0 - s).float().to(device)


def make_noise(
    shape: Sequence[int],
    generators: Sequence[torch.Generator],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Starting noise of N variants, each drawn from its own generator.

    The noise is drawn on CPU and then moved, so a seed gives the same variant on any device and in any
    batch composition.

    Args:
        shape: (C, T) of one variant.
        generators: N CPU generators, one per variant.
        device: where the result goes.
        dtype: its dtype.

    Returns:
        (N, C, T) noise.
    """
    return torch.stack([torch.randn(tuple(shape), generator=g) for g in generators]).to(device, dtype)


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per seed (per variant)."""
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]


@dataclass(frozen=True)
class FlowMatching:
    """The rectified-flow path, its loss and its samplers.

    Attributes:
        logit_mean: mean of the logit-normal training time distribution (SD3; 0 centres it on t = 0.5).
        logit_std: its standard deviation.
    """

    logit_mean: float = 0.0
    logit_std: float = 1.0

    @staticmethod
    def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The point ``x_t = (1 - t) x0 + t x1`` with t (B,) and x0, x1 (B, C, T)."""
        t = t.view(-1, *([1] * (x1.ndim - 1)))  # (B, 1, 1)
        return (1 - t) * x0 + t * x1

    @staticmethod
    def target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The velocity the network learns: ``x1 - x0``."""
        return x1 - x0

    def sample_t(self, batch: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(B,) training times from the logit-normal distribution ``sigmoid(N(logit_mean, logit_std))``."""
        gen_device = generator.device if generator is not None else "cpu"
        z = torch.randn(batch, generator=generator, device=gen_device)
        return torch.sigmoid(self.logit_mean + self.logit_std * z).to(device or gen_device)

    def loss(
        self,
        fn: VelocityFn,
        x1: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        x0: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Flow-matching loss: mean squared velocity error over the frames ``mask`` selects.

        Args:
            fn: velocity function ``fn(t, x_t)``.
            x1: (B, C, T) data (normalised latents).
            mask: (B, 1, T), 1 on frames that count (valid and not given as context); None counts all.
            t: (B,) times; None samples them logit-normally.
            x0: (B, C, T) noise; None draws it.
            generator: random source for ``t`` and ``x0`` (must live on ``x1``'s device).

        Returns:
            Scalar loss, averaged over the counted frames and the channels.
        """
        B = x1.shape[0]
        if t is None:
            t = self.sample_t(B, generator=generator, device=x1.device)
        if x0 is None:
            x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        err = (fn(t, self.interpolate(x0, x1, t)) - self.target(x0, x1)).square()  # (B, C, T)
        if mask is None:
            return err.mean()
        mask = mask.to(err.dtype)
        return (err * mask).sum() / (mask.sum() * x1.shape[1]).clamp_min(1.0)

    @staticmethod
    def sample(
        fn: VelocityFn, x0: torch.Tensor, *, steps: int, method: str = "euler", shift: float = 1.0
    ) -> torch.Tensor:
        """Integrate dx/dt = fn(t, x) from t = 0 to 1.

        Args:
            fn: velocity function.
            x0: (B, C, T) starting noise.
            steps: ODE steps (network evaluations: ``steps * EVALS_PER_STEP[method]``).
            method: ``euler`` (1st order), ``heun`` (2nd order, trapezoidal) or ``midpoint`` (2nd order).
            shift: time-grid shift (see :func:`time_grid`).

        Returns:
            (B, C, T) the sample at t = 1.
        """
        if method not in SAMPLERS:
            raise InputError(f"unknown sampler {method!r}; known: {', '.join(SAMPLERS)}")
        grid = time_grid(steps, shift=shift, device=x0.device)
        B = x0.shape[0]
        x = x0
        for t0, t1 in zip(grid[:-1].tolist(), grid[1:].tolist(), strict=True):
            h = t1 - t0
            d0 = fn(torch.full((B,), t0, device=x.device), x)
            if method == "euler":
                x = x + h * d0
            elif method == "midpoint":
                x = x + h * fn(torch.full((B,), t0 + h / 2, device=x.device), x + (h / 2) * d0)
            else:
                d1 = fn(torch.full((B,), t1, device=x.device), x + h * d0)
                x = x + (h / 2) * (d0 + d1)
        return x


@dataclass(frozen=True)
class GuidanceBranch:
    """One network evaluation of guidance: video on/off, which text, and its weight in the sum.

    Attributes:
        video: whether the video conditions are kept.
        text: ``prompt``, ``negative`` or ``null``.
        weight: the branch's weight (the weights of a plan sum to 1).
    """

    video: bool
    text: str
    weight: float


def guidance_weights(guidance_scale: float, text_guidance_scale: float) -> tuple[float, float, float]:
    """Weights of (v_uncond, v_video, v_full) in the guided velocity (see the module doc); they sum to 1."""
    w_v, w_t = guidance_scale, text_guidance_scale
    return 1.0 - w_v, w_v - w_t, w_t


def plan_guidance(
    *,
    has_video: bool,
    has_prompt: bool,
    has_negative: bool,
    guidance_scale: float,
    text_guidance_scale: float,
) -> list[GuidanceBranch]:
    """The distinct network evaluations guidance needs, with their weights.

    Branches that are the same evaluation (no video: v_video = v_uncond; neither prompt nor negative
    prompt: v_full = v_video) are merged, and branches of weight 0 are skipped.

    Args:
        has_video: whether the clips have video conditions.
        has_prompt: whether they have a prompt.
        has_negative: whether they have a negative prompt.
        guidance_scale: w_v.
        text_guidance_scale: w_t.
    """
    prompt = "prompt" if has_prompt else "null"
    negative = "negative" if has_negative else "null"
    w_u, w_vid, w_full = guidance_weights(guidance_scale, text_guidance_scale)
    merged: dict[tuple[bool, str], float] = {}
    for video, text, w in ((False, negative, w_u), (has_video, negative, w_vid), (has_video, prompt, w_full)):
        merged[(video, text)] = merged.get((video, text), 0.0) + w
    return [GuidanceBranch(video, text, w) for (video, text), w in merged.items() if w != 0.0]


class GuidedVelocity:
    """Classifier-free guidance as a velocity function: K branches in one batched call, summed with weights.

    Args:
        predict: ``predict(x, t, conditions)`` -> velocity, with x (K*B, C, T) and t (K*B,).
        conditions: the K branches' conditions stacked branch-major (branch k holds rows k*B ... k*B + B - 1).
        weights: K weights, e.g. from :func:`plan_guidance`.
    """

    def __init__(
        self,
        predict: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
        conditions: Any,
        weights: Sequence[float],
    ):
        if not weights:
            raise InputError("guidance needs at least one branch")
        self.predict = predict
        self.conditions = conditions
        self.weights = [float(w) for w in weights]

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B,) times, (B, C, T) state -> (B, C, T) guided velocity."""
        K = len(self.weights)
        v = self.predict(x.repeat(K, *([1] * (x.ndim - 1))), t.repeat(K), self.conditions)  # (K*B, C, T)
        v = v.view(K, *x.shape)  # (K, B, C, T)
        out = self.weights[0] * v[0]
        for w, vk in zip(self.weights[1:], v[1:], strict=True):
            out = out + w * vk
        return out
