"""Test helpers that make real media: videos whose frames carry their own index, and test tones.

A counter frame shows the frame index as a 4 x 4 grid of black (0) / white (1) cells, most significant
bit first, in a square of 80 % of the short side at the centre of a grey picture, with a red marker
in the top-left corner. Big cells survive lossy codecs, scaling and centre crops, so ``read_counter``
recovers the index from any decoded, resized frame and tests can check which source frame a reader
returned. The red marker shows orientation and channel order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from v2a.io.writer import write_video

GRID = 4  # cells per side of the counter grid
MAX_COUNT = 2 ** (GRID * GRID) - 1
_GREY = 128
_RED = (230, 20, 20)


def counter_frame(index: int, height: int, width: int) -> np.ndarray:
    """The upright (height, width, 3) uint8 RGB picture showing ``index``."""
    if not 0 <= index <= MAX_COUNT:
        raise ValueError(f"index must be in 0..{MAX_COUNT}, got {index}")
    image = np.full((height, width, 3), _GREY, dtype=np.uint8)
    marker = max(1, min(height, width) // 10)
    image[:marker, :marker] = _RED
    top, left, cell = _grid_box(height, width)
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        on = (index >> (GRID * GRID - 1 - bit)) & 1
        y0, x0 = round(top + row * cell), round(left + col * cell)
        y1, x1 = round(top + (row + 1) * cell), round(left + (col + 1) * cell)
        image[y0:y1, x0:x1] = 255 if on else 0
    return image


def read_counter(frame: np.ndarray, box: tuple[int, int, int, int] | None = None) -> int:
    """Decode the index from a counter frame.

    Args:
        frame: (H, W, 3) uint8 RGB picture.
        box: (top, left, bottom, right) region holding the whole counter picture as it was encoded
            (e.g. the content area of a letterboxed frame, or the part a centre crop kept); None: the
            whole frame. A centre crop of the picture keeps the grid, so None also works for crops.

    Returns:
        The index shown.
    """
    if box is not None:
        frame = frame[box[0] : box[2], box[1] : box[3]]
    height, width = frame.shape[:2]
    top, left, cell = _grid_box(height, width)
    luma = frame.astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        cy, cx = top + (row + 0.5) * cell, left + (col + 0.5) * cell
        half = max(0.5, cell / 4)  # the middle half of the cell, away from blurred edges
        patch = luma[round(cy - half) : round(cy + half), round(cx - half) : round(cx + half)]
        value = (value << 1) | int(patch.mean() > 127.5)
    return value


def marker_corner(frame: np.ndarray) -> str:
    """Which corner shows the red marker: 'top-left', 'top-right', 'bottom-left' or 'bottom-right'."""
    height, width = frame.shape[:2]
    size = max(1, min(height, width) // 20)
    corners = {
        "top-left": frame[:size, :size],
        "top-right": frame[:size, width - size :],
        "bottom-left": frame[height - size :, :size],
        "bottom-right": frame[height - size :, width - size :],
    }
    redness = {k: float(v[..., 0].mean()) - float(v[..., 1:].mean()) for k, v in corners.items()}
    return max(redness, key=redness.get)


def _grid_box(height: int, width: int) -> tuple[float, float, float]:
    """(top, left, cell size) of the counter grid: a centred square of 80 % of the short side."""
    side = 0.8 * min(height, width)
    return (height - side) / 2, (width - side) / 2, side / GRID


def tone(duration_s: float, sample_rate: int = 24_000, freq: float = 440.0) -> np.ndarray:
    """(S,) float32 sine at -12 dBFS."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    return (0.25 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_counter_video(
    path: str | os.PathLike,
    *,
    fps: float = 25.0,
    num_frames: int | None = None,
    timestamps_s: Sequence[float] | None = None,
    codec: str = "libx264",
    width: int = 160,
    height: int = 96,
    rotation: int = 0,
    audio: bool | np.ndarray = False,
    sample_rate: int = 24_000,
    start_s: float = 0.0,
    bframes: int | None = None,
) -> Path:
    """Encode a video whose frame i shows the counter ``i`` (see ``counter_frame``).

    Args:
        path: output file; the container follows the extension.
        fps: frame rate (the nominal rate when ``timestamps_s`` is given).
        num_frames: number of frames for a constant rate (default: 2 s worth).
        timestamps_s: presentation times of the frames for variable frame rate (not for .avi).
        codec: FFmpeg video encoder.
        width: displayed width (upright, after rotation).
        height: displayed height.
        rotation: display rotation, counter-clockwise degrees as ``VideoFrame.rotation`` reads it; the
            pictures are stored turned the other way, so a correct reader shows ``counter_frame``.
        audio: True for a 440 Hz tone as long as the video, or a (S,) / (C, S) waveform.
        sample_rate: rate of the audio.
        start_s: added to every timestamp, for a container start time that is not 0.
        bframes: maximum consecutive B-frames (x264/x265).

    Returns:
        The written path.
    """
    if timestamps_s is None:
        count = num_frames if num_frames is not None else round(2 * fps)
        times = [i / fps for i in range(count)] if start_s else None
    else:
        count = len(timestamps_s)
        times = list(timestamps_s)
    if start_s and times is not None:
        times = [start_s + t for t in times]
    # FFmpeg shows a picture turned counter-clockwise by `rotation` (its autorotate inserts
    # transpose=clock for rotation -90), so store it turned clockwise by the same amount.
    turns = -(rotation // 90)
    coded = [np.ascontiguousarray(np.rot90(counter_frame(i, height, width), turns)) for i in range(count)]
    duration = times[-1] + 1 / fps if times else count / fps
    waveform = None
    if audio is True:
        waveform = tone(duration, sample_rate)
    elif isinstance(audio, np.ndarray):
        waveform = audio
    return write_video(
        path,
        coded,
        fps=fps,
        timestamps_s=times,
        codec=codec,
        audio=waveform,
        sample_rate=sample_rate,
        rotation=rotation,
        bframes=bframes,
    )
