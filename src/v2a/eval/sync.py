"""Audio-visual offset: a weight-free envelope-vs-motion lag, an audio-vs-reference lag, and the hook for
the learned sync estimator.

Weight-free lag. Sounds of contact (hits, steps, slams, bounces) start where visible motion stops or turns:
a falling object is fastest just before it lands, then slows or stops. So the video gives a *motion onset
strength* per frame: on 64 x 64 grey frames at the video's own rate (at most 60 fps, so no frame is
repeated), the frame-difference energy of each cell of a 4 x 4 grid, its drop across the frame
(``max(0, d[k-1] - d[k])``), and the largest drop over the cells (a small object's landing is not drowned
by a pan or a large moving object elsewhere). The audio gives its spectral-flux onset strength pooled to
the same frame times. The lag is the shift that maximises their normalised cross-correlation within
±``max_lag_s``, refined with a parabola through the peak; the drop at frame k belongs to an event between
frames k and k + 1, so half a frame is subtracted. Positive lag: the audio is late. Clips without motion
changes or audio onsets have no defined lag (NaN, confidence 0).

How far to trust it: on a single bouncing object (``examples/bounce.mp4``) the ground truth scores
|lag| of about 0.06 s (1.5 frames) and a shift of the audio moves the lag by the same amount; on busy Foley-world scenes
(pans, zooms, several movers, off-screen and sustained sounds) the ground truth itself scores a mean |lag|
of about 0.4 s, near chance, so compare models with it only on simple scenes. ``reference_lag`` (the lag
of an audio track behind the reference soundtrack, from their onset envelopes) is robust wherever a
reference exists, and the learned estimator is the real audio-visual measure.

Learned estimator. ``learned_offset_estimator()`` wraps the project's sync encoder (issue 4,
``v2a.encoders.sync.estimate_offset`` with the bundled ``checkpoints/sync``) as an ``OffsetEstimator``
(signed seconds, positive = audio late, the same convention), or raises ModelUnavailableError while the
module or its checkpoint is missing, so the runner reports ``av_offset_s`` only where it is real.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from v2a.data.onsets import DEFAULT_PARAMS, onset_strength
from v2a.errors import ModelUnavailableError
from v2a.io.video import probe, read_video

MAX_MOTION_FPS = 60.0
MOTION_SIZE = 64
MOTION_GRID = 4
MAX_LAG_S = 1.0
ENVELOPE_FPS = 100.0  # frame rate of the audio-vs-reference envelopes

OffsetEstimator = Callable[[str | os.PathLike, np.ndarray, int], float]
"""``(video, wav, sr) -> offset_s``: signed audio-visual offset of a waveform against a video (positive:
the audio is late)."""


@dataclass(frozen=True)
class MotionTrack:
    """Motion of a video sampled at a fixed rate.

    Attributes:
        times_s: (T,) frame times on the video timeline.
        energy: (T,) mean absolute grey-level difference to the next frame (0..255; last frame 0).
        strength: (T,) motion onset strength: the largest drop of any grid cell's difference energy
            across each frame (>= 0).
        fps: the sampling rate.
    """

    times_s: np.ndarray
    energy: np.ndarray
    strength: np.ndarray
    fps: float


@dataclass(frozen=True)
class LagEstimate:
    """Result of a cross-correlation lag search.

    Attributes:
        lag_s: signed lag in seconds (positive: audio late); NaN when undefined.
        confidence: normalised cross-correlation at the peak (-1..1; 0 when undefined).
    """

    lag_s: float
    confidence: float


def motion_from_frames(
    frames: np.ndarray, times_s: np.ndarray, fps: float, *, grid: int = MOTION_GRID
) -> MotionTrack:
    """Motion energy and onset strength of (T, H, W, 3) uint8 RGB frames sampled at ``fps``."""
    grey = frames.astype(np.float32).mean(axis=-1)  # (T, H, W)
    t, h, w = grey.shape
    energy = np.zeros(t, np.float64)
    strength = np.zeros(t, np.float64)
    if t > 1:
        diff = np.abs(np.diff(grey, axis=0))  # (T-1, H, W)
        energy[:-1] = diff.mean(axis=(1, 2))
        ch, cw = h // grid, w // grid
        if ch and cw:
            cells = diff[:, : ch * grid, : cw * grid].reshape(t - 1, grid, ch, grid, cw).mean(axis=(2, 4))
            cells = cells.reshape(t - 1, grid * grid)  # (T-1, G*G)
        else:
            cells = energy[:-1, None]
        if t > 2:
            strength[1:-1] = np.maximum(0.0, cells[:-1] - cells[1:]).max(axis=1)  # motion into frame k slows
    return MotionTrack(np.asarray(times_s, np.float64), energy, strength, fps)


def video_motion(video: str | os.PathLike, *, size: int = MOTION_SIZE) -> MotionTrack:
    """Read a video at its own frame rate (at most 60 fps) as small grey frames and measure its motion.

    Raises:
        InputError: the video cannot be read.
    """
    fps = min(probe(video).fps, MAX_MOTION_FPS)
    seq = read_video(video, fps, size=(size, size), resize="stretch")[0]
    return motion_from_frames(seq.frames, seq.times_s, fps)


def audio_onset_envelope(wav: np.ndarray, sr: int, times_s: np.ndarray, fps: float) -> np.ndarray:
    """Spectral-flux onset strength of ``wav`` pooled (max) over each frame's interval ``t ± 0.5 / fps``.

    Returns:
        (T,) float64, one value per entry of ``times_s``.
    """
    flux, _ = onset_strength(np.asarray(wav, dtype=np.float32), sr)
    hop = max(1, round(DEFAULT_PARAMS.hop_s * sr))
    flux_t = np.arange(flux.size) * hop / sr  # flux frame t is centred on sample t * hop
    edges = np.searchsorted(flux_t, np.r_[times_s - 0.5 / fps, times_s[-1:] + 0.5 / fps])
    out = np.zeros(len(times_s))
    for k in range(len(times_s)):
        lo, hi = edges[k], max(edges[k + 1], edges[k] + 1)
        if lo < flux.size:
            out[k] = flux[lo:hi].max()
    return out


def envelope_lag(
    audio: np.ndarray, motion: np.ndarray, fps: float, *, max_lag_s: float = MAX_LAG_S
) -> LagEstimate:
    """Lag of ``audio`` behind ``motion`` (two envelopes on the same frame grid) by normalised
    cross-correlation, refined with a parabola through the peak.

    Args:
        audio: (T,) audio onset envelope.
        motion: (T,) motion onset envelope.
        fps: frames per second of both.
        max_lag_s: largest |lag| searched.

    Returns:
        The lag (positive: audio late) and the peak correlation; NaN / 0 when either envelope is flat.
    """
    a = np.asarray(audio, np.float64) - np.mean(audio)
    m = np.asarray(motion, np.float64) - np.mean(motion)
    scale = math.sqrt(float(a @ a) * float(m @ m))
    if a.size < 3 or scale <= 1e-12:
        return LagEstimate(float("nan"), 0.0)
    max_lag = max(1, min(round(max_lag_s * fps), a.size - 1))
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([_shifted_dot(m, a, lag) for lag in lags]) / scale  # corr[lag] = sum m[k] a[k + lag]
    i = int(np.argmax(corr))
    frac = 0.0
    if 0 < i < len(corr) - 1:
        left, mid, right = corr[i - 1], corr[i], corr[i + 1]
        denom = left - 2 * mid + right
        frac = 0.5 * (left - right) / denom if denom < 0 else 0.0
    return LagEstimate(float((lags[i] + frac) / fps), float(corr[i]))


def _shifted_dot(m: np.ndarray, a: np.ndarray, lag: int) -> float:
    if lag >= 0:
        return float(m[: m.size - lag] @ a[lag:])
    return float(m[-lag:] @ a[: a.size + lag])


def av_lag(wav: np.ndarray, sr: int, motion: MotionTrack, *, max_lag_s: float = MAX_LAG_S) -> LagEstimate:
    """Weight-free audio-visual lag of a waveform against a video's motion.

    Args:
        wav: (S,) mono waveform on the video timeline (sample 0 = first frame).
        sr: its rate in Hz.
        motion: the video's motion (``video_motion``).
        max_lag_s: largest |lag| searched.

    Returns:
        The lag estimate (positive: audio late).
    """
    env = audio_onset_envelope(wav, sr, motion.times_s, motion.fps)
    est = envelope_lag(env, motion.strength, motion.fps, max_lag_s=max_lag_s)
    return LagEstimate(est.lag_s - 0.5 / motion.fps, est.confidence)  # the drop at k is an event in (k, k+1)


def reference_lag(
    wav: np.ndarray, reference: np.ndarray, sr: int, *, max_lag_s: float = MAX_LAG_S
) -> LagEstimate:
    """Lag of an audio track behind a reference soundtrack of the same video, from their onset envelopes.

    Args:
        wav: (S,) waveform to judge.
        reference: (S',) reference waveform on the same timeline.
        sr: rate of both in Hz.
        max_lag_s: largest |lag| searched.

    Returns:
        The lag (positive: ``wav`` late) at 10 ms resolution refined by a parabola.
    """
    n = max(len(wav), len(reference))
    times = np.arange(int(np.ceil(n / sr * ENVELOPE_FPS))) / ENVELOPE_FPS
    if times.size < 3:
        return LagEstimate(float("nan"), 0.0)
    mine = audio_onset_envelope(wav, sr, times, ENVELOPE_FPS)
    ref = audio_onset_envelope(reference, sr, times, ENVELOPE_FPS)
    return envelope_lag(mine, ref, ENVELOPE_FPS, max_lag_s=max_lag_s)


def learned_offset_estimator() -> OffsetEstimator:
    """The project's learned audio-visual offset estimator, with its encoder loaded once.

    Raises:
        ModelUnavailableError: ``v2a.encoders.sync`` or its bundled checkpoint is missing.
    """
    try:
        from v2a.encoders.sync import default_encoder, estimate_offset
    except ImportError:
        raise ModelUnavailableError(
            "the learned sync estimator (v2a.encoders.sync) is not installed"
        ) from None
    encoder = default_encoder()

    def estimate(video: str | os.PathLike, wav: np.ndarray, sr: int) -> float:
        return float(estimate_offset(video, wav, sr, encoder=encoder).offset_s)

    return estimate
