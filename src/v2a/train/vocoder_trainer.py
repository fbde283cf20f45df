"""Train the neural vocoder (mel -> waveform) with spectral and adversarial losses.

Recipe: random ~1 s crops of real audio; the generator reconstructs each crop from its log-mel and is
trained with mel L1 + multi-resolution STFT loss from the start; after ``disc_start_step`` the
multi-period and multi-resolution discriminators join (adversarial + feature-matching losses). AdamW,
exponential LR decay, gradient clipping, optional EMA, bf16 autocast on CUDA.

The run folder holds ``metrics.jsonl``, ``losses.png``, ``last/`` and ``shadow/`` (resume state) and
``release/`` (the inference checkpoint, loadable by :meth:`v2a.audio.vocoder.Vocoder.from_checkpoint`).
Running the same command again resumes from ``last`` and continues the step count.

Launch::

    v2a train vocoder --data data/sfx/manifest.jsonl --run-dir runs/vocoder --max-minutes 60
    torchrun --standalone --nproc_per_node=4 -m v2a.cli train vocoder --data ... --preset base
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from v2a.audio.bundled import load_codec, load_vocoder
from v2a.audio.codec import Codec
from v2a.audio.griffinlim import griffin_lim
from v2a.audio.mel import log_mel
from v2a.audio.spec import AudioSpec, get_spec
from v2a.audio.vocoder import CHECKPOINT_KIND, Vocoder, VocoderConfig, vocoder_config
from v2a.errors import InputError
from v2a.model.checkpoint import (
    check_audio_spec,
    load_state_strict,
    save_checkpoint,
    save_train_state,
)
from v2a.train.audio_data import load_train_val, whole_hops
from v2a.train.discriminators import DiscriminatorConfig, VocoderDiscriminators, discriminator_config
from v2a.train.loop import (
    EMA,
    DistContext,
    LoopLimits,
    MetricsLog,
    autocast,
    check_settings,
    maybe_no_sync,
    plot_metrics,
    resume_state,
    seed_run,
    setup_distributed,
    teardown_distributed,
    train_loop,
    unwrap,
)
from v2a.train.losses import (
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    phase_loss,
    stft_resolutions,
)

log = logging.getLogger(__name__)

RELEASE = "release"


@dataclass(frozen=True)
class VocoderTrainConfig:
    """Everything a vocoder run needs; each field maps to a ``v2a train vocoder`` flag.

    Attributes:
        data: audio folders and/or corpus ``manifest.jsonl`` files (rows with ``path`` relative to the
            manifest and ``split``).
        run_dir: output folder; an existing run there is resumed.
        preset: vocoder size (``tiny`` or ``base``); on resume the checkpoint's architecture wins.
        disc_preset: discriminator size; None means the size in ``preset``'s name (``tiny-vocos``: ``tiny``).
        spec_name: the AudioSpec to train for.
        train_split: manifest split to train on; val_split: manifest split for validation metrics.
        batch_size: crops per process per step (DDP multiplies it by the world size).
        segment_seconds: crop length.
        lr: AdamW learning rate of generator and discriminators; lr_decay: per-step exponential factor.
        betas: AdamW betas; weight_decay: AdamW weight decay.
        disc_start_step: step at which the discriminators begin (before it only spectral losses train).
        adversarial: ``hinge`` or ``lsgan``.
        mel_weight, stft_weight, adv_weight, fm_weight: loss weights (HiFi-GAN's 45 / - / 1 / 2 scale).
        phase_weight: weight of the phase, group-delay and instantaneous-frequency loss at the vocoder's
            own STFT (``losses.phase_loss``; 0: off).
        codec_checkpoint: a released codec; with it, a ``codec_prob`` share of the crops reach the vocoder
            as codec reconstructions of their mel (what the generator's latents decode to) while the
            targets stay the real audio, so the vocoder learns to render the codec's mels cleanly.
            ``bundled`` means the codec that ships with Foley.
        init_from: a released vocoder (``bundled``: the shipped one) whose weights start a new run, e.g. to
            fine-tune on your own audio; its architecture replaces ``preset``. Ignored when resuming.
        mrd_weight: weight of the resolution discriminators relative to the period ones.
        grad_clip: max gradient norm (per network).
        ema_decay: EMA of the generator weights (None: off); the release uses the EMA weights.
        max_minutes: wall-clock budget of this invocation (None: unlimited).
        max_steps: stop at this global step (None: unlimited).
        checkpoint_minutes: save ``last`` and ``release`` this often (and always at the end).
        log_every: steps between metric records.
        val_clips: held-out crops (of 2 s) scored at each checkpoint.
        seed: base seed (offset by rank and step).
        device: ``auto``, ``cpu`` or ``cuda``; bf16: autocast in bf16 on CUDA.
    """

    data: tuple[str, ...]
    run_dir: str
    preset: str = "tiny"
    disc_preset: str | None = None
    spec_name: str = "mel24k"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 16
    segment_seconds: float = 1.0
    lr: float = 5e-4
    lr_decay: float = 0.999_995
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    disc_start_step: int = 2000
    adversarial: str = "hinge"
    mel_weight: float = 45.0
    stft_weight: float = 2.0
    phase_weight: float = 0.0
    codec_checkpoint: str | None = None
    codec_prob: float = 0.5
    init_from: str | None = None
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    mrd_weight: float = 1.0
    grad_clip: float = 10.0
    ema_decay: float | None = None
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 10.0
    log_every: int = 25
    val_clips: int = 16
    seed: int = 0
    device: str = "auto"
    bf16: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)


# ---- one training step ----


class VocoderGANStep:
    """One optimisation step of generator (and, once started, discriminators); shared by train and tests.

    Args:
        generator: the vocoder (possibly DDP-wrapped).
        discriminators: the discriminators (possibly DDP-wrapped).
        opt_g, opt_d: their optimisers.
        config: loss weights and switches.
        spec: the AudioSpec of the mels.
        codec: the codec whose reconstructions some inputs are (see ``codec_checkpoint``), or None.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminators: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        config: VocoderTrainConfig,
        spec: AudioSpec,
        codec: Codec | None = None,
    ):
        self.generator, self.discriminators = generator, discriminators
        self.opt_g, self.opt_d = opt_g, opt_d
        self.config, self.spec = config, spec
        self.stft_loss = MultiResolutionSTFTLoss(stft_resolutions(spec))
        self.phase_fft = unwrap(generator).config.n_fft
        self.codec = codec

    def _vocoder_input(self, mel: torch.Tensor) -> torch.Tensor:
        """The mels the vocoder reads: a ``codec_prob`` share of the rows replaced by codec round trips."""
        if self.codec is None or self.config.codec_prob <= 0:
            return mel
        pick = torch.rand(mel.shape[0], device=mel.device) < self.config.codec_prob
        if not pick.any():
            return mel
        decoded = self.codec.decode(self.codec.encode(mel[pick]), num_frames=mel.shape[-1]).clone()
        out = mel.clone()
        out[pick] = decoded.to(out.dtype)
        return out

    def _weights(self) -> dict[str, float]:
        return {"mpd": 1.0, "mrd": self.config.mrd_weight}

    def __call__(self, wav: torch.Tensor, *, step: int) -> dict[str, torch.Tensor]:
        """Train on a batch.

        Args:
            wav: (B, S) real crops on the training device, S a multiple of the hop.
            step: global step (decides whether the discriminators train).

        Returns:
            Detached scalar losses and gradient norms, keyed ``loss/...`` and ``grad/...``.
        """
        cfg, device = self.config, wav.device
        mel = log_mel(wav, self.spec)  # (B, n_mels, T)
        gan = step >= cfg.disc_start_step
        out: dict[str, torch.Tensor] = {}
        with autocast(device, bf16=cfg.bf16):
            fake = self.generator(self._vocoder_input(mel))  # (B, S)
        assert fake.shape == wav.shape, f"{fake.shape=} {wav.shape=}"
        fake = fake.float()

        if gan:
            self.opt_d.zero_grad(set_to_none=True)
            with autocast(device, bf16=cfg.bf16):
                scores = self.discriminators(torch.cat([wav, fake.detach()]))
            loss_d = wav.new_zeros(())
            for name, weight in self._weights().items():
                real_s, fake_s = _split(scores[name][0])
                term = discriminator_loss(real_s, fake_s, kind=cfg.adversarial)
                out[f"loss/disc_{name}"] = term.detach()
                loss_d = loss_d + weight * term
            loss_d.backward()
            out["grad/disc"] = nn.utils.clip_grad_norm_(
                self.discriminators.parameters(), cfg.grad_clip
            ).detach()
            self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        # the discriminators only pass gradients to the generator here: skip their all-reduce
        with maybe_no_sync(self.discriminators, gan):
            loss_mel = mel_l1_loss(fake, mel, self.spec)
            loss_stft = self.stft_loss(fake, wav)
            loss_g = cfg.mel_weight * loss_mel + cfg.stft_weight * loss_stft
            out["loss/mel_l1"], out["loss/mrstft"] = loss_mel.detach(), loss_stft.detach()
            if cfg.phase_weight:
                loss_phase = phase_loss(fake, wav, self.phase_fft, self.spec.hop_length)
                out["loss/phase"] = loss_phase.detach()
                loss_g = loss_g + cfg.phase_weight * loss_phase
            if gan:
                # real features are constant targets here: no graph, no wasted weight gradients
                with torch.no_grad(), autocast(device, bf16=cfg.bf16):
                    real_out = self.discriminators(wav)
                with autocast(device, bf16=cfg.bf16):
                    fake_out = self.discriminators(fake)
                for name, weight in self._weights().items():
                    (fake_s, fake_f), real_f = fake_out[name], real_out[name][1]
                    adv = generator_adversarial_loss(fake_s, kind=cfg.adversarial)
                    fm = feature_matching_loss(real_f, fake_f)
                    out[f"loss/adv_{name}"], out[f"loss/fm_{name}"] = adv.detach(), fm.detach()
                    loss_g = loss_g + weight * (cfg.adv_weight * adv + cfg.fm_weight * fm)
            loss_g.backward()
        out["grad/gen"] = nn.utils.clip_grad_norm_(self.generator.parameters(), cfg.grad_clip).detach()
        self.opt_g.step()
        out["loss/gen_total"] = loss_g.detach()
        return out


def _split(tensors: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Split each (2B, ...) tensor of a real-then-fake batch into its real and fake halves."""
    real, fake = [], []
    for t in tensors:
        r, f = t.chunk(2, dim=0)
        real.append(r)
        fake.append(f)
    return real, fake


# ---- the run ----


@dataclass
class _Run:
    """The live objects of a run."""

    ctx: DistContext
    spec: AudioSpec
    model_config: VocoderConfig
    disc_config: DiscriminatorConfig
    generator: nn.Module
    discriminators: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    step: int


def train_vocoder(config: VocoderTrainConfig) -> Path:
    """Train (or resume) a vocoder until the time or step budget is spent.

    Args:
        config: the run's settings.

    Returns:
        The release checkpoint directory (``run_dir/release``).

    Raises:
        InputError: no usable training audio, a bad setting, or a run folder made for another spec.
    """
    _check_config(config)
    ctx = setup_distributed(config.device)
    try:
        return _train(config, ctx)
    finally:
        teardown_distributed()


def _disc_preset(cfg: VocoderTrainConfig) -> str:
    """The discriminator preset: ``--disc-preset``, else the size that names the vocoder preset."""
    return cfg.disc_preset or cfg.preset.split("-")[0]


def _check_config(cfg: VocoderTrainConfig) -> None:
    try:
        get_spec(cfg.spec_name)
        discriminator_config(_disc_preset(cfg))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    vocoder_config(cfg.preset)
    if cfg.adversarial not in ("hinge", "lsgan"):
        raise InputError(f"--adversarial must be hinge or lsgan, got {cfg.adversarial!r}")
    check_settings(
        cfg,
        what="vocoder training",
        extra={"codec_prob": 0 <= cfg.codec_prob <= 1, "phase_weight": cfg.phase_weight >= 0},
    )


def _train(cfg: VocoderTrainConfig, ctx: DistContext) -> Path:
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    spec = get_spec(cfg.spec_name)
    train_data, val_data = load_train_val(
        cfg.data,
        spec,
        train_split=cfg.train_split,
        val_split=cfg.val_split,
        segment_samples=whole_hops(cfg.segment_seconds, spec),
        val_segment_samples=whole_hops(2.0, spec),
        with_val=ctx.is_main,
    )

    run = _build(cfg, ctx, spec, run_dir)
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    rng = seed_run(cfg.seed, ctx, run.step)
    codec = (
        None if cfg.codec_checkpoint is None else load_codec(cfg.codec_checkpoint, spec=spec).to(ctx.device)
    )
    step_fn = VocoderGANStep(run.generator, run.discriminators, run.opt_g, run.opt_d, cfg, spec, codec)
    val_batch = None
    if val_data is not None and len(val_data):
        val_batch = torch.from_numpy(val_data.fixed_batch(cfg.val_clips)).to(ctx.device)
    if val_batch is not None and run.step == 0:
        metrics.log(0, _griffin_lim_baseline(val_batch, spec, step_fn.stft_loss))

    def train_step(step: int) -> dict[str, torch.Tensor]:
        run.generator.train()
        wav = torch.from_numpy(train_data.batch(cfg.batch_size, rng)).to(ctx.device)
        losses = step_fn(wav, step=step)
        run.sched_g.step()
        if step >= cfg.disc_start_step:  # the discriminators' LR decays from their first step
            run.sched_d.step()
        if run.ema is not None:
            run.ema.update(run.generator)
        run.step = step + 1
        return losses

    train_loop(
        ctx,
        step=run.step,
        train_step=train_step,
        save=lambda _step: _save(run, cfg, run_dir, metrics, val_batch, step_fn),
        metrics=metrics,
        limits=LoopLimits.of(cfg),
        saved=(run_dir / RELEASE).exists(),
        extra=lambda: {"lr": run.sched_g.get_last_lr()[0]},
        show=("loss/mel_l1", "loss/mrstft"),
    )
    return run_dir / RELEASE


def _build(cfg: VocoderTrainConfig, ctx: DistContext, spec: AudioSpec, run_dir: Path) -> _Run:
    """Make the networks and optimisers, fresh or from ``run_dir/last`` (architecture from the checkpoint)."""
    state, resume_dir = resume_state(run_dir)
    if state is not None:
        model_config = VocoderConfig.from_dict(state["model_config"])
        disc_config = DiscriminatorConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in state["disc_config"].items()}
        )
        check_audio_spec(
            "vocoder", resume_dir, model_config.spec_name, spec.name, remedy="use another --run-dir"
        )
        if model_config != vocoder_config(cfg.preset, spec) and ctx.is_main:
            log.info("resuming with the checkpoint's architecture %s", model_config)
        start = None
    else:
        start = None if cfg.init_from is None else load_vocoder(cfg.init_from, spec=spec)
        model_config = vocoder_config(cfg.preset, spec) if start is None else start.config
        disc_config = discriminator_config(_disc_preset(cfg))

    generator = Vocoder(model_config).to(ctx.device)
    if start is not None:
        generator.load_state_dict({k: v.float() for k, v in start.state_dict().items()})
        if ctx.is_main:
            log.info("starting from the weights of vocoder %s", cfg.init_from)
    discriminators = VocoderDiscriminators(disc_config, spec).to(ctx.device)
    opt_g = torch.optim.AdamW(
        generator.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    opt_d = torch.optim.AdamW(
        discriminators.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=cfg.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=cfg.lr_decay)
    ema = EMA(generator, cfg.ema_decay) if cfg.ema_decay else None
    step = 0
    if state is not None:
        load_state_strict(generator, state["generator"], source=resume_dir)
        load_state_strict(discriminators, state["discriminators"], source=resume_dir)
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        sched_g.load_state_dict(state["sched_g"])
        sched_d.load_state_dict(state["sched_d"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        step = int(state["step"])
        if ctx.is_main:
            log.info("resumed %s at step %d", resume_dir, step)
    if ctx.distributed:
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        generator = nn.parallel.DistributedDataParallel(generator, device_ids=ids)
        discriminators = nn.parallel.DistributedDataParallel(discriminators, device_ids=ids)
    return _Run(
        ctx,
        spec,
        model_config,
        disc_config,
        generator,
        discriminators,
        opt_g,
        opt_d,
        sched_g,
        sched_d,
        ema,
        step,
    )


def _save(
    run: _Run,
    cfg: VocoderTrainConfig,
    run_dir: Path,
    metrics: MetricsLog,
    val_batch: torch.Tensor | None,
    step_fn: VocoderGANStep,
) -> None:
    """Rank 0: write resume state, the release checkpoint, validation metrics and the loss plot."""
    if not run.ctx.is_main:
        return
    generator = unwrap(run.generator)
    release_model = run.ema.model if run.ema is not None else generator
    if val_batch is not None:
        metrics.log(run.step, _validate(release_model, val_batch, run.spec, step_fn.stft_loss))
    state = {
        "step": run.step,
        "model_config": run.model_config.to_dict(),
        "disc_config": dataclasses.asdict(run.disc_config),
        "train_config": cfg.to_dict(),
        "generator": generator.state_dict(),
        "discriminators": unwrap(run.discriminators).state_dict(),
        "opt_g": run.opt_g.state_dict(),
        "opt_d": run.opt_d.state_dict(),
        "sched_g": run.sched_g.state_dict(),
        "sched_d": run.sched_d.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
    }
    save_train_state(run_dir, state)
    meta = {"step": run.step, "data": list(cfg.data), "ema": run.ema is not None, "spec": run.spec.name}
    save_checkpoint(
        run_dir / RELEASE, release_model, kind=CHECKPOINT_KIND, config=run.model_config.to_dict(), meta=meta
    )
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "losses.png")
    log.info("saved step %d to %s", run.step, run_dir)


@torch.no_grad()
def _validate(
    model: nn.Module, wav: torch.Tensor, spec: AudioSpec, stft_loss: MultiResolutionSTFTLoss
) -> dict[str, float]:
    model.eval()
    mel = log_mel(wav, spec)
    fake = model(mel).float()
    model.train()
    return {"val/mel_l1": float(mel_l1_loss(fake, mel, spec)), "val/mrstft": float(stft_loss(fake, wav))}


@torch.no_grad()
def _griffin_lim_baseline(
    wav: torch.Tensor, spec: AudioSpec, stft_loss: MultiResolutionSTFTLoss
) -> dict[str, float]:
    """The same validation metrics for Griffin-Lim (32 iterations): the bar the vocoder must clear."""
    mel = log_mel(wav, spec)
    fake = griffin_lim(mel, spec, n_iter=32)
    mel_l1, mrstft = float(mel_l1_loss(fake, mel, spec)), float(stft_loss(fake, wav))
    assert math.isfinite(mel_l1) and math.isfinite(mrstft), f"{mel_l1=} {mrstft=}"
    return {"val/griffinlim_mel_l1": mel_l1, "val/griffinlim_mrstft": mrstft}
