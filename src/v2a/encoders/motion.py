"""The sync encoder's picture input: per-frame motion at 25 fps, the same function in training and inference.

Representation (``MotionSpec``): the video is resampled to 25 fps by presentation timestamp
(``v2a.io.video``: frame k at t_k = k / 25 shows the source frame on screen at t_k), scaled to 64 x 64 with
the whole picture kept (``resize="stretch"``: no event is cropped away; motion timing does not care about
the aspect ratio) and turned grey. Frame k's motion is the change from frame k - 1 to frame k, pooled to a
16 x 16 grid of 4 x 4-pixel cells, in three channels:

- ``diff``: mean absolute grey-level difference (catches small or fast objects that flow misses);
- ``flow_x``, ``flow_y``: mean DIS optical flow (OpenCV, ultrafast preset) in pixels of the 64-pixel
  picture, so direction changes (a bounce, a stop) are visible.

Each channel is divided by a fixed scale and compressed with a signed ``log1p``, so scene cuts and
whip pans stay in range. Frame 0 has no predecessor and zero motion. Only the number of frames at 25 fps
depends on the source; the source rate, variable frame timing and rotation are absorbed by the reader.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from v2a.io.video import iter_frames

__all__ = ["MOTION_FPS", "Motion", "MotionSpec", "motion_from_frames", "video_motion"]

MOTION_FPS = 25.0
CHANNELS = ("diff", "flow_x", "flow_y")
_DIFF_SCALE = 8.0  # grey levels: a moving edge gives tens, codec noise about 1
_FLOW_SCALE = 1.0  # pixels per frame of the 64-pixel picture


@dataclass(frozen=True)
class MotionSpec:
    """How frames become motion features; stored in the sync checkpoint so inference matches training.

    Attributes:
        fps: frame rate of the motion track (the sync encoder's rate).
        size: side of the square grey picture the motion is measured on.
        grid: cells per side of the pooled motion map (``size`` must be a multiple).
    """

    fps: float = MOTION_FPS
    size: int = 64
    grid: int = 16

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.size < 8 or self.grid < 1 or self.size % self.grid:
            raise ValueError(f"invalid MotionSpec {self}: need fps > 0, size >= 8 and a multiple of grid")

    @property
    def channels(self) -> int:
        """Feature channels per cell."""
        return len(CHANNELS)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-able fields."""
        return asdict(self)


DEFAULT_MOTION = MotionSpec()


@dataclass(frozen=True)
class Motion:
    """A motion track.

    Attributes:
        features: (T, C, G, G) float32 motion of each frame (see the module docstring for the channels).
        times_s: (T,) float64 frame times on the video timeline.
        fps: the track's rate.
    """

    features: np.ndarray
    times_s: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.times_s)


class _MotionState:
    """Turns consecutive frames into motion, carrying the previous grey picture across chunks."""

    def __init__(self, spec: MotionSpec):
        self.spec = spec
        self.prev: np.ndarray | None = None
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB frames -> (N, C, G, G) float32 motion."""
        spec = self.spec
        cell = spec.size // spec.grid
        out = np.zeros((len(frames), spec.channels, spec.grid, spec.grid), np.float32)
        for i, frame in enumerate(frames):
            grey = _grey(frame, spec.size)
            if self.prev is not None:
                diff = np.abs(grey.astype(np.float32) - self.prev.astype(np.float32))  # (S, S)
                flow = self.flow.calc(self.prev, grey, None)  # (S, S, 2)
                maps = np.concatenate([diff[..., None] / _DIFF_SCALE, flow / _FLOW_SCALE], axis=-1)
                pooled = maps.reshape(spec.grid, cell, spec.grid, cell, 3).mean(axis=(1, 3))  # (G, G, 3)
                out[i] = pooled.transpose(2, 0, 1)  # (G, G, C) -> (C, G, G)
            self.prev = grey
        return np.sign(out) * np.log1p(np.abs(out))


def _grey(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB frames, got {frame.shape} {frame.dtype}")
    if frame.shape[:2] != (size, size):
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def motion_from_frames(
    frames: np.ndarray,
    times_s: np.ndarray | None = None,
    *,
    spec: MotionSpec = DEFAULT_MOTION,
) -> Motion:
    """Motion of frames already sampled at ``spec.fps`` (e.g. a ``read_video`` result at 25 fps).

    Frames of another size are scaled to ``spec.size`` x ``spec.size`` (area interpolation); reading a
    file with :func:`video_motion` lets the decoder do it instead.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames at ``spec.fps``.
        times_s: (T,) their times; None means ``arange(T) / spec.fps``.
        spec: the representation.

    Returns:
        The motion track.

    Raises:
        ValueError: frames of the wrong shape or dtype, or times of the wrong length.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    times = np.arange(len(frames)) / spec.fps if times_s is None else np.asarray(times_s, np.float64)
    if times.shape != (len(frames),):
        raise ValueError(f"{times.shape=} does not match {len(frames)} frames")
    return Motion(_MotionState(spec).push(frames), times, spec.fps)


def video_motion(
    path: str | os.PathLike,
    *,
    spec: MotionSpec = DEFAULT_MOTION,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> Motion:
    """Motion track of a video file, streamed (memory stays small for long videos).

    Args:
        path: the video.
        spec: the representation.
        start_s: first frame time on the video timeline.
        duration_s: window length (None: to the end).

    Returns:
        The motion track; frame k is at ``start_s + k / spec.fps``.

    Raises:
        InputError: the video is unreadable (see ``v2a.io.video.probe``).
    """
    state = _MotionState(spec)
    feats, times = [], []
    for piece in iter_frames(
        path,
        spec.fps,
        size=(spec.size, spec.size),
        resize="stretch",
        start_s=start_s,
        duration_s=duration_s,
        chunk=256,
    ):
        feats.append(state.push(piece.frames))
        times.append(piece.times_s)
    return Motion(np.concatenate(feats), np.concatenate(times), spec.fps)
