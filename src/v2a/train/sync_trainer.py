"""Train the sync encoder: self-supervised audio-visual synchronisation on manifest clips.

Recipe (Synchformer's idea, small): a window of W video frames (4 s) and the clip's audio delayed by a
random known amount d in ±``max_offset_s`` (10 ms steps, silence where the delayed track has no sound)
are embedded per frame by the two towers of :class:`v2a.encoders.sync.SyncNet`. The scores of the window
against its audio at every lag l (one class per 40 ms frame, ``lag_scores``) form the logits of an offset
classifier, trained by cross-entropy with a soft target split between the two classes around d. With
``batch_negatives`` the other clips' audio at the same lag joins the softmax as more negatives, so the
loss is InfoNCE over shifted negatives of the same clip plus in-batch negatives. AdamW, linear warm-up then
exponential decay, gradient clipping, optional EMA.

Inputs are computed once per clip into ``cache_dir`` (see ``v2a.train.sync_data``); validation scores the
inference estimator (``SyncEncoder.estimate``) on whole held-out clips shifted by 0, ±0.2, ±0.5 and ±1 s.
The run folder holds ``metrics.jsonl``, ``losses.png``, ``last/`` and ``shadow/`` (resume state) and
``release/`` (loadable by :meth:`v2a.encoders.sync.SyncEncoder.from_checkpoint`). Running the same
command again resumes from ``last`` and continues the step count.

Launch::

    v2a train sync --data data/fw/sync-train/manifest.jsonl --run-dir runs/sync --max-minutes 25
    torchrun --standalone --nproc_per_node=4 -m v2a.cli train sync --data ... --run-dir runs/sync
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.encoders.motion import Motion
from v2a.encoders.sync import (
    AUDIO_STEPS,
    CHECKPOINT_KIND,
    SyncConfig,
    SyncEncoder,
    SyncNet,
    lag_scores,
    sync_config,
)
from v2a.errors import InputError
from v2a.model.checkpoint import (
    find_train_state,
    load_state_strict,
    load_train_state,
    save_checkpoint,
    save_train_state,
)
from v2a.train.loop import (
    EMA,
    DistContext,
    LoopLimits,
    MetricsLog,
    check_settings,
    plot_metrics,
    seed_everything,
    setup_distributed,
    teardown_distributed,
    train_loop,
    unwrap,
)
from v2a.train.sync_data import SyncBatch, SyncClips, load_clips, sample_batch, select_rows, shift_audio

log = logging.getLogger(__name__)

RELEASE = "release"
VAL_SHIFTS_S = (-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class SyncTrainConfig:
    """Everything a sync-encoder run needs; each field maps to a ``v2a train sync`` flag.

    Attributes:
        data: clip manifests (``manifest.jsonl`` of Foley world or ``v2a data ingest``).
        run_dir: output folder; an existing run there is resumed.
        preset: network size (``small`` or ``tiny``); on resume the checkpoint's architecture wins.
        cache_dir: where the per-clip motion + audio inputs are cached (None: ``RUN_DIR/features``).
        workers: processes that compute uncached inputs.
        train_split: manifest split to train on.
        val_split: split for validation; when no row has it, ~5 % of the train rows (by id) are held out.
        batch_size: windows per process per step (DDP multiplies it by the world size).
        max_offset_s: largest trained shift and lag (the offset classes span ±this).
        batch_negatives: add the other clips' audio as negatives (InfoNCE over the batch).
        lr: AdamW peak learning rate.
        lr_decay: per-step exponential factor of the learning rate after warm-up.
        warmup_steps: steps of linear warm-up.
        weight_decay: AdamW weight decay.
        grad_clip: max gradient norm.
        ema_decay: EMA of the weights (None: off); the release uses the EMA weights.
        max_minutes: wall-clock budget of this invocation (None: unlimited).
        max_steps: stop at this global step (None: unlimited).
        checkpoint_minutes: save ``last`` and ``release`` and validate this often (and at the end).
        log_every: steps between metric records.
        val_clips: held-out clips scored (whole clips at 7 shifts) at each checkpoint.
        seed: base seed (offset by rank and step).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    data: tuple[str, ...]
    run_dir: str
    preset: str = "small"
    cache_dir: str | None = None
    workers: int = 1
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 32
    max_offset_s: float = 2.0
    batch_negatives: bool = True
    lr: float = 2e-3
    lr_decay: float = 0.9995
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float | None = None
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 5.0
    log_every: int = 25
    val_clips: int = 32
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)


# ---- the loss ----


def sync_loss(
    video: torch.Tensor,
    audio: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    *,
    batch_negatives: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Offset-classification / InfoNCE loss of a batch of shifted pairs.

    Args:
        video: (B, W, D) normalised video embeddings.
        audio: (B, W + 2L, D) normalised embeddings of the shifted audio from L frames before the window.
        scale: logit scale.
        shift: (B,) true offsets in frames (within ±L).
        batch_negatives: add the other clips' audio at each clip's nearest lag as negatives.

    Returns:
        The loss and detached metrics: ``loss/sync`` and ``acc/lag_40ms`` (argmax lag within one frame).
    """
    B, W, _ = video.shape
    L = (audio.shape[1] - W) // 2
    scores = lag_scores(video, audio)  # (B, 2L + 1)
    pos = shift.clamp(-L, L) + L  # class position (fractional)
    lo = pos.floor().clamp(max=2 * L).long()
    hi = (lo + 1).clamp(max=2 * L)
    w_hi = pos - lo
    target = torch.zeros_like(scores)
    target.scatter_add_(1, lo[:, None], (1 - w_hi)[:, None])
    target.scatter_add_(1, hi[:, None], w_hi[:, None])
    logits = scale * scores
    if batch_negatives and B > 1:
        nearest = (pos + 0.5).floor().long().clamp(max=2 * L)  # (B,) audio index of each true lag
        if bool((nearest == nearest[0]).all()):  # one lag for the batch (sample_batch's way): one matmul
            n = int(nearest[0])
            cross = torch.einsum("bkd,ckd->bc", video, audio[:, n : n + W])  # (B, B')
        else:
            cross = torch.stack(
                [
                    torch.einsum("kd,ckd->c", video[b], audio[:, n : n + W])
                    for b, n in enumerate(nearest.tolist())
                ]
            )  # (B, B')
        cross = cross / W
        off_diag = ~torch.eye(B, dtype=torch.bool, device=video.device)
        logits = torch.cat([logits, scale * cross[off_diag].view(B, B - 1)], dim=1)
        target = torch.cat([target, target.new_zeros(B, B - 1)], dim=1)
    loss = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    with torch.no_grad():
        acc = ((scores.argmax(dim=1).float() - pos).abs() <= 1.0).float().mean()
    return loss, {"loss/sync": loss.detach(), "acc/lag_40ms": acc, "scale": scale.detach()}


# ---- validation ----


@torch.no_grad()
def validate(net: SyncNet, clips: SyncClips, *, max_offset_s: float) -> dict[str, float]:
    """Score the inference estimator on whole clips shifted by ``VAL_SHIFTS_S``.

    Returns:
        ``val/acc_100ms`` and ``val/acc_40ms`` (fraction with |error| within 0.1 s / 0.04 s), ``val/mae_s``
        and ``val/confidence`` (mean).
    """
    was_training = net.training
    encoder = SyncEncoder(net, device=next(net.parameters()).device)  # switches the net to eval mode
    errors, confidence = [], []
    for motion, mel in zip(clips.motion, clips.mel, strict=True):
        track = Motion(motion.astype(np.float32), np.arange(len(motion)) / net.config.fps, net.config.fps)
        for shift_s in VAL_SHIFTS_S:
            steps = round(shift_s * net.config.fps * AUDIO_STEPS)
            shifted = shift_audio(mel, steps, start=0, length=mel.shape[1], config=net.config)
            est = encoder.estimate(track, shifted, max_offset_s=max_offset_s)
            errors.append(abs(est.offset_s - steps / (net.config.fps * AUDIO_STEPS)))
            confidence.append(est.confidence)
    net.train(was_training)
    err = np.asarray(errors)
    if err.size == 0:
        return {}
    return {
        "val/acc_100ms": float(np.mean(err <= 0.1 + 1e-6)),
        "val/acc_40ms": float(np.mean(err <= 0.04 + 1e-6)),
        "val/mae_s": float(err.mean()),
        "val/confidence": float(np.mean(confidence)),
    }


# ---- the run ----


@dataclass
class _Run:
    """The live objects of a run."""

    ctx: DistContext
    model_config: SyncConfig
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    step: int


def train_sync(config: SyncTrainConfig) -> Path:
    """Train (or resume) the sync encoder until the time or step budget is spent.

    Args:
        config: the run's settings.

    Returns:
        The release checkpoint directory (``run_dir/release``).

    Raises:
        InputError: no usable training clips, a bad setting or a bad manifest.
    """
    sync_config(config.preset)
    check_settings(
        config,
        what="sync training",
        extra={
            "max_offset_s": 0 < config.max_offset_s <= 10,
            "warmup_steps": config.warmup_steps >= 0,
            "workers": config.workers >= 1,
            "val_clips": config.val_clips >= 0,
        },
    )
    ctx = setup_distributed(config.device)
    try:
        return _train(config, ctx)
    finally:
        teardown_distributed()


def _load_data(
    cfg: SyncTrainConfig, model_config: SyncConfig, ctx: DistContext
) -> tuple[SyncClips, SyncClips]:
    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.run_dir) / "features"
    train_rows = select_rows(cfg.data, cfg.train_split, val_split=cfg.val_split)
    val_rows = select_rows(cfg.data, cfg.val_split, val_split=cfg.val_split)[: cfg.val_clips]
    if ctx.is_main:  # rank 0 fills the cache; the others then only read it
        load_clips([*train_rows, *val_rows], model_config, cache, workers=cfg.workers)
    ctx.barrier()
    train = load_clips(train_rows, model_config, cache)
    if len(train) == 0:
        raise InputError(f"no usable training clips in {', '.join(cfg.data)} (split {cfg.train_split!r})")
    val = load_clips(val_rows, model_config, cache) if ctx.is_main else SyncClips()
    if ctx.is_main:
        log.info(
            "sync data: %d clips, %.1f min (%d unreadable skipped); validation: %d clips",
            len(train),
            train.seconds / 60,
            len(train.skipped),
            len(val),
        )
        if train.skipped:
            log.warning("skipped unreadable clips, first: %s", train.skipped[0])
    return train, val


def _train(cfg: SyncTrainConfig, ctx: DistContext) -> Path:
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = _build(cfg, ctx, run_dir)
    train_data, val_data = _load_data(cfg, run.model_config, ctx)
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    seed_everything(cfg.seed + 7919 * ctx.rank + run.step)
    rng = np.random.default_rng([cfg.seed, ctx.rank, run.step])
    max_lag = max(1, round(cfg.max_offset_s * run.model_config.fps))

    def step_fn(batch: SyncBatch) -> dict[str, torch.Tensor]:
        run.net.train()
        video, audio, scale = run.net(batch.motion.to(ctx.device), batch.mel.to(ctx.device))
        loss, values = sync_loss(
            video, audio, scale, batch.shift.to(ctx.device), batch_negatives=cfg.batch_negatives
        )
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        values["grad/norm"] = nn.utils.clip_grad_norm_(run.net.parameters(), cfg.grad_clip).detach()
        run.opt.step()
        run.sched.step()
        if run.ema is not None:
            run.ema.update(run.net)
        return values

    def train_step(step: int) -> dict[str, torch.Tensor]:
        batch = sample_batch(train_data, cfg.batch_size, rng, config=run.model_config, max_lag=max_lag)
        values = step_fn(batch)
        run.step = step + 1
        return values

    train_loop(
        ctx,
        step=run.step,
        train_step=train_step,
        save=lambda _step: _save(run, cfg, run_dir, metrics, val_data),
        metrics=metrics,
        limits=LoopLimits.of(cfg),
        saved=(run_dir / RELEASE).exists(),
        extra=lambda: {"lr": run.sched.get_last_lr()[0]},
        show=("loss/sync", "acc/lag_40ms"),
    )
    ctx.barrier()  # no rank returns before the release checkpoint exists
    return run_dir / RELEASE


def _lr_factor(warmup: int, decay: float):
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / max(1, warmup)) * decay ** max(0, step - warmup)

    return factor


def _build(cfg: SyncTrainConfig, ctx: DistContext, run_dir: Path) -> _Run:
    """Make the network and optimiser, fresh or from ``run_dir/last`` (architecture from the checkpoint)."""
    resume_dir = find_train_state(run_dir)
    state = load_train_state(resume_dir) if resume_dir is not None else None
    model_config = sync_config(cfg.preset)
    if state is not None:
        saved = SyncConfig.from_dict(state["model_config"])
        if saved != model_config and ctx.is_main:
            log.info("resuming with the checkpoint's architecture %s", saved)
        model_config = saved
    net = SyncNet(model_config).to(ctx.device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(cfg.warmup_steps, cfg.lr_decay))
    ema = EMA(net, cfg.ema_decay) if cfg.ema_decay else None
    step = 0
    if state is not None:
        load_state_strict(net, state["net"], source=resume_dir)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        step = int(state["step"])
        if ctx.is_main:
            log.info("resumed %s at step %d", resume_dir, step)
    if ctx.distributed:
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    return _Run(ctx, model_config, net, opt, sched, ema, step)


def _save(run: _Run, cfg: SyncTrainConfig, run_dir: Path, metrics: MetricsLog, val: SyncClips) -> None:
    """Rank 0: validate, then write resume state, the release checkpoint and the loss plot."""
    if not run.ctx.is_main:
        return
    net = unwrap(run.net)
    release: SyncNet = run.ema.model if run.ema is not None else net  # type: ignore[assignment]
    scores = validate(release, val, max_offset_s=cfg.max_offset_s) if len(val) else {}
    if scores:
        metrics.log(run.step, scores)
        log.info("validation at step %d: %s", run.step, ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    state = {
        "step": run.step,
        "model_config": run.model_config.to_dict(),
        "train_config": cfg.to_dict(),
        "net": net.state_dict(),
        "opt": run.opt.state_dict(),
        "sched": run.sched.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
    }
    save_train_state(run_dir, state)
    meta = {"step": run.step, "data": list(cfg.data), "ema": run.ema is not None, **scores}
    save_checkpoint(
        run_dir / RELEASE, release, kind=CHECKPOINT_KIND, config=run.model_config.to_dict(), meta=meta
    )
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "losses.png")
    log.info("saved step %d to %s", run.step, run_dir)
