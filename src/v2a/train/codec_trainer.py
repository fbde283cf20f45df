"""Train the latent codec (mel -> latent -> mel) on random crops of real audio.

Recipe: log-mel of ~1 s crops at random levels; the codec reconstructs each mel through a sampled latent and
is trained with mel L1 plus a small KL term towards N(0, 1) (a VAE with a light prior, as in latent
diffusion / MMAudio), AdamW with exponential LR decay, gradient clipping, optional EMA and bf16 autocast on
CUDA. At every save the release model's latent statistics (per-channel mean and std of the posterior means
over a fixed set of training crops) are measured and stored in its buffers, so the released codec encodes
to normalised latents.

The run folder holds ``metrics.jsonl``, ``losses.png``, ``last/`` and ``shadow/`` (resume state) and
``release/`` (the inference checkpoint, loadable by :meth:`v2a.audio.codec.Codec.from_checkpoint`).
Running the same command again resumes from ``last`` and continues the step count.

Launch::

    v2a train codec --data data/sfx/manifest.jsonl --run-dir runs/codec --val-split test --max-minutes 30
    torchrun --standalone --nproc_per_node=4 -m v2a.cli train codec --data ... --preset base
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from v2a.audio.bundled import load_codec
from v2a.audio.codec import CHECKPOINT_KIND, LATENT_SCALES, Codec, CodecConfig, codec_config, fit_pca
from v2a.audio.mel import log_mel
from v2a.audio.spec import AudioSpec, get_spec
from v2a.errors import InputError
from v2a.model.checkpoint import (
    check_audio_spec,
    load_state_strict,
    save_checkpoint,
    save_train_state,
)
from v2a.train.audio_data import load_train_val, whole_hops
from v2a.train.loop import (
    EMA,
    DistContext,
    LoopLimits,
    MetricsLog,
    autocast,
    check_settings,
    plot_metrics,
    resume_state,
    seed_run,
    setup_distributed,
    teardown_distributed,
    train_loop,
    unwrap,
)

log = logging.getLogger(__name__)

RELEASE = "release"
_VAL_SECONDS = 2.0
_FITTED = ("patch", "pca")  # architectures fitted in closed form rather than trained by gradient


@dataclass(frozen=True)
class CodecTrainConfig:
    """Everything a codec run needs; each field maps to a ``v2a train codec`` flag.

    Attributes:
        data: audio folders and/or corpus ``manifest.jsonl`` files (rows with ``path`` relative to the
            manifest and ``split``).
        run_dir: output folder; an existing run there is resumed.
        preset: codec size (``tiny`` or ``base``), ``patch`` (the normalised mel itself, three frames per
            latent frame), ``pca`` (those stacked frames' leading principal components) or ``pca_residual``
            (``pca`` with a learned decoder correction): for ``patch`` and ``pca`` nothing trains by
            gradient, the basis and statistics are fitted on the statistics crops and released at once; on
            resume the checkpoint's architecture wins.
        latent_dim: latent channels C; None keeps the preset's (24 for ``tiny``/``base``, 32 for ``pca``).
        latent_scale: ``channel`` (each latent channel normalised to unit variance) or ``global`` (one scale
            for all: a ``pca`` latent keeps its components' relative sizes; see ``CodecConfig``).
        spec_name: the AudioSpec to train for.
        train_split: manifest split to train on.
        val_split: manifest split for validation metrics (the SFX corpus calls it ``test``).
        batch_size: crops per process per step (DDP multiplies it by the world size).
        segment_seconds: crop length.
        lr: AdamW learning rate.
        lr_decay: per-step exponential LR factor.
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        kl_weight: weight of the KL term (mean over latent elements) against the mel L1.
        grad_clip: max gradient norm.
        ema_decay: EMA of the weights (None: off); the release uses the EMA weights.
        max_minutes: wall-clock budget of this invocation (None: unlimited).
        max_steps: stop at this global step (None: unlimited).
        checkpoint_minutes: save ``last`` and ``release`` this often (and always at the end).
        log_every: steps between metric records.
        val_clips: held-out crops (of 2 s) scored at each checkpoint.
        decoder_from: a released codec to start from with its encoder and latent statistics frozen: only
            the decoder trains, so the normalised latent space, and every generator trained on it, stays
            valid while reconstructions improve. A ``vae`` codec keeps its architecture; a ``pca`` codec
            (no decoder weights of its own) becomes the ``pca_residual`` of the preset's sizes, with its
            basis and statistics kept.
        stats_clips: training crops (of ``segment_seconds``) whose latents give the stored normalisation
            statistics.
        seed: base seed (offset by rank and step).
        device: ``auto``, ``cpu`` or ``cuda``.
        bf16: autocast in bf16 on CUDA (CPU always runs float32).
    """

    data: tuple[str, ...]
    run_dir: str
    preset: str = "tiny"
    latent_dim: int | None = None
    latent_scale: str = "channel"
    spec_name: str = "mel24k"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 16
    segment_seconds: float = 1.0
    lr: float = 1e-3
    lr_decay: float = 0.99999
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.01
    kl_weight: float = 1e-3
    decoder_from: str | None = None
    grad_clip: float = 1.0
    ema_decay: float | None = 0.999
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 10.0
    log_every: int = 25
    val_clips: int = 32
    stats_clips: int = 256
    seed: int = 0
    device: str = "auto"
    bf16: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)


def codec_losses(
    model: nn.Module, mel: torch.Tensor, *, sample: bool, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Reconstruction and prior terms of a batch (shared by training and validation).

    Args:
        model: the codec (possibly DDP-wrapped).
        mel: (B, n_mels, T) target log-mel.
        sample: decode a posterior sample (training) or the posterior mean (validation).
        generator: random source of the sample.

    Returns:
        ``mel_l1`` (mean absolute log-mel error) and ``kl`` (KL to N(0, 1), mean per latent element; 0 for
        the fitted encoders of ``patch`` and the pca codecs), float32.
    """
    recon, mean, logvar = model(mel, sample=sample, generator=generator)
    assert recon.shape == mel.shape, f"{recon.shape=} {mel.shape=}"
    mean, logvar = mean.float(), logvar.float()
    if unwrap(model).config.architecture == "vae":
        kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
    else:  # a fitted encoder has no posterior to regularise
        kl = mean.new_zeros(())
    return {"mel_l1": nn.functional.l1_loss(recon.float(), mel.float()), "kl": kl}


class CodecStep:
    """One optimisation step of the codec; shared by the run and the tests.

    Args:
        model: the codec (possibly DDP-wrapped).
        optimizer: its optimiser.
        config: loss weights and switches.
        spec: the AudioSpec of the mels.
    """

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, config: CodecTrainConfig, spec: AudioSpec
    ):
        self.model, self.optimizer, self.config, self.spec = model, optimizer, config, spec

    def __call__(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """Train on a batch of waveforms (B, S); returns detached ``loss/...`` and ``grad/...`` scalars."""
        cfg = self.config
        mel = log_mel(wav, self.spec)  # (B, n_mels, T)
        self.model.train()
        with autocast(wav.device, bf16=cfg.bf16):
            terms = codec_losses(self.model, mel, sample=True)
        loss = terms["mel_l1"] + cfg.kl_weight * terms["kl"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        return {
            "loss/mel_l1": terms["mel_l1"].detach(),
            "loss/kl": terms["kl"].detach(),
            "loss/total": loss.detach(),
            "grad/codec": grad.detach(),
        }


@torch.no_grad()
def log_mel_batches(wav: torch.Tensor, spec: AudioSpec, *, chunk: int = 16) -> list[torch.Tensor]:
    """Log-mels (n, n_mels, T) of waveforms (N, S), ``chunk`` at a time (bounds memory)."""
    return [log_mel(part, spec) for part in wav.split(chunk)]


@torch.no_grad()
def latent_statistics(model: Codec, mels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (C,) of the raw posterior means of log-mel batches, over all their frames."""
    model.eval()
    means = [model.posterior(mel)[0].float() for mel in mels]
    flat = torch.cat(means).transpose(0, 1).reshape(model.config.latent_dim, -1)  # (N, C, L) -> (C, N * L)
    return flat.mean(dim=1), flat.std(dim=1)


# ---- the run ----


@dataclass
class _Run:
    """The live objects of a run."""

    ctx: DistContext
    spec: AudioSpec
    model_config: CodecConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    step: int


def train_codec(config: CodecTrainConfig) -> Path:
    """Train (or resume) a codec until the time or step budget is spent.

    Args:
        config: the run's settings.

    Returns:
        The release checkpoint directory (``run_dir/release``), with normalisation statistics set.

    Raises:
        InputError: no usable training audio, a bad setting, or a run folder made for another spec.
    """
    _check_config(config)
    ctx = setup_distributed(config.device)
    try:
        return _train(config, ctx)
    finally:
        teardown_distributed()


def _check_config(cfg: CodecTrainConfig) -> None:
    try:
        get_spec(cfg.spec_name)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if codec_config(cfg.preset).architecture in _FITTED and cfg.decoder_from is not None:
        raise InputError(
            f"--decoder-from needs a trained codec preset; the {cfg.preset} codec has no decoder to train"
        )
    check_settings(
        cfg,
        what="codec training",
        extra={
            "latent_dim": cfg.latent_dim is None or cfg.latent_dim >= 1,
            "latent_scale": cfg.latent_scale in LATENT_SCALES,
            "kl_weight": cfg.kl_weight >= 0,
            "val_clips": cfg.val_clips >= 1,
            "stats_clips": cfg.stats_clips >= 2,
        },
    )


def _model_config(cfg: CodecTrainConfig, spec: AudioSpec) -> CodecConfig:
    base = dataclasses.replace(codec_config(cfg.preset, spec), latent_scale=cfg.latent_scale)
    return base if cfg.latent_dim is None else dataclasses.replace(base, latent_dim=cfg.latent_dim)


def _train(cfg: CodecTrainConfig, ctx: DistContext) -> Path:
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    spec = get_spec(cfg.spec_name)
    val_samples = whole_hops(_VAL_SECONDS, spec)
    train_data, val_data = load_train_val(
        cfg.data,
        spec,
        train_split=cfg.train_split,
        val_split=cfg.val_split,
        segment_samples=whole_hops(cfg.segment_seconds, spec),
        val_segment_samples=val_samples,
        with_val=ctx.is_main,
    )
    # fixed training crops at their recorded levels: the sample the normalisation statistics come from
    stats_batch = torch.from_numpy(train_data.fixed_batch(cfg.stats_clips, seed=cfg.seed)).to(ctx.device)
    val_batch = None
    if val_data is not None and len(val_data):
        val_batch = torch.from_numpy(val_data.fixed_batch(cfg.val_clips)).to(ctx.device)

    model_config = _model_config(cfg, spec)
    if model_config.architecture in _FITTED:  # fitted in closed form on the statistics crops, then released
        if ctx.is_main:
            _release_fitted_codec(cfg, model_config, run_dir, stats_batch, val_batch)
        ctx.barrier()
        return run_dir / RELEASE

    run = _build(cfg, ctx, spec, run_dir, stats_batch)
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    rng = seed_run(cfg.seed, ctx, run.step)
    step_fn = CodecStep(run.model, run.optimizer, cfg, spec)

    def train_step(step: int) -> dict[str, torch.Tensor]:
        wav = torch.from_numpy(train_data.batch(cfg.batch_size, rng)).to(ctx.device)
        losses = step_fn(wav)
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update(run.model)
        run.step = step + 1
        return losses

    train_loop(
        ctx,
        step=run.step,
        train_step=train_step,
        save=lambda _step: _save(run, cfg, run_dir, metrics, val_batch, stats_batch),
        metrics=metrics,
        limits=LoopLimits.of(cfg),
        saved=(run_dir / RELEASE).exists(),
        extra=lambda: {"lr": run.scheduler.get_last_lr()[0]},
        show=("loss/mel_l1", "loss/kl"),
    )
    return run_dir / RELEASE


def _build(
    cfg: CodecTrainConfig, ctx: DistContext, spec: AudioSpec, run_dir: Path, stats_batch: torch.Tensor
) -> _Run:
    """Make the codec and its optimiser, fresh or from ``run_dir/last`` (architecture from the checkpoint).

    A fresh ``pca_residual`` codec gets its basis from ``--decoder-from`` or, without it, fitted on the
    statistics crops ``stats_batch`` (every rank fits the same crops, so the ranks agree).
    """
    state, resume_dir = resume_state(run_dir)
    model_config = _model_config(cfg, spec)
    if state is not None:
        saved_config = CodecConfig.from_dict(state["model_config"])
        check_audio_spec(
            "codec", resume_dir, saved_config.spec_name, spec.name, remedy="use another --run-dir"
        )
        if saved_config != model_config and ctx.is_main:
            log.info("resuming with the checkpoint's architecture %s", saved_config)
        model_config = saved_config

    start = (
        load_codec(cfg.decoder_from, spec=spec) if cfg.decoder_from is not None and state is None else None
    )
    if start is not None and start.config.architecture == "pca":
        model_config = _residual_config(cfg.decoder_from, start.config, model_config)
        model = Codec(model_config).to(ctx.device)
        _load_pca(model, start)
    elif start is not None and start.config.architecture in _FITTED:
        raise InputError(
            f"--decoder-from {cfg.decoder_from} is a {start.config.architecture} codec: it has no decoder to train"
        )
    else:
        model = Codec(start.config if start is not None else model_config).to(ctx.device)
        if start is not None:
            model.load_state_dict(start.state_dict())
            model_config = start.config
        elif state is None and model_config.architecture == "pca_residual":
            fit_pca(model, log_mel_batches(stats_batch, spec))
    if (
        cfg.decoder_from is not None
    ):  # fresh or resumed: the encoder (and its latent statistics) stay as loaded
        model.encoder.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    step = 0
    if state is not None:
        load_state_strict(model, state["model"], source=resume_dir)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        step = int(state["step"])
        if ctx.is_main:
            log.info("resumed %s at step %d", resume_dir, step)
    if ctx.distributed:
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return _Run(ctx, spec, model_config, model, optimizer, scheduler, ema, step)


def _residual_config(source: str, pca: CodecConfig, preset: CodecConfig) -> CodecConfig:
    """The ``pca_residual`` config that adds the preset's decoder correction to the ``pca`` codec ``source``."""
    if preset.architecture != "pca_residual":
        raise InputError(
            f"--decoder-from {source} is a pca codec: train a learned decoder for it with --preset pca_residual"
        )
    return dataclasses.replace(
        preset,
        spec_name=pca.spec_name,
        latent_dim=pca.latent_dim,
        downsample=pca.downsample,
        latent_scale=pca.latent_scale,
    )


def _load_pca(model: Codec, pca: Codec) -> None:
    """Copy a ``pca`` codec's basis and latent statistics into a fresh ``pca_residual`` ``model``."""
    missing, unexpected = model.load_state_dict(pca.state_dict(), strict=False)
    learned = ("decoder.backbone.", "decoder.head.")
    assert not unexpected and all(k.startswith(learned) for k in missing), f"{missing=} {unexpected=}"


def _save(
    run: _Run,
    cfg: CodecTrainConfig,
    run_dir: Path,
    metrics: MetricsLog,
    val_batch: torch.Tensor | None,
    stats_batch: torch.Tensor,
) -> None:
    """Rank 0: write resume state, the release checkpoint (with latent statistics), metrics and the plot."""
    if not run.ctx.is_main:
        return
    model = unwrap(run.model)
    # a copy: the EMA keeps averaging the live buffers, which stay at their neutral (or frozen) values
    release = copy.deepcopy(run.ema.model if run.ema is not None else model).eval()
    if cfg.decoder_from is None:
        mean, std = latent_statistics(release, log_mel_batches(stats_batch, release.spec))
        release.set_latent_stats(mean, std)
    else:  # the frozen encoder's statistics (loaded with its weights) define the latent space: keep them
        mean, std = release.latent_mean, release.latent_std
    record = {"val/latent_std_min": float(std.min()), "val/latent_std_max": float(std.max())}
    if val_batch is not None:
        record.update(_validate(release, val_batch))
    metrics.log(run.step, record)
    state = {
        "step": run.step,
        "model_config": run.model_config.to_dict(),
        "train_config": cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
    }
    save_train_state(run_dir, state)
    _release(release, cfg, run_dir, step=run.step, record=record, ema=run.ema is not None)
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "losses.png")
    log.info("saved step %d to %s", run.step, run_dir)


def _release(
    model: Codec, cfg: CodecTrainConfig, run_dir: Path, *, step: int, record: dict[str, float], ema: bool
) -> None:
    """Write ``run_dir/release``: the codec with its statistics, and what made it in the metadata."""
    meta = {
        "step": step,
        "data": list(cfg.data),
        "ema": ema,
        "spec": model.spec.name,
        "latent_fps": model.config.latent_fps,
        **{k: round(v, 5) for k, v in record.items()},
    }
    save_checkpoint(run_dir / RELEASE, model, kind=CHECKPOINT_KIND, config=model.config.to_dict(), meta=meta)


def _release_fitted_codec(
    cfg: CodecTrainConfig,
    model_config: CodecConfig,
    run_dir: Path,
    stats_batch: torch.Tensor,
    val_batch: torch.Tensor | None,
) -> None:
    """Fit a ``patch`` or ``pca`` codec on the training crops (basis, then statistics) and release it."""
    model = Codec(model_config).to(stats_batch.device)
    record = {}
    mels = log_mel_batches(stats_batch, model.spec)  # once, for the basis and the statistics
    if model_config.architecture == "pca":
        record["explained_variance"] = fit_pca(model, mels)
    mean, std = latent_statistics(model, mels)
    model.set_latent_stats(mean, std)
    record.update({"val/latent_std_min": float(std.min()), "val/latent_std_max": float(std.max())})
    if val_batch is not None:
        record.update(_validate(model, val_batch))
    MetricsLog(run_dir / "metrics.jsonl").log(0, record)
    _release(model.eval(), cfg, run_dir, step=0, record=record, ema=False)
    log.info(
        "released the %s codec (fitted on %d crops) to %s",
        model_config.architecture,
        len(stats_batch),
        run_dir / RELEASE,
    )


@torch.no_grad()
def _validate(model: Codec, wav: torch.Tensor) -> dict[str, float]:
    """Held-out mel L1 and KL of the posterior means, and the spread of the normalised latents."""
    mel = log_mel(wav, model.spec)
    terms = codec_losses(model, mel, sample=False)
    latent = model.encode(mel)  # (N, C, L), normalised
    kl = {"val/kl": float(terms["kl"])} if model.config.architecture == "vae" else {}  # fitted: no prior
    return {
        "val/mel_l1": float(terms["mel_l1"]),
        **kl,
        "val/latent_abs_mean": float(latent.mean(dim=(0, 2)).abs().mean()),
        "val/latent_std": float(latent.std(dim=(0, 2)).mean()),
    }
