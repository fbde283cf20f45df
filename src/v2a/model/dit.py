"""The generator: a flow-matching transformer over audio latents, conditioned on video and text.

Data flow (B batch, C latent channels, T audio latent frames, D width)::

    x (B, C, T) ++ context (B, C, T) ++ context_mask (B, 1, T) --ConvMLP--> audio tokens (B, T, D)
    conditions --ConditionEncoder (once per clip)--> visual + text tokens (B, Nc, D), sync track (B, T, D)
    joint blocks: audio and condition tokens attend jointly (MM-DiT), RoPE on one timeline
    audio blocks: audio tokens alone
    adaLN conditioning: per sample t-embedding + pooled text + pooled video; per audio token + its sync frame
        (modulation = W silu(c) + W silu(sync_n); the sync part is cached per clip, see ``layers.Stream``)
    final layer --> velocity (B, C, T)

Visual tokens carry RoPE positions ``time * latent_fps``, so a frame at time t and the audio frame at t
share a phase. A training step (the trainer owns the data, the optimiser and EMA)::

    keep_video, keep_text = sample_keep_masks(B, dropout, generator=g)          # condition dropout
    cmask = sample_context_mask(lengths, T, dropout, latent_fps=cfg.latent_fps, generator=g)
    cond = cond.replace(context=latents, context_mask=cmask, lengths=lengths)   # audio-context prefixes
    prepared = net.prepare_conditions(cond, num_frames=T, keep_video=keep_video, keep_text=keep_text)
    loss = flow.loss(lambda t, x: net.predict_flow(x, t, prepared), net.normalize(latents),
                     mask=loss_mask(lengths, cmask, T))                         # valid, non-context frames

Inference is :meth:`AudioDiT.generate`.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from v2a.errors import InputError
from v2a.model.checkpoint import CODEC_SUBDIR, HEAD_SUBDIR, CheckpointPart, load_checkpoint, save_checkpoint
from v2a.model.conditions import ConditionEncoder, Conditions, PreparedConditions, concat_prepared
from v2a.model.config import ModelConfig
from v2a.model.flow import FlowMatching, GuidedVelocity, make_noise, plan_guidance, seed_generators
from v2a.model.layers import AudioBlock, ConvMLP, FinalLayer, JointBlock, TimestepEmbedding

CHECKPOINT_KIND = "generator"
# Midpoint with 4 steps (8 network evaluations, like Euler with 8) gave lower FAD (267 against 298) and higher
# onset accuracy (0.84 against 0.80) at the same sound class on the 50 Foley-world test clips
# (benchmarks/results/steps_quality_50.md).
DEFAULT_STEPS = 4
DEFAULT_SAMPLER = "midpoint"
# Guidance 5 (video, and text unless set apart) against 3 on the same 50 clips with midpoint 4: sound class 0.350
# against 0.240, FAD 238 against 267, onset accuracy 0.807 against 0.837, diversity 0.047 against 0.062; a negative
# prompt cuts its class by 87 % against 58 % (30 clips; benchmarks/results/guidance_cfg5_50.md). With a prompt, 5
# follows it best: the caption as prompt gives sound class 0.58 at 5 against 0.45 at 7 (foley_world_default.md,
# foley_world_cfg7.md).
DEFAULT_GUIDANCE = 5.0
# Without a prompt the picture alone is better served by 7: sound class 0.420 against 0.350, FAD 215 against 237,
# onset accuracy 0.832 against 0.809, onset AP 0.518 against 0.542, diversity 0.039 against 0.046 (all 50 clips,
# guidance_cfg7_50.md against bundle_default_50.md); a negative prompt still cuts its class by 87 %.
DEFAULT_GUIDANCE_NO_PROMPT = 7.0


def default_guidance(has_prompt: bool) -> float:
    """The shipped video guidance scale: ``DEFAULT_GUIDANCE`` with a prompt, ``DEFAULT_GUIDANCE_NO_PROMPT``
    for the picture alone (a negative prompt alone does not count as a prompt)."""
    return DEFAULT_GUIDANCE if has_prompt else DEFAULT_GUIDANCE_NO_PROMPT


class AudioDiT(nn.Module):
    """Flow-matching transformer that predicts the velocity of normalised audio latents.

    Args:
        cfg: sizes and input dims (see :class:`v2a.model.config.ModelConfig`).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        C, D = cfg.latent_dim, cfg.width
        self.input_proj = ConvMLP(2 * C + 1, D, cfg.input_kernel)
        self.t_embed = TimestepEmbedding(D)
        self.conditioner = ConditionEncoder(cfg)
        self.joint_blocks = nn.ModuleList(
            JointBlock(D, cfg.heads, cfg.mlp_ratio, last=i == cfg.joint_depth - 1)
            for i in range(cfg.joint_depth)
        )
        self.audio_blocks = nn.ModuleList(
            AudioBlock(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.audio_depth)
        )
        self.final = FinalLayer(D, C)
        # per-channel statistics of the codec latents (set by the trainer; saved with the weights)
        self.register_buffer("latent_mean", torch.zeros(C))
        self.register_buffer("latent_std", torch.ones(C))

    # ---- latent scale ----

    def normalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Codec latents (B, C, T) -> roughly unit-variance latents the flow works on."""
        return (latents - self.latent_mean[:, None]) / self.latent_std[:, None]

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`."""
        return x * self.latent_std[:, None] + self.latent_mean[:, None]

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-channel mean and std (C,) of the training latents."""
        self.latent_mean.copy_(mean.reshape(-1))
        self.latent_std.copy_(std.reshape(-1).clamp_min(1e-5))

    # ---- conditions (once per clip) and velocity (every step) ----

    def prepare_conditions(
        self,
        cond: Conditions,
        *,
        num_frames: int,
        batch: int | None = None,
        keep_video: torch.Tensor | None = None,
        keep_text: torch.Tensor | None = None,
        sync_mods: tuple[torch.Tensor, ...] | None = None,
    ) -> PreparedConditions:
        """Project and cache the conditions of a batch.

        Args:
            cond: encoder features.
            num_frames: audio latent frames T.
            batch: B; None infers it from the first tensor in ``cond`` (1 if it holds none).
            keep_video: (B,) bool, False drops the video (condition dropout, guidance branches).
            keep_text: (B,) bool, False drops the prompt.
            sync_mods: the ``sync_mods`` of another preparation with the same sync track to reuse
                (guidance branches with the same video flag); None computes them.

        Returns:
            The prepared conditions for :meth:`predict_flow`.
        """
        B = _batch_size(cond) if batch is None else batch
        device = self.latent_mean.device
        C = self.cfg.latent_dim
        if cond.context is not None and cond.context_mask is not None:
            cmask = cond.context_mask.to(device, torch.float32)
            context = torch.cat((self.normalize(cond.context.to(device).float()) * cmask, cmask), dim=1)
        else:
            context = torch.zeros(B, C + 1, num_frames, device=device)
        prepared = self.conditioner(
            cond, batch=B, num_frames=num_frames, context=context, keep_video=keep_video, keep_text=keep_text
        )
        return prepared.replace(sync_mods=sync_mods or self._sync_modulations(prepared.sync_c))

    def _sync_modulations(self, sync_c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The sync part of every audio-stream modulation: it does not depend on t, so once per clip."""
        return tuple(layer.token_modulation(sync_c) for layer in self._audio_streams())

    def _audio_streams(self) -> list[nn.Module]:
        """The layers whose adaLN modulation is per audio token, in the order ``sync_mods`` lists them."""
        return [b.audio for b in self.joint_blocks] + [b.stream for b in self.audio_blocks] + [self.final]

    def predict_flow(self, x: torch.Tensor, t: torch.Tensor, prepared: PreparedConditions) -> torch.Tensor:
        """Velocity at one ODE point.

        Args:
            x: (B, C, T) normalised noisy latents.
            t: (B,) flow times in [0, 1].
            prepared: conditions from :meth:`prepare_conditions` for the same B and T.

        Returns:
            (B, C, T) velocity, zero on invalid (padded) frames.
        """
        B, C, T = x.shape
        assert prepared.context.shape == (B, C + 1, T), f"{x.shape=} {prepared.context.shape=}"
        valid = prepared.audio_mask[:, None].to(x.dtype)  # (B, 1, T)
        h = torch.cat((x, prepared.context.to(x.dtype)), dim=1).transpose(1, 2)  # (B, T, 2C + 1)
        h = self.input_proj(h, None if prepared.audio_attn_mask is None else prepared.audio_mask)  # (B, T, D)
        c = self.t_embed(t)[:, None] + prepared.global_c  # (B, 1, D)
        mods = iter(prepared.sync_mods)
        cond = prepared.cond_tokens
        for block in self.joint_blocks:
            h, cond = block(h, cond, c, prepared.rope, prepared.joint_mask, next(mods))
        cos, sin = prepared.rope
        rope_audio = (cos[:, :, :T], sin[:, :, :T])
        for block in self.audio_blocks:
            h = block(h, c, rope_audio, prepared.audio_attn_mask, next(mods))
        v = self.final(h, c, next(mods)).transpose(1, 2)  # (B, T, C) -> (B, C, T)
        return v * valid

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: Conditions,
        *,
        keep_video: torch.Tensor | None = None,
        keep_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`prepare_conditions` then :meth:`predict_flow`: (B, C, T), (B,) -> (B, C, T) velocity."""
        prepared = self.prepare_conditions(
            cond, num_frames=x.shape[-1], batch=x.shape[0], keep_video=keep_video, keep_text=keep_text
        )
        return self.predict_flow(x, t, prepared)

    # ---- inference ----

    def guided_velocity(
        self,
        cond: Conditions,
        *,
        num_frames: int,
        num_samples: int = 1,
        guidance_scale: float | None = None,
        text_guidance_scale: float | None = None,
    ) -> GuidedVelocity:
        """The guided velocity function ``fn(t, x)`` for B clips x ``num_samples`` variants (clip-major).

        The branches of :func:`v2a.model.flow.plan_guidance` are prepared once and evaluated in one
        batched forward pass per call. Scales left None take the shipped defaults (:func:`default_guidance`;
        the text scale follows the video scale).
        """
        B = _batch_size(cond)
        if guidance_scale is None:
            guidance_scale = default_guidance(cond.has_any_prompt)
        if text_guidance_scale is None:
            text_guidance_scale = guidance_scale
        branches = plan_guidance(
            has_video=cond.has_any_video,
            has_prompt=cond.has_any_prompt,
            has_negative=cond.has_any_negative_prompt,
            guidance_scale=guidance_scale,
            text_guidance_scale=text_guidance_scale,
        )
        prepared, mods_by_video = [], {}
        for branch in branches:
            text = {"prompt": cond.text, "negative": cond.negative_text, "null": None}[branch.text]
            keep = torch.full((B,), branch.video, dtype=torch.bool)
            p = self.prepare_conditions(
                cond.replace(text=text),
                num_frames=num_frames,
                batch=B,
                keep_video=keep,
                sync_mods=mods_by_video.get(branch.video),  # the sync track depends only on the video flag
            )
            mods_by_video[branch.video] = p.sync_mods
            prepared.append(p.repeat_interleave(num_samples))
        return GuidedVelocity(self.predict_flow, concat_prepared(prepared), [b.weight for b in branches])

    @torch.no_grad()
    def generate(
        self,
        cond: Conditions,
        *,
        num_frames: int,
        num_samples: int = 1,
        generators: list[torch.Generator] | None = None,
        noise: torch.Tensor | None = None,
        num_inference_steps: int = DEFAULT_STEPS,
        method: str = DEFAULT_SAMPLER,
        shift: float = 1.0,
        guidance_scale: float | None = None,
        text_guidance_scale: float | None = None,
    ) -> torch.Tensor:
        """Sample audio latents for B clips, ``num_samples`` variants each, in one batch.

        Args:
            cond: the clips' conditions (the negative prompt goes in ``cond.negative_text``).
            num_frames: audio latent frames T (``cfg.sequence(duration).latent_frames``).
            num_samples: variants N per clip.
            generators: B * N CPU generators, one per variant (clip-major); None seeds them 0 .. B*N - 1.
            noise: (B * N, C, T) starting noise instead of ``generators``.
            num_inference_steps: ODE steps.
            method: ``euler``, ``heun`` or ``midpoint``.
            shift: time-grid shift (1 = uniform).
            guidance_scale: video guidance scale w_v (1 = no video guidance; None: :func:`default_guidance`).
            text_guidance_scale: text guidance scale w_t (prompt vs negative prompt; None: ``guidance_scale``).

        Returns:
            (B * N, C, T) latents on the codec's scale; frames given as context are copied from it.
        """
        B, N, C = _batch_size(cond), num_samples, self.cfg.latent_dim
        if N < 1:
            raise InputError(f"num_samples must be >= 1, got {N}")
        device = self.latent_mean.device
        if noise is None:
            gens = generators if generators is not None else seed_generators(range(B * N))
            if len(gens) != B * N:
                raise InputError(f"need one generator per variant ({B * N}), got {len(gens)}")
            noise = make_noise((C, num_frames), gens, device=device)
        elif tuple(noise.shape) != (B * N, C, num_frames):
            raise InputError(f"noise has shape {tuple(noise.shape)}, expected {(B * N, C, num_frames)}")
        fn = self.guided_velocity(
            cond,
            num_frames=num_frames,
            num_samples=N,
            guidance_scale=guidance_scale,
            text_guidance_scale=text_guidance_scale,
        )
        x = self.unnormalize(
            FlowMatching.sample(fn, noise.to(device), steps=num_inference_steps, method=method, shift=shift)
        )
        if cond.context is not None and cond.context_mask is not None:
            context = cond.context.to(device).repeat_interleave(N, dim=0)
            given = cond.context_mask.to(device).repeat_interleave(N, dim=0) > 0
            x = torch.where(given, context.to(x.dtype), x)
        return x

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters())


def loss_mask(
    lengths: torch.Tensor | None, context_mask: torch.Tensor | None, num_frames: int
) -> torch.Tensor:
    """(B, 1, T) float mask of the frames the loss counts: valid and not given as context.

    Args:
        lengths: (B,) valid frames, or None (all valid; then ``context_mask`` sets B).
        context_mask: (B, 1, T), 1 where context is given, or None.
        num_frames: T.
    """
    if lengths is None and context_mask is None:
        raise InputError("loss_mask needs lengths or a context mask to know the batch size")
    if lengths is None:
        mask = torch.ones_like(context_mask, dtype=torch.float32)
    else:
        mask = (torch.arange(num_frames, device=lengths.device) < lengths[:, None]).float()[:, None]
    if context_mask is not None:
        mask = mask * (1 - context_mask.to(mask.device, torch.float32))
    return mask


def _batch_size(cond: Conditions) -> int:
    """B of the first tensor in ``cond``; 1 when it holds none (unconditional generation)."""
    for x in (cond.semantic, cond.sync, cond.context, cond.lengths, cond.has_video):
        if x is not None:
            return x.shape[0]
    for text in (cond.text, cond.negative_text):
        if text is not None:
            return text.tokens.shape[0]
    return 1


def save_generator(
    net: AudioDiT,
    path: str | os.PathLike,
    *,
    meta: dict[str, object] | None = None,
    codec: CheckpointPart | None = None,
    semantic_head: CheckpointPart | None = None,
) -> None:
    """Write a release checkpoint (safetensors weights + JSON config) of the generator.

    ``codec``: the codec it models, saved in the ``codec/`` subfolder (for a codec other than the bundled one,
    so the release is self-contained; see :func:`v2a.audio.bundled.generator_codec`).
    ``semantic_head``: the semantic head whose vectors its visual tokens carry, saved in ``semantic_head/``
    (see :func:`v2a.encoders.semantic_head.generator_head`).
    """
    parts = {CODEC_SUBDIR: codec, HEAD_SUBDIR: semantic_head}
    parts = {name: part for name, part in parts.items() if part is not None}
    save_checkpoint(path, net, kind=CHECKPOINT_KIND, config=net.cfg.to_dict(), meta=meta, parts=parts)


def load_generator(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> AudioDiT:
    """Rebuild the generator from a checkpoint and load its weights strictly (in eval mode)."""
    ck = load_checkpoint(path, kind=CHECKPOINT_KIND)
    net = AudioDiT(ModelConfig.from_dict(ck.config))
    ck.load_into(net)
    return net.to(device).eval()
