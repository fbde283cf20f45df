"""Conditions of the generator: encoder features in, model-width tokens out, once per clip.

``Conditions`` holds what the encoders give for a batch of clips (semantic tokens, sync features, text,
an optional negative prompt and audio context). ``ConditionEncoder`` turns them into ``PreparedConditions``
(projected tokens, RoPE tables, the sync track resampled to the audio token rate, attention masks); this
runs once per clip, while the network's per-step work only reads the prepared tensors.

A modality is *off* for a sample when it is missing (``None``, ``has_video`` False, an all-False text mask)
or dropped (``keep_video`` / ``keep_text`` False); an off modality is replaced by learned null embeddings.
Training samples the keep masks with :func:`sample_keep_masks` (condition dropout) and guidance sets them
per branch (``v2a.model.flow.plan_guidance``), so both go through the same :meth:`ConditionEncoder.forward`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from v2a.errors import InputError
from v2a.model.config import ModelConfig
from v2a.model.layers import ConvMLP, rope_angles, rope_tables


@dataclass(frozen=True)
class TextFeatures:
    """A tokenised, encoded prompt per sample.

    Attributes:
        tokens: (B, L, D_txt) token embeddings.
        mask: (B, L) bool, True for real tokens; a row without any is an empty prompt (null text).
        pooled: (B, D_txt) sentence embedding.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    @property
    def present(self) -> torch.Tensor:
        """(B,) bool: samples with a non-empty prompt."""
        return self.mask.any(dim=1)


@dataclass(frozen=True)
class Conditions:
    """Encoder features of a batch of B clips; times in seconds from the first video frame.

    Attributes:
        semantic: (B, T_v, D_sem) semantic tokens, or None (no video).
        semantic_times: (B, T_v) or (T_v,) timestamps; None means ``i / semantic_fps``.
        semantic_mask: (B, T_v) bool, True for real frames; None means every frame up to each clip's end.
        sync: (B, T_s, D_sync) sync (motion) features, or None.
        sync_times: (B, T_s) or (T_s,) timestamps; None means ``k / sync_fps``.
        has_video: (B,) bool, False for samples without a picture (audio-text data); None means all have one.
        text: the prompt, or None (no prompt).
        negative_text: the negative prompt for guidance, or None (null text).
        context: (B, C, T_a) known audio latents (raw codec scale), or None.
        context_mask: (B, 1, T_a), 1 where ``context`` is given (e.g. the first seconds).
        lengths: (B,) valid audio latent frames per sample; None means all T_a frames.
    """

    semantic: torch.Tensor | None = None
    semantic_times: torch.Tensor | None = None
    semantic_mask: torch.Tensor | None = None
    sync: torch.Tensor | None = None
    sync_times: torch.Tensor | None = None
    has_video: torch.Tensor | None = None
    text: TextFeatures | None = None
    negative_text: TextFeatures | None = None
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def replace(self, **changes: object) -> Conditions:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def has_any_video(self) -> bool:
        """Whether some sample has a picture (semantic or sync features)."""
        features = self.semantic is not None or self.sync is not None
        return features and (self.has_video is None or bool(self.has_video.any()))

    @property
    def has_any_prompt(self) -> bool:
        """Whether some sample has a non-empty prompt."""
        return self.text is not None and bool(self.text.present.any())

    @property
    def has_any_negative_prompt(self) -> bool:
        """Whether some sample has a non-empty negative prompt."""
        return self.negative_text is not None and bool(self.negative_text.present.any())

    def check(self, cfg: ModelConfig, batch: int, num_frames: int) -> None:
        """Raise InputError naming the first field whose shape does not fit ``batch`` x ``num_frames``."""

        def expect(name: str, x: torch.Tensor | None, shape: tuple[int | None, ...]) -> None:
            if x is None:
                return
            ok = x.ndim == len(shape) and all(
                s is None or s == n for s, n in zip(shape, x.shape, strict=True)
            )
            if not ok:
                want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
                raise InputError(f"generator condition {name} has shape {tuple(x.shape)}, expected {want}")

        expect("semantic", self.semantic, (batch, None, cfg.semantic_dim))
        expect("sync", self.sync, (batch, None, cfg.sync_dim))
        T_v = None if self.semantic is None else self.semantic.shape[1]
        T_s = None if self.sync is None else self.sync.shape[1]
        for name, times, n in (
            ("semantic_times", self.semantic_times, T_v),
            ("sync_times", self.sync_times, T_s),
        ):
            if times is not None:
                if n is None:
                    raise InputError(f"generator condition {name} is given without its features")
                expect(name, times, (n,) if times.ndim == 1 else (batch, n))
        expect("semantic_mask", self.semantic_mask, (batch, T_v))
        if T_v == 0 or T_s == 0:
            raise InputError("generator conditions hold an empty feature sequence; pass None for no video")
        expect("has_video", self.has_video, (batch,))
        for name, text in (("text", self.text), ("negative_text", self.negative_text)):
            if text is not None:
                expect(f"{name}.tokens", text.tokens, (batch, None, cfg.text_dim))
                expect(f"{name}.mask", text.mask, (batch, text.tokens.shape[1]))
                expect(f"{name}.pooled", text.pooled, (batch, cfg.text_dim))
        if (self.context is None) != (self.context_mask is None):
            raise InputError("generator conditions need both context and context_mask, or neither")
        expect("context", self.context, (batch, cfg.latent_dim, num_frames))
        expect("context_mask", self.context_mask, (batch, 1, num_frames))
        expect("lengths", self.lengths, (batch,))
        if self.lengths is not None and not bool(((self.lengths >= 1) & (self.lengths <= num_frames)).all()):
            raise InputError(f"generator condition lengths must lie in [1, {num_frames}], got {self.lengths}")


@dataclass(frozen=True)
class PreparedConditions:
    """Model-width conditioning of a batch, computed once per clip and read at every ODE step.

    Attributes:
        cond_tokens: (B, Nc, D) visual tokens then text tokens.
        cond_mask: (B, Nc) bool key mask of ``cond_tokens``.
        global_c: (B, 1, D) per-sample conditioning (pooled text + pooled video), added to the time embedding.
        sync_c: (B, T_a, D) per-audio-token conditioning (sync features at the audio token rate), or
            (B, 1, D) when no sample has sync features (the null sync vector, the same for every token).
        rope: cos and sin (B, 1, T_a + Nc, Dh/2) of the joint sequence (audio tokens first).
        audio_mask: (B, T_a) bool, True for valid audio frames.
        context: (B, C + 1, T_a) normalised context latents times the mask, then the mask.
        sync_mods: per-token adaLN modulations from ``sync_c``, one (B, T_a or 1, k * D) per audio-stream layer
            (filled in by the network, which owns those layers).
        joint_mask: (B, T_a + Nc) key mask of joint attention, None when every key is valid.
        audio_attn_mask: (B, T_a) key mask of audio-only attention, None when every key is valid.
    """

    cond_tokens: torch.Tensor
    cond_mask: torch.Tensor
    global_c: torch.Tensor
    sync_c: torch.Tensor
    rope: tuple[torch.Tensor, torch.Tensor]
    audio_mask: torch.Tensor
    context: torch.Tensor
    sync_mods: tuple[torch.Tensor, ...] = ()
    joint_mask: torch.Tensor | None = None
    audio_attn_mask: torch.Tensor | None = None

    @classmethod
    def build(cls, **fields: object) -> PreparedConditions:
        """Construct from the tensors, deriving the two attention masks (None when nothing is masked)."""
        audio_mask, cond_mask = fields["audio_mask"], fields["cond_mask"]
        joint = torch.cat((audio_mask, cond_mask), dim=1)  # (B, T_a + Nc)
        fields["joint_mask"] = None if bool(joint.all()) else joint
        fields["audio_attn_mask"] = None if bool(audio_mask.all()) else audio_mask
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def batch_size(self) -> int:
        return self.cond_tokens.shape[0]

    def replace(self, **changes: object) -> PreparedConditions:
        """A copy with some fields changed (the masks are derived again)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        del fields["joint_mask"], fields["audio_attn_mask"]
        return PreparedConditions.build(**fields)

    def repeat_interleave(self, n: int) -> PreparedConditions:
        """Each sample repeated ``n`` times in a row (N variants of each clip)."""
        if n == 1:
            return self
        rep = lambda x: x.repeat_interleave(n, dim=0)  # noqa: E731
        return PreparedConditions.build(
            cond_tokens=rep(self.cond_tokens),
            cond_mask=rep(self.cond_mask),
            global_c=rep(self.global_c),
            sync_c=rep(self.sync_c),
            rope=(rep(self.rope[0]), rep(self.rope[1])),
            audio_mask=rep(self.audio_mask),
            context=rep(self.context),
            sync_mods=tuple(rep(m) for m in self.sync_mods),
        )


def concat_prepared(items: list[PreparedConditions]) -> PreparedConditions:
    """Stack prepared batches along the batch axis, padding condition tokens to the longest (masked out)."""
    if len(items) == 1:
        return items[0]
    Nc = max(p.cond_tokens.shape[1] for p in items)
    Na = items[0].audio_mask.shape[1]

    def pad(x: torch.Tensor, dim: int, size: int, value: float) -> torch.Tensor:
        missing = size - x.shape[dim]
        if missing == 0:
            return x
        widths = [0, 0] * (x.ndim - 1 - dim) + [0, missing]
        return F.pad(x, widths, value=value)

    return PreparedConditions.build(
        cond_tokens=torch.cat([pad(p.cond_tokens, 1, Nc, 0.0) for p in items]),
        cond_mask=torch.cat([pad(p.cond_mask, 1, Nc, False) for p in items]),
        global_c=torch.cat([p.global_c for p in items]),
        sync_c=torch.cat([_frames(p.sync_c, Na) for p in items]),
        # padded tokens get the identity rotation (cos 1, sin 0); they are masked anyway
        rope=(
            torch.cat([pad(p.rope[0], 2, Na + Nc, 1.0) for p in items]),
            torch.cat([pad(p.rope[1], 2, Na + Nc, 0.0) for p in items]),
        ),
        audio_mask=torch.cat([p.audio_mask for p in items]),
        context=torch.cat([p.context for p in items]),
        sync_mods=tuple(
            torch.cat([_frames(m, Na) for m in mods])
            for mods in zip(*(p.sync_mods for p in items), strict=True)
        ),
    )


def _frames(x: torch.Tensor, n: int) -> torch.Tensor:
    """A (B, 1 or n, K) per-frame tensor as (B, n, K)."""
    return x.expand(-1, n, -1)


def resample_linear(features: torch.Tensor, times: torch.Tensor, target_times: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a feature track in time, holding the end values outside its span.

    Args:
        features: (B, T, D) frames at ``times``.
        times: (B, T) increasing timestamps.
        target_times: (B, T') timestamps to sample.

    Returns:
        (B, T', D).
    """
    B, T, D = features.shape
    if T == 1:
        return features.expand(B, target_times.shape[1], D)
    hi = torch.searchsorted(times.contiguous(), target_times.contiguous()).clamp(1, T - 1)  # (B, T')
    lo = hi - 1
    t0, t1 = times.gather(1, lo), times.gather(1, hi)
    w = ((target_times - t0) / (t1 - t0).clamp_min(1e-9)).clamp(0.0, 1.0)[..., None]  # (B, T', 1)
    f0 = features.gather(1, lo[..., None].expand(-1, -1, D))
    f1 = features.gather(1, hi[..., None].expand(-1, -1, D))
    return torch.lerp(f0, f1, w.to(features.dtype))  # (B, T', D)


def _times(times: torch.Tensor | None, batch: int, n: int, fps: float, device: torch.device) -> torch.Tensor:
    """(B, n) timestamps: the given ones broadcast to the batch, else ``i / fps``."""
    if times is None:
        times = torch.arange(n, device=device, dtype=torch.float32) / fps
    return times.to(device=device, dtype=torch.float32).expand(batch, n)


class ConditionEncoder(nn.Module):
    """Projections of every condition to the model width, and the learned null embeddings.

    Args:
        cfg: the generator's config (input dims, rates, width, RoPE settings).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.semantic_proj = nn.Sequential(nn.Linear(cfg.semantic_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.pooled_text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.pooled_video_proj = nn.Linear(D, D)
        self.sync_proj = ConvMLP(cfg.sync_dim, D, cfg.input_kernel)
        # learned null embeddings at model width (std 0.02 like the token embeddings of GPT-2)
        self.null_visual = nn.Parameter(0.02 * torch.randn(D))
        self.null_sync = nn.Parameter(0.02 * torch.randn(D))
        self.null_text = nn.Parameter(0.02 * torch.randn(cfg.null_text_tokens, D))
        self.null_pooled_text = nn.Parameter(0.02 * torch.randn(D))
        self.visual_type = nn.Parameter(0.02 * torch.randn(D))
        self.text_type = nn.Parameter(0.02 * torch.randn(D))

    def forward(
        self,
        cond: Conditions,
        *,
        batch: int,
        num_frames: int,
        context: torch.Tensor,
        keep_video: torch.Tensor | None = None,
        keep_text: torch.Tensor | None = None,
    ) -> PreparedConditions:
        """Prepare the conditions of one batch.

        Args:
            cond: encoder features (checked against ``batch`` and ``num_frames``).
            batch: B.
            num_frames: audio latent frames T_a.
            context: (B, C + 1, T_a) context input of the network (normalised latents x mask, mask).
            keep_video: (B,) bool, False drops the video (semantic and sync) of a sample; None keeps it.
            keep_text: (B,) bool, False drops the prompt of a sample; None keeps it.

        Returns:
            The prepared conditions.
        """
        cfg, device, dtype = self.cfg, self.null_visual.device, self.null_visual.dtype
        cond.check(cfg, batch, num_frames)
        ones = torch.ones(batch, dtype=torch.bool, device=device)
        lengths = (
            cond.lengths.to(device)
            if cond.lengths is not None
            else torch.full_like(ones, num_frames, dtype=torch.long)
        )
        audio_mask = torch.arange(num_frames, device=device) < lengths[:, None]  # (B, T_a)
        durations = lengths.float() / cfg.latent_fps  # (B,)
        video_on = ones if cond.has_video is None else cond.has_video.to(device).bool()
        if keep_video is not None:
            video_on = video_on & keep_video.to(device).bool()

        # visual tokens: real ones where the video is on, the null token elsewhere; positions on the audio timeline
        if cond.semantic is not None:
            T_v = cond.semantic.shape[1]
            times_v = _times(cond.semantic_times, batch, T_v, cfg.semantic_fps, device)
            visual = self.semantic_proj(cond.semantic.to(device, dtype))  # (B, T_v, D)
            visual = torch.where(video_on[:, None, None], visual, self.null_visual)
            if cond.semantic_mask is not None:
                visual_mask = cond.semantic_mask.to(device).bool()
            else:
                visual_mask = times_v < durations[:, None]
        else:
            T_v = max(
                1, round(num_frames / cfg.latent_fps * cfg.semantic_fps)
            )  # as many as a clip of T frames
            times_v = _times(None, batch, T_v, cfg.semantic_fps, device)
            visual = self.null_visual.expand(batch, T_v, -1)
            visual_mask = times_v < durations[:, None]
        visual = visual + self.visual_type  # (B, T_v, D)

        # sync track resampled to the audio frames, or the null sync vector
        audio_times = (torch.arange(num_frames, device=device, dtype=torch.float32) / cfg.latent_fps).expand(
            batch, num_frames
        )
        if cond.sync is not None and bool(video_on.any()):
            times_s = _times(cond.sync_times, batch, cond.sync.shape[1], cfg.sync_fps, device)
            sync = resample_linear(cond.sync.to(device, dtype), times_s, audio_times)  # (B, T_a, D_sync)
            sync_c = torch.where(video_on[:, None, None], self.sync_proj(sync, audio_mask), self.null_sync)
        else:
            sync_c = self.null_sync.expand(batch, 1, -1)  # one vector for every frame

        # text tokens, or the null sequence; rows are padded to a common length and masked
        text_tokens, text_mask, pooled = self._text(cond.text, keep_text, batch)
        cond_tokens = torch.cat((visual, text_tokens + self.text_type), dim=1)  # (B, T_v + L, D)
        cond_mask = torch.cat((visual_mask, text_mask), dim=1)  # (B, T_v + L)

        denom = visual_mask.sum(dim=1, keepdim=True).clamp_min(1)
        pooled_video = (visual * visual_mask[..., None]).sum(dim=1) / denom  # (B, D)
        global_c = (self.pooled_video_proj(pooled_video) + pooled)[:, None]  # (B, 1, D)

        L = text_tokens.shape[1]
        positions = torch.cat(
            (audio_times * cfg.latent_fps, times_v * cfg.latent_fps, torch.zeros(batch, L, device=device)),
            dim=1,
        )  # (B, T_a + T_v + L), in audio latent frames
        has_position = torch.cat(
            (torch.ones_like(audio_mask), torch.ones_like(visual_mask), torch.zeros_like(text_mask)), 1
        )
        rope = rope_tables(rope_angles(positions, cfg.head_dim, cfg.rope_base), has_position)
        return PreparedConditions.build(
            cond_tokens=cond_tokens,
            cond_mask=cond_mask,
            global_c=global_c,
            sync_c=sync_c,
            rope=rope,
            audio_mask=audio_mask,
            context=context,
        )

    def _text(
        self, text: TextFeatures | None, keep_text: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, D) text tokens, (B, L) mask and (B, D) pooled vector, null where the prompt is off."""
        device = self.null_text.device
        L0 = self.null_text.shape[0]
        null_tokens = self.null_text.expand(batch, -1, -1)  # (B, L0, D)
        null_mask = torch.ones(batch, L0, dtype=torch.bool, device=device)
        null_pooled = self.null_pooled_text.expand(batch, -1)
        if text is None:
            return null_tokens, null_mask, null_pooled
        on = text.present.to(device)
        if keep_text is not None:
            on = on & keep_text.to(device).bool()
        tokens = self.text_proj(text.tokens.to(device, self.null_text.dtype))  # (B, L, D)
        mask = text.mask.to(device).bool()
        L = max(L0, tokens.shape[1])
        tokens = F.pad(tokens, (0, 0, 0, L - tokens.shape[1]))
        mask = F.pad(mask, (0, L - mask.shape[1]), value=False)
        null_tokens = F.pad(null_tokens, (0, 0, 0, L - L0))
        null_mask = F.pad(null_mask, (0, L - L0), value=False)
        tokens = torch.where(on[:, None, None], tokens, null_tokens)
        mask = torch.where(on[:, None], mask, null_mask)
        pooled = torch.where(
            on[:, None], self.pooled_text_proj(text.pooled.to(device, self.null_text.dtype)), null_pooled
        )
        return tokens, mask, pooled


# ---- training: condition dropout and audio-context masks ----


@dataclass(frozen=True)
class ConditionDropout:
    """Training-time randomisation of the conditions.

    Attributes:
        video: probability of dropping a sample's video (semantic and sync) for the null embeddings.
        text: probability of dropping a sample's prompt (independent of ``video``).
        context: probability that a sample gets an audio-context prefix.
        context_min_s: shortest context prefix in seconds.
        context_max_fraction: longest context prefix as a fraction of the sample's length.
    """

    video: float = 0.1
    text: float = 0.1
    context: float = 0.25
    context_min_s: float = 0.5
    context_max_fraction: float = 0.5


def sample_keep_masks(
    batch: int, dropout: ConditionDropout, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample Bernoulli keep masks for condition dropout.

    Returns:
        keep_video and keep_text, each (B,) bool (on the generator's device, CPU by default).
    """
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(2, batch, generator=generator, device=device)
    return u[0] >= dropout.video, u[1] >= dropout.text


def sample_context_mask(
    lengths: torch.Tensor,
    num_frames: int,
    dropout: ConditionDropout,
    *,
    latent_fps: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random audio-context prefixes: with probability ``dropout.context`` the first seconds are given.

    Args:
        lengths: (B,) valid latent frames per sample.
        num_frames: T_a.
        dropout: probabilities and prefix lengths.
        latent_fps: latent frames per second.
        generator: random source (its device is used).

    Returns:
        (B, 1, T_a) float mask, 1 on the context prefix (always shorter than the sample).
    """
    device = generator.device if generator is not None else lengths.device
    lengths = lengths.to(device)
    B = lengths.shape[0]
    u = torch.rand(2, B, generator=generator, device=device)
    lo = torch.full((B,), dropout.context_min_s * latent_fps, device=device)
    hi = (lengths.float() * dropout.context_max_fraction).clamp_min(lo)
    n = (lo + u[1] * (hi - lo)).round().long().clamp(max=lengths - 1)  # leave at least one frame to generate
    n = torch.where(u[0] < dropout.context, n, torch.zeros_like(n))
    return (torch.arange(num_frames, device=device) < n[:, None]).float()[:, None]  # (B, 1, T_a)
