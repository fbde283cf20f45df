"""Sync encoder (25 fps motion features on the audio timeline) and the AV-offset estimator built on it.

Idea (Synchformer's, made small): two towers embed a video's motion (``v2a.encoders.motion``) and its
sound (log-mel) into per-frame vectors at 25 fps on the shared timeline, so that the picture at time t
matches the sound at time t. Training (``v2a.train.sync_trainer``) is contrastive: a window of video
frames must pick out its own audio among the same audio shifted by every lag in ±``max_offset_s`` (the
offset classes, one per 40 ms frame) and among the other clips of the batch.

Offset estimation uses the same score: for a lag l, S(l) is the mean over the video's frames k of the
cosine between video frame k and audio at t_k + l. Audio is embedded at four phases (0, 10, 20, 30 ms),
so S is known every 10 ms; the estimate is its peak, refined by a parabola. Positive offsets mean the audio
lags the picture. Windows combine over the whole clip: S is the mean over all frames, and the class
posterior treats each training-window's worth of frames as independent evidence (its logits are the
trained ``scale * S`` times the number of windows), from which ``confidence`` is the probability that the
true offset lies within ``CONFIDENCE_RADIUS_S`` of the estimate.

Audio representation: the project's log-mel (``v2a.audio.mel``, 93.75 fps at 24 kHz) interpolated to
``AUDIO_STEPS`` = 4 frames per video frame (100 fps), frame 4k + i at time t_k + i / 100, so a video frame
and its four audio frames cover the same 40 ms. Audio outside the track (before 0, after its end or the
video's end) is silence (the mel floor), exactly as a shifted track looks.

Checkpoint: kind ``"sync"``, ``config.json`` + ``model.safetensors`` (``v2a.model.checkpoint``); the
default one is ``checkpoints/sync`` at the repository root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.audio.mel import log_mel
from v2a.audio.spec import AudioSpec, get_spec
from v2a.encoders.motion import CHANNELS, Motion, MotionSpec, motion_from_frames, video_motion
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.audio import load_audio, load_video_audio, resample, to_mono
from v2a.model.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "AUDIO_STEPS",
    "CHECKPOINT_KIND",
    "DEFAULT_CHECKPOINT",
    "OffsetEstimate",
    "SyncConfig",
    "SyncEncoder",
    "SyncFeatures",
    "SyncNet",
    "audio_frames",
    "default_encoder",
    "estimate_offset",
    "lag_scores",
    "pad_silence",
    "sync_config",
]

CHECKPOINT_KIND = "sync"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "sync"
AUDIO_STEPS = 4  # audio frames per 25 fps video frame (100 fps)
CONFIDENCE_RADIUS_S = 0.1
MIN_FRAMES = 8  # shortest video (frames at 25 fps) an offset is estimated for
_CHUNK_FRAMES = 1000  # frames per tower call at inference (bounded memory for long videos)
_MEL_SHIFT, _MEL_SCALE = -4.0, 4.0  # log-mel (floor -11.5, loud ~ +2) -> roughly [-2, 1.5]


# ---- config ----


@dataclass(frozen=True)
class SyncConfig:
    """Sizes and input representation of a sync network (stored in its checkpoint).

    Attributes:
        dim: per-frame embedding size D.
        width: channels of both towers' temporal layers.
        blocks: residual temporal conv blocks per tower (dilations 1, 2, 4, ...).
        kernel: temporal kernel size of the blocks (odd).
        spec_name: the AudioSpec of the mel input.
        motion_size: side of the grey picture motion is measured on (``MotionSpec.size``).
        motion_grid: cells per side of the motion map (``MotionSpec.grid``).
        fps: the feature rate (``MotionSpec.fps``).
        window_s: training window length; one window's worth of frames is one unit of evidence.
    """

    dim: int = 128
    width: int = 64
    blocks: int = 3
    kernel: int = 5
    spec_name: str = "mel24k"
    motion_size: int = 64
    motion_grid: int = 16
    fps: float = 25.0
    window_s: float = 4.0

    def __post_init__(self) -> None:
        if min(self.dim, self.width, self.blocks) < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"invalid sync config {self}: sizes must be >= 1 and the kernel odd")
        if self.window_s <= 0:
            raise InputError(f"invalid sync config {self}: window_s must be > 0")

    @property
    def spec(self) -> AudioSpec:
        """The AudioSpec of the mel input."""
        return get_spec(self.spec_name)

    @property
    def motion(self) -> MotionSpec:
        """The motion representation."""
        return MotionSpec(fps=self.fps, size=self.motion_size, grid=self.motion_grid)

    @property
    def window_frames(self) -> int:
        """Video frames in a training window."""
        return max(1, round(self.window_s * self.fps))

    @property
    def receptive_frames(self) -> int:
        """Frames of context either side that change one output frame (chunked inference margin)."""
        half = (self.kernel - 1) // 2
        return 1 + half * (2**self.blocks - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> SyncConfig:
        """Rebuild from :meth:`to_dict`; unknown fields or an unknown spec raise InputError."""
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"sync config has unknown fields {unknown}")
        config = cls(**fields)
        try:
            get_spec(config.spec_name)
        except ValueError as exc:
            raise InputError(f"sync config: {exc}") from None
        return config


def sync_config(preset: str = "small") -> SyncConfig:
    """A named size: ``small`` (the bundled model, 0.23 M parameters) or ``tiny`` (tests).

    Raises:
        InputError: unknown preset name.
    """
    tiny = SyncConfig(dim=16, width=16, blocks=1, kernel=3, motion_size=32, motion_grid=8, window_s=2.0)
    presets = {"small": SyncConfig(), "tiny": tiny}
    if preset not in presets:
        raise InputError(f"unknown sync preset {preset!r}; known: {sorted(presets)}")
    return presets[preset]


# ---- input representation of the audio ----


def audio_frames(wav: np.ndarray, sample_rate: int, num_frames: int, *, config: SyncConfig) -> np.ndarray:
    """Log-mel of a waveform on the video timeline at ``AUDIO_STEPS`` frames per video frame.

    Args:
        wav: (S,) or (C, S) waveform whose sample 0 is at video time 0.
        sample_rate: its rate in Hz (resampled to the spec's rate when different).
        num_frames: video frames T to cover; audio past ``T / fps`` is ignored, missing audio is silence.
        config: the network's config (spec and fps).

    Returns:
        (n_mels, AUDIO_STEPS * T) float32; column 4k + i is at time (k + i / 4) / fps.
    """
    spec = config.spec
    wav = to_mono(np.asarray(wav, np.float32))
    if sample_rate != spec.sample_rate:
        wav = resample(wav, sample_rate, spec.sample_rate)
    steps = AUDIO_STEPS * num_frames
    total = math.ceil(num_frames / config.fps * spec.sample_rate)
    wav = np.pad(wav[:total], (0, max(0, total - len(wav))))
    mel = log_mel(wav, spec).numpy()  # (n_mels, total // hop + 1), frame j at j * hop / sr
    pos = np.arange(steps) / (config.fps * AUDIO_STEPS) * spec.mel_fps  # fractional mel frame of each step
    lo = np.minimum(np.floor(pos).astype(np.int64), mel.shape[1] - 1)
    hi = np.minimum(lo + 1, mel.shape[1] - 1)
    frac = (pos - lo).astype(np.float32)
    return (mel[:, lo] * (1 - frac) + mel[:, hi] * frac).astype(np.float32)


def silence_level(config: SyncConfig) -> float:
    """The log-mel value of silence (the floor)."""
    return math.log(config.spec.log_floor)


def pad_silence(mel: np.ndarray, left: int, right: int, *, config: SyncConfig) -> np.ndarray:
    """Extend (n_mels, N) audio frames with ``left`` / ``right`` frames of silence."""
    return np.pad(mel, ((0, 0), (left, right)), constant_values=silence_level(config))


# ---- network ----


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of a (B, C, T) sequence (per time step, so chunking changes nothing)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class _TemporalBlock(nn.Module):
    """Pre-norm residual block: dilated temporal conv, GELU, 1x1 conv."""

    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = _ChannelNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.gelu(self.conv(self.norm(x))))


def _blocks(config: SyncConfig) -> nn.Sequential:
    return nn.Sequential(*[_TemporalBlock(config.width, config.kernel, 2**i) for i in range(config.blocks)])


class VideoTower(nn.Module):
    """Motion maps -> per-frame embeddings: a small 2-D CNN per frame, spatial mean + max pooling, then
    dilated temporal conv blocks (all temporal context comes after pooling, which keeps it cheap).

    Args:
        config: sizes.
    """

    def __init__(self, config: SyncConfig):
        super().__init__()
        c, w = len(CHANNELS), config.width
        self.conv1 = nn.Conv2d(c, 16, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.pool = nn.Linear(64, w)
        self.blocks = _blocks(config)
        self.norm = _ChannelNorm(w)
        self.proj = nn.Conv1d(w, config.dim, 1)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """Args: motion (B, T, C, G, G). Returns: (B, T, D) embeddings (not normalised)."""
        B, T = motion.shape[:2]
        x = F.gelu(self.conv1(motion.flatten(0, 1)))  # (B*T, 16, G/2, G/2)
        x = F.gelu(self.conv2(x))  # (B*T, 32, G/4, G/4)
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)  # (B*T, 64)
        x = self.pool(x).unflatten(0, (B, T)).transpose(1, 2)  # (B, w, T)
        x = self.proj(self.norm(self.blocks(x)))  # (B, D, T)
        return x.transpose(1, 2)  # (B, T, D)


class AudioTower(nn.Module):
    """Log-mel at 4 frames per video frame -> per-video-frame embeddings: a strided conv to 25 fps whose
    window spans the video frame's 4 audio frames and 2 either side, then the video tower's kind of
    temporal blocks.

    Args:
        config: sizes.
    """

    def __init__(self, config: SyncConfig):
        super().__init__()
        w = config.width
        self.down = nn.Conv1d(
            config.spec.n_mels, w, 2 * AUDIO_STEPS, stride=AUDIO_STEPS, padding=AUDIO_STEPS // 2
        )
        self.blocks = _blocks(config)
        self.norm = _ChannelNorm(w)
        self.proj = nn.Conv1d(w, config.dim, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Args: mel (B, n_mels, 4T) log-mel. Returns: (B, T, D) embeddings (not normalised)."""
        assert mel.shape[-1] % AUDIO_STEPS == 0, f"{mel.shape=}"
        x = F.gelu(self.down((mel - _MEL_SHIFT) / _MEL_SCALE))  # (B, w, T)
        x = self.proj(self.norm(self.blocks(x)))  # (B, D, T)
        return x.transpose(1, 2)  # (B, T, D)


class SyncNet(nn.Module):
    """The two towers and the learned logit scale of the offset classifier.

    Args:
        config: sizes and input representation.
    """

    def __init__(self, config: SyncConfig):
        super().__init__()
        self.config = config
        self.video = VideoTower(config)
        self.audio = AudioTower(config)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    @property
    def scale(self) -> torch.Tensor:
        """Logit scale applied to cosine scores (clamped to 100, as in CLIP)."""
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def forward(
        self, motion: torch.Tensor, mel: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embed both streams (the training entry point: everything DDP must see goes through here).

        Args:
            motion: (B, T, C, G, G) motion maps.
            mel: (B, n_mels, 4T') log-mel frames.

        Returns:
            ``(video, audio, scale)``: (B, T, D) and (B, T', D) L2-normalised embeddings, and the logit scale.
        """
        return F.normalize(self.video(motion), dim=-1), F.normalize(self.audio(mel), dim=-1), self.scale


def lag_scores(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Mean cosine of video frames against audio at every lag.

    Args:
        video: (B, T, D) normalised video embeddings.
        audio: (B, T + 2L, D) normalised audio embeddings; audio index j is at video frame j - L.

    Returns:
        (B, 2L + 1) scores; column L + l is ``mean_k <video[k], audio[k + L + l]>`` (audio late by l).
    """
    B, T, D = video.shape
    assert audio.shape[0] == B and audio.shape[2] == D and audio.shape[1] >= T, (
        f"{video.shape=} {audio.shape=}"
    )
    x = audio.transpose(1, 2).reshape(1, B * D, audio.shape[1])  # (1, B*D, T + 2L)
    out = F.conv1d(x, video.transpose(1, 2), groups=B)  # (1, B, 2L + 1): cross-correlation per clip
    return out[0] / T


# ---- inference ----


@dataclass(frozen=True)
class SyncFeatures:
    """Per-frame sync features of a video.

    Attributes:
        features: (T, D) float32 L2-normalised embeddings; row k describes what should be heard at
            ``times_s[k]`` (the picture's motion around that time).
        times_s: (T,) float64 frame times on the video (= audio) timeline.
        fps: their rate (25).
    """

    features: np.ndarray
    times_s: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.times_s)


@dataclass(frozen=True)
class OffsetEstimate:
    """The estimated audio-video offset.

    Attributes:
        offset_s: seconds the audio lags the picture (negative: the audio leads).
        confidence: probability (0..1) that the true offset is within ``CONFIDENCE_RADIUS_S`` (0.1 s).
        lags_s: (N,) candidate offsets, every 10 ms over ±``max_offset_s``.
        curve: (N,) mean cosine score of each candidate.
    """

    offset_s: float
    confidence: float
    lags_s: np.ndarray
    curve: np.ndarray

    def to_dict(self) -> dict[str, float]:
        """The JSON report: ``offset_s`` and ``confidence``."""
        return {"offset_s": round(self.offset_s, 4), "confidence": round(self.confidence, 4)}


class SyncEncoder:
    """Inference wrapper around a trained :class:`SyncNet` (eval mode, no gradients).

    Args:
        net: the network.
        device: where it runs.
    """

    def __init__(self, net: SyncNet, *, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, *, device: str = "cpu") -> SyncEncoder:
        """Load a released sync encoder.

        Args:
            path: checkpoint directory; None: the bundled ``checkpoints/sync``.
            device: where to run.

        Raises:
            ModelUnavailableError: no checkpoint at the default place.
            InputError: a checkpoint that is malformed or of another kind.
        """
        root = DEFAULT_CHECKPOINT if path is None else Path(path)
        if path is None and not (root / "config.json").is_file():
            raise ModelUnavailableError(
                f"the sync encoder checkpoint is missing at {root}; train one with `v2a train sync` "
                "and copy its release folder there, or pass a checkpoint path"
            )
        ckpt = load_checkpoint(root, kind=CHECKPOINT_KIND)
        net = SyncNet(SyncConfig.from_dict(ckpt.config))
        ckpt.load_into(net)
        return cls(net, device=device)

    def save(self, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> Path:
        """Write the network as a release checkpoint."""
        return save_checkpoint(path, self.net, kind=CHECKPOINT_KIND, config=self.config.to_dict(), meta=meta)

    # -- features --

    def motion(
        self,
        video: str | os.PathLike | np.ndarray,
        *,
        times_s: np.ndarray | None = None,
        start_s: float = 0.0,
        duration_s: float | None = None,
    ) -> Motion:
        """The motion track of a video file (or of a window of it), or of (T, H, W, 3) uint8 frames at 25 fps."""
        if isinstance(video, np.ndarray):
            if len(video) == 0:
                raise InputError("video frames: got an empty array, need at least one frame")
            try:
                return motion_from_frames(video, times_s, spec=self.config.motion)
            except ValueError as exc:
                raise InputError(f"video frames: {exc}") from None
        return video_motion(video, spec=self.config.motion, start_s=start_s, duration_s=duration_s)

    @torch.inference_mode()
    def video_embeddings(self, motion: np.ndarray) -> torch.Tensor:
        """(T, C, G, G) motion -> (T, D) normalised embeddings (chunked; exact for any length)."""
        x = torch.from_numpy(np.ascontiguousarray(motion, np.float32)).to(self.device)

        def run(lo: int, hi: int) -> torch.Tensor:
            return self.net.video(x[None, lo:hi])[0]

        with _one_cpu_thread(self.device):
            return F.normalize(_chunked(run, len(x), self.config.receptive_frames), dim=-1)

    @torch.inference_mode()
    def audio_embeddings(self, mel: np.ndarray, *, phase: int = 0) -> torch.Tensor:
        """(n_mels, 4T) audio frames -> (T, D) normalised embeddings of the audio ``phase`` / 4 frames later.

        Audio beyond the end of ``mel`` counts as silence.
        """
        x = torch.from_numpy(np.ascontiguousarray(mel, np.float32)).to(self.device)
        x = F.pad(x[:, phase:], (0, phase), value=silence_level(self.config))
        frames = x.shape[1] // AUDIO_STEPS

        def run(lo: int, hi: int) -> torch.Tensor:
            return self.net.audio(x[None, :, AUDIO_STEPS * lo : AUDIO_STEPS * hi])[0]

        with _one_cpu_thread(self.device):
            return F.normalize(_chunked(run, frames, self.config.receptive_frames + 1), dim=-1)

    def encode_motion(self, motion: Motion) -> SyncFeatures:
        """Sync features of a motion track."""
        feats = self.video_embeddings(motion.features).cpu().numpy().astype(np.float32)
        return SyncFeatures(feats, motion.times_s, motion.fps)

    def encode_video(
        self,
        video: str | os.PathLike | np.ndarray,
        *,
        times_s: np.ndarray | None = None,
        start_s: float = 0.0,
        duration_s: float | None = None,
    ) -> SyncFeatures:
        """Per-frame sync features at 25 fps on the video timeline (the generator's sync condition).

        Args:
            video: a video file (read by timestamp at 25 fps, any source rate) or (T, H, W, 3) uint8
                RGB frames already at 25 fps.
            times_s: (T,) times of the given frames (default ``arange(T) / 25``); ignored for files.
            start_s, duration_s: for files, the window to read (only it is decoded); times stay on the
                video timeline. The first frame of a window has no previous frame, so read a little
                before the span you need (``receptive_frames / fps``) for features equal to a full read.

        Returns:
            The features and their times.

        Raises:
            InputError: an unreadable video or malformed frames.
        """
        return self.encode_motion(self.motion(video, times_s=times_s, start_s=start_s, duration_s=duration_s))

    # -- offsets --

    def estimate(self, motion: Motion, mel: np.ndarray, *, max_offset_s: float = 2.0) -> OffsetEstimate:
        """Offset of an audio track against a motion track.

        Args:
            motion: the video's motion (T frames).
            mel: (n_mels, 4T) ``audio_frames`` of the audio on the same timeline.
            max_offset_s: largest |offset| considered.

        Returns:
            The estimate (see :class:`OffsetEstimate`).
        """
        cfg = self.config
        T = len(motion)
        if mel.shape[1] != AUDIO_STEPS * T:
            raise ValueError(f"{mel.shape=} does not cover {T} video frames")
        lag = max(1, round(max_offset_s * cfg.fps))
        video = self.video_embeddings(motion.features)  # (T, D)
        padded = pad_silence(mel, AUDIO_STEPS * lag, AUDIO_STEPS * lag, config=cfg)
        per_phase = []
        for phase in range(AUDIO_STEPS):
            audio = self.audio_embeddings(padded, phase=phase)  # (T + 2L, D)
            per_phase.append(lag_scores(video[None], audio[None])[0])  # (2L + 1,)
        # lag index m = 4 l + phase, in 1/100 s; keep |m| <= 4 L
        curve = torch.stack(per_phase, dim=1).flatten()[: AUDIO_STEPS * 2 * lag + 1].cpu().numpy()
        lags = (np.arange(len(curve)) - AUDIO_STEPS * lag) / (cfg.fps * AUDIO_STEPS)
        with torch.no_grad():
            evidence = float(self.net.scale) * T / cfg.window_frames
        return _peak(lags, curve.astype(np.float64), evidence)


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run on one CPU thread: these small convolutions gain nothing from intra-op threads, and on a busy
    CPU the threads' waits make them 10-100x slower (measured on 2 shared cores)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _chunked(run: Callable[[int, int], torch.Tensor], total: int, margin: int) -> torch.Tensor:
    """Apply a temporal network to frames [0, total) in chunks with ``margin`` frames of context."""
    parts = []
    for lo in range(0, total, _CHUNK_FRAMES):
        hi = min(total, lo + _CHUNK_FRAMES)
        a, b = max(0, lo - margin), min(total, hi + margin)
        parts.append(run(a, b)[lo - a : hi - a])
    return torch.cat(parts)


def _peak(lags: np.ndarray, curve: np.ndarray, evidence: float) -> OffsetEstimate:
    """Peak of the score curve (parabola-refined) and the posterior mass near it."""
    i = int(np.argmax(curve))
    frac = 0.0
    if 0 < i < len(curve) - 1:
        left, mid, right = curve[i - 1], curve[i], curve[i + 1]
        denom = left - 2 * mid + right
        frac = float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    step = float(lags[1] - lags[0]) if len(lags) > 1 else 0.0
    offset = float(lags[i] + frac * step)
    # posterior over the 10 ms lags with the trained logit scale, summed over the clip's windows
    logits = evidence * curve
    post = np.exp(logits - logits.max())
    post /= post.sum()
    near = np.abs(lags - offset) <= CONFIDENCE_RADIUS_S + 1e-9
    return OffsetEstimate(offset, float(post[near].sum()), lags, curve)


@functools.lru_cache(maxsize=2)
def default_encoder(device: str = "cpu") -> SyncEncoder:
    """The bundled sync encoder (loaded once per process).

    Raises:
        ModelUnavailableError: ``checkpoints/sync`` is missing.
    """
    return SyncEncoder.from_checkpoint(None, device=device)


def _load_track(
    video: str | os.PathLike, audio: str | os.PathLike | np.ndarray | None, sample_rate: int | None, sr: int
) -> np.ndarray:
    if audio is None:
        return load_video_audio(video, sr=sr)
    if isinstance(audio, np.ndarray):
        if sample_rate is None or sample_rate <= 0:
            raise InputError("a waveform given as an array needs its sample_rate")
        wav = np.asarray(audio, np.float32)
        if wav.ndim not in (1, 2) or wav.size == 0:
            raise InputError(f"audio must be a non-empty (S,) or (C, S) waveform, got shape {wav.shape}")
        return resample(to_mono(wav), sample_rate, sr)
    return load_audio(audio, sr=sr)[0]


def estimate_offset(
    video: str | os.PathLike,
    audio: str | os.PathLike | np.ndarray | None = None,
    sample_rate: int | None = None,
    *,
    max_offset_s: float = 2.0,
    encoder: SyncEncoder | None = None,
) -> OffsetEstimate:
    """Estimate how far an audio track lags a video's picture.

    Args:
        video: the video file.
        audio: an audio (or video) file, a waveform array, or None for the video's own soundtrack. A file's
            first sample is taken to be at video time 0.
        sample_rate: rate of an ``audio`` array in Hz (required for arrays only).
        max_offset_s: largest |offset| searched, in seconds (> 0).
        encoder: the sync encoder; None: the bundled one.

    Returns:
        The estimate: ``offset_s`` > 0 when the audio lags the picture, its confidence and the score curve.

    Raises:
        InputError: unreadable video or audio, no soundtrack, a video shorter than 0.32 s, or a bad
            ``max_offset_s``.
        ModelUnavailableError: no encoder given and the bundled checkpoint is missing.
    """
    if not (isinstance(max_offset_s, int | float) and math.isfinite(max_offset_s) and 0 < max_offset_s <= 30):
        raise InputError(f"max_offset_s must be in (0, 30] seconds, got {max_offset_s!r}")
    enc = encoder if encoder is not None else default_encoder()
    motion = enc.motion(video)
    if len(motion) < MIN_FRAMES:
        raise InputError(
            f"{video} is too short to estimate an offset ({len(motion)} frames at 25 fps, need {MIN_FRAMES})"
        )
    sr = enc.config.spec.sample_rate
    wav = _load_track(video, audio, sample_rate, sr)
    mel = audio_frames(wav, sr, len(motion), config=enc.config)
    return enc.estimate(motion, mel, max_offset_s=max_offset_s)
