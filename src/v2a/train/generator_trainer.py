"""Train the generator: conditional flow matching over codec latents, on video shards and SFX-corpus sounds.

Recipe: each step draws a batch of one random window length (2-8 s) from Foley-world / ingested shards
with cached features and, with probability ``corpus_fraction`` per slot, from the real SFX corpus as
audio + caption only (video null, MMAudio's multimodal training). Condition dropout (video and text 10 %
each) trains the null branches classifier-free guidance needs; an audio-context prefix is given with
probability 25 % (continuation of long videos). AdamW, linear warm-up then cosine decay, gradient
clipping, EMA weights (the release uses them), bf16 autocast on GPU.

Every ``checkpoint_minutes`` rank 0 validates on held-out shard clips: the flow loss at fixed noise and
times, and the evaluation suite's onset accuracy (±0.3 s) of clips generated with the EMA weights, decoded
through the codec and vocoder. The run folder holds ``metrics.jsonl``, ``losses.png``, ``last/`` and
``shadow/`` (resume state) and ``release/`` (loadable by ``v2a.model.dit.load_generator``). Running the
same command again resumes.

Launch::

    v2a train generator --data shards/fw --corpus data/sfx --run-dir runs/generator --max-minutes 60
    torchrun --standalone --nproc_per_node=8 -m v2a.cli train generator --preset small --data ... --bf16
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from v2a.audio.bundled import bundle_path, default_vocoder, generator_codec
from v2a.audio.codec import Codec
from v2a.encoders.cache import load_codec
from v2a.encoders.semantic_head import SemanticHead, generator_head, head_from_checkpoint, token_dim
from v2a.encoders.text import TextEncoder
from v2a.errors import InputError
from v2a.eval.onset import onset_metrics
from v2a.model.checkpoint import (
    CheckpointPart,
    find_train_state,
    load_state_strict,
    load_train_state,
    save_train_state,
)
from v2a.model.conditions import ConditionDropout, Conditions, sample_context_mask, sample_keep_masks
from v2a.model.config import ModelConfig, model_config
from v2a.model.dit import AudioDiT, load_generator, loss_mask, save_generator
from v2a.model.flow import FlowMatching
from v2a.model.inputs import ClipFeatures, collate
from v2a.model.widen import check_codec_extends, widen_generator
from v2a.train.generator_data import (
    CORPUS_CACHE,
    Batch,
    BatchSampler,
    build_corpus_cache,
    load_corpus_cache,
    load_shard_clips,
    shard_clips,
)
from v2a.train.loop import (
    EMA,
    DistContext,
    LoopLimits,
    MetricsLog,
    autocast,
    check_settings,
    plot_metrics,
    seed_run,
    setup_distributed,
    teardown_distributed,
    train_loop,
    unwrap,
)

log = logging.getLogger(__name__)

RELEASE = "release"


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """Everything a generator run needs; each field maps to a ``v2a train generator`` flag.

    Attributes:
        run_dir: output folder; an existing run there is resumed.
        data: shard folder with the features semantic, sync, text and latents (None: corpus only).
        corpus: SFX corpus folder for audio + caption training (None: video shards only).
        corpus_cache: the corpus's latent/caption cache (None: ``RUN_DIR/corpus-features.npz``).
        codec_checkpoint: codec whose latents are learned (None: the bundled one; must match the shards').
        semantic_head: a semantic-head release (``v2a train semantic-head``) whose label vectors join the
            ImageNet bridge's in the visual tokens; it is saved inside the generator's release. None: the head
            of the ``init_from`` generator, or of this run's release when resuming, if they have one; else the
            bridge alone. A resumed or started network must have been built with the same choice.
        preset: network size (``tiny``, ``small``, ``medium``); on resume the checkpoint's architecture wins.
        init_from: a released generator (``bundled``: the shipped one) whose weights, architecture and latent
            statistics start a new run, e.g. to fine-tune on your own footage (ignored when resuming). With a
            codec that extends the generator's (more principal components, the same first ones) the network
            is widened to the new channels first.
        train_split: shard split to train on.
        val_data: shard folder of held-out clips for validation (None: no validation).
        val_split: its split.
        val_clips: held-out clips scored at each checkpoint.
        batch_size: clips per process per step.
        corpus_fraction: probability that a batch slot holds a corpus sound instead of a video clip.
        min_seconds: shortest training window.
        max_seconds: longest training window.
        video_dropout: probability of dropping a clip's video (null video branch of guidance).
        text_dropout: probability of dropping its caption.
        context_prob: probability of an audio-context prefix.
        lr: AdamW peak learning rate.
        min_lr_ratio: the cosine schedule ends at ``lr * min_lr_ratio``.
        warmup_steps: linear warm-up steps.
        schedule_steps: length of the cosine schedule (the run may stop earlier on its time budget).
        weight_decay: AdamW weight decay.
        grad_clip: max gradient norm.
        ema_decay: EMA decay of the released weights.
        bf16: bf16 autocast on GPU.
        max_minutes: wall-clock budget of this invocation (None: unlimited).
        max_steps: stop at this global step (None: unlimited).
        checkpoint_minutes: save and validate this often (and at the end).
        log_every: steps between metric records.
        val_steps: sampling steps of the validation generations.
        seed: base seed.
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    run_dir: str
    data: str | None = None
    corpus: str | None = None
    corpus_cache: str | None = None
    codec_checkpoint: str | None = None
    semantic_head: str | None = None
    preset: str = "tiny"
    init_from: str | None = None
    train_split: str = "train"
    val_data: str | None = None
    val_split: str = "train"
    val_clips: int = 8
    batch_size: int = 12
    corpus_fraction: float = 0.25
    min_seconds: float = 2.0
    max_seconds: float = 6.0
    video_dropout: float = 0.1
    text_dropout: float = 0.1
    context_prob: float = 0.25
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    schedule_steps: int = 20_000
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    bf16: bool = True
    max_minutes: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 10.0
    log_every: int = 25
    val_steps: int = 8
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)

    @property
    def dropout(self) -> ConditionDropout:
        return ConditionDropout(video=self.video_dropout, text=self.text_dropout, context=self.context_prob)


@dataclass
class _Run:
    ctx: DistContext
    model_config: ModelConfig
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    ema: EMA
    step: int
    widened_from: int | None = None  # the latent channels of a started network before it was widened


def train_generator(config: GeneratorTrainConfig) -> Path:
    """Train (or resume) the generator until the time or step budget is spent.

    Returns:
        The release checkpoint directory (``run_dir/release``).

    Raises:
        InputError: no training data, or a bad setting.
    """
    model_config(config.preset)
    check_settings(
        config,
        what="generator training",
        extra={
            "corpus_fraction": 0 <= config.corpus_fraction <= 1,
            "min_seconds": 0.5 <= config.min_seconds <= config.max_seconds,
            "video_dropout": 0 <= config.video_dropout < 1,
            "text_dropout": 0 <= config.text_dropout < 1,
            "context_prob": 0 <= config.context_prob <= 1,
            "warmup_steps": config.warmup_steps >= 0,
            "schedule_steps": config.schedule_steps >= 1,
            "val_clips": config.val_clips >= 0,
            "val_steps": config.val_steps >= 1,
        },
    )
    if config.data is None and config.corpus is None:
        raise InputError("generator training needs --data (feature shards) or --corpus (SFX corpus), or both")
    ctx = setup_distributed(config.device)
    try:
        return _train(config, ctx)
    finally:
        teardown_distributed()


def lr_factor(warmup: int, total: int, min_ratio: float):
    """Linear warm-up then cosine decay to ``min_ratio`` at ``total`` steps (held there after)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _corpus(cfg: GeneratorTrainConfig, ctx: DistContext, run_dir: Path, codec: Codec):
    if cfg.corpus is None:
        return None
    path = Path(cfg.corpus_cache) if cfg.corpus_cache else run_dir / CORPUS_CACHE
    if ctx.is_main and not path.exists():
        log.info("encoding the SFX corpus into %s (once)", path)
        build_corpus_cache(cfg.corpus, path, codec=codec, text_encoder=TextEncoder())
    ctx.barrier()
    corpus = load_corpus_cache(path)
    if ctx.is_main:
        log.info("corpus: %d sounds, %d captions", len(corpus), len(corpus.captions))
    return corpus


def _train(cfg: GeneratorTrainConfig, ctx: DistContext) -> Path:
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    codec = load_codec(cfg.codec_checkpoint)
    corpus = _corpus(cfg, ctx, run_dir, codec)
    head = _semantic_head(cfg, run_dir)
    run = _build(cfg, ctx, run_dir, codec, token_dim(head))
    rng = seed_run(cfg.seed, ctx, run.step)
    video = shard_clips(cfg.data, cfg.train_split, seed=cfg.seed + run.step, head=head) if cfg.data else None
    sampler = BatchSampler(
        run.model_config, video, corpus, batch_size=cfg.batch_size, corpus_fraction=cfg.corpus_fraction,
        min_seconds=cfg.min_seconds, max_seconds=cfg.max_seconds, rng=rng,
    )  # fmt: skip
    net = unwrap(run.net)
    if run.step == 0:
        # a started network keeps the statistics its weights were trained with; a widened one measures its new
        # channels' statistics
        if cfg.init_from is None or run.widened_from is not None:
            _set_latent_stats(net, sampler, ctx, first=run.widened_from or 0)
        run.ema = EMA(net, cfg.ema_decay)
    val = (
        load_shard_clips(cfg.val_data, cfg.val_split, limit=cfg.val_clips, head=head)
        if cfg.val_data and ctx.is_main
        else []
    )
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    flow = FlowMatching()
    gen = torch.Generator(device=ctx.device).manual_seed(cfg.seed + 7919 * ctx.rank + run.step)
    dropout = cfg.dropout

    def train_step(step: int) -> dict[str, torch.Tensor]:
        batch = next(sampler)
        loss = flow_loss(run.net, net, batch, flow, dropout, gen, ctx.device, bf16=cfg.bf16)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad = nn.utils.clip_grad_norm_(run.net.parameters(), cfg.grad_clip).detach()
        run.opt.step()
        run.sched.step()
        run.ema.update(net)
        run.step = step + 1
        return {
            "loss/flow": loss.detach(),
            "grad/norm": grad,
            "window_s": batch.num_frames / net.cfg.latent_fps,
        }

    train_loop(
        ctx,
        step=run.step,
        train_step=train_step,
        save=lambda _step: _save(run, cfg, run_dir, metrics, val, codec, head),
        metrics=metrics,
        limits=LoopLimits.of(cfg),
        saved=(run_dir / RELEASE).exists(),
        extra=lambda: {"lr": run.sched.get_last_lr()[0]},
        show=("loss/flow",),
    )
    ctx.barrier()
    return run_dir / RELEASE


def flow_loss(
    model: nn.Module,
    net: AudioDiT,
    batch: Batch,
    flow: FlowMatching,
    dropout: ConditionDropout,
    gen: torch.Generator,
    device: torch.device,
    *,
    bf16: bool = True,
) -> torch.Tensor:
    """The flow-matching loss of one batch with condition dropout and random audio-context prefixes.

    ``model`` is what runs the forward pass (the DDP wrapper in distributed runs); ``net`` the bare network.
    """
    B, T = batch.latents.shape[0], batch.num_frames
    keep_video, keep_text = sample_keep_masks(B, dropout, generator=gen)
    lengths = batch.cond.lengths.to(device)
    latents = batch.latents.to(device)
    cmask = sample_context_mask(lengths, T, dropout, latent_fps=net.cfg.latent_fps, generator=gen)
    cond = _to(batch.cond, device).replace(context=latents, context_mask=cmask)
    x1 = net.normalize(latents)
    with autocast(device, bf16=bf16):
        # through ``model`` (the DDP wrapper when distributed) so gradients are synchronised
        velocity = lambda t, x: model(x, t, cond, keep_video=keep_video, keep_text=keep_text)  # noqa: E731
        return flow.loss(velocity, x1, mask=loss_mask(lengths, cmask, T), generator=gen).float()


def _to(cond: Conditions, device: torch.device) -> Conditions:
    """The conditions with every tensor moved to ``device``."""
    changes = {}
    for f in dataclasses.fields(cond):
        value = getattr(cond, f.name)
        if isinstance(value, torch.Tensor):
            changes[f.name] = value.to(device)
        elif value is not None and hasattr(value, "tokens"):
            changes[f.name] = type(value)(
                value.tokens.to(device), value.mask.to(device), value.pooled.to(device)
            )
    return cond.replace(**changes)


@torch.no_grad()
def _set_latent_stats(
    net: AudioDiT, sampler: BatchSampler, ctx: DistContext, batches: int = 8, first: int = 0
) -> None:
    """Per-channel mean and std of the training latents (valid frames of a few batches), the same on every rank.

    Channels before ``first`` keep the statistics the network has (the channels a widened network knew).
    """
    total = torch.zeros(net.cfg.latent_dim, dtype=torch.float64)
    sq, count = torch.zeros_like(total), 0
    for _ in range(batches):
        batch = next(sampler)
        valid = torch.arange(batch.num_frames) < batch.cond.lengths[:, None]  # (B, T)
        x = batch.latents.transpose(1, 2)[valid].double()  # (N, C)
        total += x.sum(0)
        sq += x.square().sum(0)
        count += len(x)
    stats = torch.stack([total, sq, torch.tensor([float(count)] * len(total), dtype=torch.float64)]).to(
        ctx.device
    )
    if ctx.distributed:
        torch.distributed.all_reduce(stats)
    mean = stats[0] / stats[2]
    std = (stats[1] / stats[2] - mean.square()).clamp_min(1e-8).sqrt()
    mean[:first], std[:first] = net.latent_mean[:first].double(), net.latent_std[:first].double()
    net.set_latent_stats(mean.float(), std.float())
    if ctx.is_main:
        log.info("latent stats: mean %.3f, std %.3f (averaged over channels)", mean.mean(), std.mean())


def _build(
    cfg: GeneratorTrainConfig, ctx: DistContext, run_dir: Path, codec: Codec, semantic_dim: int
) -> _Run:
    """Network, optimiser and EMA, fresh or from ``run_dir/last`` (architecture from the checkpoint).

    A fresh network models the codec's latent channels and reads ``semantic_dim``-channel visual tokens; a
    resumed one must already. A started one (``init_from``) must too, or model fewer channels of a codec
    that ``codec`` extends: it is then widened (:mod:`v2a.model.widen`).
    """
    latent_dim = codec.config.latent_dim
    resume_dir = find_train_state(run_dir)
    state = load_train_state(resume_dir) if resume_dir is not None else None
    start = _initial_network(cfg.init_from) if state is None else None
    widened_from = None
    if start is not None and start.cfg.latent_dim < latent_dim:
        check_codec_extends(codec, generator_codec(_init_path(cfg.init_from)))
        widened_from = start.cfg.latent_dim
        start = widen_generator(start, latent_dim)
        if ctx.is_main:
            log.info(
                "widened generator %s from %d to %d latent channels", cfg.init_from, widened_from, latent_dim
            )
    arch = (
        model_config(cfg.preset, latent_dim=latent_dim, semantic_dim=semantic_dim)
        if start is None
        else start.cfg
    )
    if state is not None:
        arch = ModelConfig.from_dict(state["model_config"])
    if arch.latent_dim != latent_dim:
        source = resume_dir if state is not None else cfg.init_from
        raise InputError(
            f"generator {source} models {arch.latent_dim} latent channels but the codec has {latent_dim}: "
            "pass the --codec-checkpoint it was trained with"
        )
    if arch.semantic_dim != semantic_dim:
        source = resume_dir if state is not None else cfg.init_from
        raise InputError(
            f"generator {source} reads {arch.semantic_dim}-channel visual tokens but this run makes "
            f"{semantic_dim}: pass the --semantic-head it was trained with (or none if it had none)"
        )
    net = AudioDiT(arch).to(ctx.device)
    if start is not None:
        net.load_state_dict(start.state_dict())
        if ctx.is_main:
            log.info("starting from the weights of generator %s", cfg.init_from)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_factor(cfg.warmup_steps, cfg.schedule_steps, cfg.min_lr_ratio)
    )
    ema = EMA(net, cfg.ema_decay)
    step = 0
    if state is not None:
        load_state_strict(net, state["net"], source=resume_dir)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        ema.load_state_dict(state["ema"])
        step = int(state["step"])
        if ctx.is_main:
            log.info("resumed %s at step %d", resume_dir, step)
    elif ctx.is_main:
        log.info("generator %s: %.2f M parameters", cfg.preset, net.num_parameters() / 1e6)
    model: nn.Module = net
    if ctx.distributed:
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        # condition dropout and corpus batches leave some projections unused on some ranks in some steps
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)
    return _Run(ctx, arch, model, opt, sched, ema, step, widened_from)


def _semantic_head(cfg: GeneratorTrainConfig, run_dir: Path) -> SemanticHead | None:
    """The head of ``--semantic-head``, else the one the started or resumed generator carries, else None."""
    if cfg.semantic_head:
        return head_from_checkpoint(cfg.semantic_head)
    if find_train_state(run_dir) is not None:
        return generator_head(run_dir / RELEASE)
    if cfg.init_from is not None:
        return generator_head(_init_path(cfg.init_from))
    return None


def _init_path(init_from: str) -> Path:
    """The release folder ``init_from`` names (``bundled``: the shipped generator)."""
    return bundle_path("generator") if init_from == "bundled" else Path(init_from)


def _initial_network(init_from: str | None) -> AudioDiT | None:
    """The released generator a new run starts from (``bundled``: the shipped one), or None."""
    if init_from is None:
        return None
    return load_generator(_init_path(init_from))


@torch.no_grad()
def validate(
    net: AudioDiT, clips: list[tuple[ClipFeatures, dict]], *, steps: int, codec: Codec
) -> dict[str, float]:
    """Flow loss at fixed noise and times, and onset accuracy of generations, on held-out clips."""
    if not clips:
        return {}
    was_training = net.training
    net.eval()
    device = net.latent_mean.device
    latents, cond, T = collate([c for c, _ in clips], net.cfg)
    cond = _to(cond, device)
    latents = latents.to(device)
    gen = torch.Generator(device=device).manual_seed(1234)
    B = latents.shape[0]
    x1 = net.normalize(latents)
    t = torch.linspace(0.05, 0.95, B, device=device)
    x0 = torch.randn(x1.shape, generator=gen, device=device)
    prepared = net.prepare_conditions(cond, num_frames=T, batch=B)
    mask = loss_mask(cond.lengths, None, T)
    loss = float(
        FlowMatching().loss(lambda tt, x: net.predict_flow(x, tt, prepared), x1, mask=mask, t=t, x0=x0)
    )
    out = net.generate(cond, num_frames=T, num_inference_steps=steps)
    codec, vocoder = codec.to(device), default_vocoder(device=str(device))
    sr = vocoder.config.spec.sample_rate
    scores: dict[str, list[float]] = {}
    for i, (_clip, meta) in enumerate(clips):
        n = int(cond.lengths[i])
        wav = vocoder.decode(codec.decode(out[i, :, :n])).float().cpu().numpy().reshape(-1)
        for name, value in onset_metrics(wav, sr, meta.get("events", [])).items():
            if name in ("onset_acc", "onset_ap", "onset_f1"):
                scores.setdefault(name, []).append(value)
    net.train(was_training)
    return {"val/flow_loss": loss, **{f"val/{k}": float(np.mean(v)) for k, v in scores.items()}}


def _save(
    run: _Run,
    cfg: GeneratorTrainConfig,
    run_dir: Path,
    metrics: MetricsLog,
    val: list,
    codec: Codec,
    head: SemanticHead | None,
) -> None:
    """Rank 0: validate the EMA weights, then write resume state, the release (with its codec and semantic
    head) and the plot."""
    if not run.ctx.is_main:
        return
    net = unwrap(run.net)
    release: AudioDiT = run.ema.model  # type: ignore[assignment]
    scores = validate(release, val, steps=cfg.val_steps, codec=codec) if val else {}
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
        "ema": run.ema.state_dict(),
    }
    save_train_state(run_dir, state)
    meta = {
        "step": run.step,
        "data": cfg.data,
        "corpus": cfg.corpus,
        "codec": cfg.codec_checkpoint or "bundled",
    }
    own_codec = None
    if cfg.codec_checkpoint not in (
        None,
        "bundled",
    ):  # the release carries a codec other than the bundled one
        own_codec = CheckpointPart(
            codec, "codec", codec.config.to_dict(), {"source": str(cfg.codec_checkpoint)}
        )
    own_head = head.part({"source": str(cfg.semantic_head or cfg.init_from or run_dir)}) if head else None
    save_generator(
        release, run_dir / RELEASE, meta={**meta, **scores}, codec=own_codec, semantic_head=own_head
    )
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "losses.png")
    log.info("saved step %d to %s", run.step, run_dir)
