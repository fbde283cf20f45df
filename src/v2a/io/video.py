"""Read video frames by presentation timestamp, at any frame rates and size, in one streaming pass.

Timeline (every Foley module that reads video uses it):

- Time 0 is the presentation time of the first decodable video frame. A container start time that
  is not 0 (``VideoInfo.start_time_s``, e.g. 1.5 s) is subtracted. Audio shares this origin:
  ``VideoInfo.audio_start_s`` is where the audio stream starts on the video timeline; audio before
  time 0 (negative start) belongs to no frame and is cut, and audio that starts later than the video
  is preceded by silence.
- Source frame i is on screen from its time t_i until the next frame's time; the last frame until
  t_last + its duration, which is where the video ends (``duration = last pts + last frame duration``).
- Output frame k at rate ``fps`` is at t_k = start_s + k / fps for k = 0 .. ceil(span * fps) - 1, where
  span = min(duration - start_s, duration_s). It shows the frame on screen at t_k: the last source frame
  with t_i <= t_k (sample and hold; a tolerance of 1 µs absorbs timestamp rounding). Nothing comes from
  the future: an event at time t appears in no output frame before t. The rule is the same for
  constant and variable frame rate sources.
- Frames come out upright (the display rotation is applied), as RGB uint8; ``size`` and ``resize`` act
  on the upright picture with square pixels (the sample aspect ratio is applied).

Decoding is one pass over the file with FFmpeg's frame/slice threading, however many rates are asked
for; only the source frames that some output uses are scaled (by swscale) and copied, so memory stays
bounded by one chunk per rate even for a two-hour video.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from v2a.errors import InputError
from v2a.io.video_probe import (
    DEFAULT_LIMITS,
    VideoInfo,
    VideoLimits,
    ffmpeg_reason,
    open_container,
    probe,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FrameChunk",
    "FrameSeq",
    "VideoInfo",
    "VideoLimits",
    "iter_frames",
    "probe",
    "read_video",
]

Resize = Literal["crop", "letterbox", "stretch"]

_EPS = 1e-6  # seconds: timestamps closer than this count as equal (container rounding)
_MAX_FPS = 1000.0
_MAX_SIZE = 16384
_MAX_CHUNK_BYTES = 256 * 2**20  # a chunk never holds more than this, whatever ``chunk`` says
_MAX_BAD_PACKETS = 256  # consecutive undecodable packets before the file is declared damaged


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive output frames of one requested rate.

    Attributes:
        rate_index: position of the rate in the ``fps`` argument.
        times_s: (N,) float64 output times on the video timeline.
        frames: (N, H, W, 3) uint8 RGB frames.
    """

    rate_index: int
    times_s: np.ndarray
    frames: np.ndarray


@dataclass(frozen=True)
class FrameSeq:
    """All output frames of one rate.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB frames.
        times_s: (T,) float64 output times, ``start_s + arange(T) / fps``.
        fps: the output rate.
    """

    frames: np.ndarray
    times_s: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.times_s)


def read_video(
    path: str | os.PathLike,
    fps: float | Sequence[float],
    *,
    size: int | tuple[int, int] | None = None,
    resize: Resize = "crop",
    start_s: float = 0.0,
    duration_s: float | None = None,
    chunk: int = 64,
    limits: VideoLimits = DEFAULT_LIMITS,
) -> list[FrameSeq]:
    """Read a whole video (or a window of it) into memory, at one or several frame rates.

    Args:
        path: the video file.
        fps: output rate, or several rates decoded in the same pass (e.g. ``(8, 25)``).
        size: output size: an int S gives S x S frames, a tuple gives (height, width), None keeps the
            displayed size.
        resize: how the picture fits ``size``: ``"crop"`` scales the short side to fit and crops the
            centre, ``"letterbox"`` scales the long side to fit and pads with black, ``"stretch"``
            scales both sides independently.
        start_s: first output time on the video timeline (seconds).
        duration_s: length of the window to read (None: to the end).
        chunk: frames per internal chunk (memory/latency trade-off only).
        limits: size and duration bounds.

    Returns:
        One ``FrameSeq`` per requested rate, in the order given.

    Raises:
        InputError: the file is unusable (see ``probe``) or an argument is out of range.
    """
    rates = _check_rates(fps)
    parts: list[list[FrameChunk]] = [[] for _ in rates]
    for piece in iter_frames(
        path,
        rates,
        size=size,
        resize=resize,
        start_s=start_s,
        duration_s=duration_s,
        chunk=chunk,
        limits=limits,
    ):
        parts[piece.rate_index].append(piece)
    return [
        FrameSeq(
            frames=np.concatenate([p.frames for p in pieces]),
            times_s=np.concatenate([p.times_s for p in pieces]),
            fps=rate,
        )
        for rate, pieces in zip(rates, parts, strict=True)
    ]


def iter_frames(
    path: str | os.PathLike,
    fps: float | Sequence[float],
    *,
    size: int | tuple[int, int] | None = None,
    resize: Resize = "crop",
    start_s: float = 0.0,
    duration_s: float | None = None,
    chunk: int = 64,
    limits: VideoLimits = DEFAULT_LIMITS,
) -> Iterator[FrameChunk]:
    """Stream a video's frames at one or several rates, decoding the file once.

    Chunks of different rates are interleaved in the order they fill; within one rate they come in
    time order, and concatenating them gives exactly ``read_video``'s result. Arguments are those of
    ``read_video``.

    Yields:
        ``FrameChunk`` of at most ``chunk`` frames (fewer for very large frames, so one chunk stays
        under 256 MiB).

    Raises:
        InputError: the file is unusable (see ``probe``), damaged beyond decoding, longer than
            ``limits.max_duration_s``, or an argument is out of range.
    """
    rates = _check_rates(fps)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    info = probe(path, limits=limits)
    geometry = _Geometry.plan(info, size, resize)
    stop = _check_window(info, start_s, duration_s)
    frame_bytes = geometry.out_h * geometry.out_w * 3
    per_chunk = max(1, min(chunk, _MAX_CHUNK_BYTES // frame_bytes))
    sinks = [_RateSink(i, rate, start_s, per_chunk, geometry.shape) for i, rate in enumerate(rates)]
    yield from _stream(info, geometry, sinks, start_s, stop, limits)


def _stream(
    info: VideoInfo,
    geometry: _Geometry,
    sinks: list[_RateSink],
    start_s: float,
    stop: float,
    limits: VideoLimits,
) -> Iterator[FrameChunk]:
    """The decode loop: hold each frame until the next one arrives, then emit it where it is on screen."""
    file = Path(info.path)
    reformatter = VideoReformatter()
    held: _Held | None = None
    interval = 1.0 / info.fps
    for t, frame, tb in _timed_frames(file, info, start_s):
        if t > limits.max_duration_s:
            raise InputError(f"{file}: video runs past the limit of {limits.max_duration_s:.1f} s")
        if held is not None:
            t = max(t, held.t)  # a frame out of order never moves time backwards
            if t > held.t:
                interval = t - held.t
            for sink in sinks:
                yield from sink.fill(held, until=min(t, stop))
            if all(sink.next_time >= stop - _EPS for sink in sinks):
                held = None
                break
        held = _Held(frame, t, tb, geometry, reformatter, file)
    if held is not None:
        last_duration = held.duration_s
        if last_duration <= 0:  # no duration on the frame: the probed end, else the last interval
            last_duration = info.duration_s - held.t if info.duration_s > held.t + _EPS else interval
        for sink in sinks:
            yield from sink.fill(held, until=min(held.t + last_duration, stop))
    if all(sink.emitted == 0 for sink in sinks):
        raise InputError(f"{file}: start {start_s:.3f} s is at or past the end of the video")
    for sink in sinks:
        yield from sink.flush()


def _timed_frames(
    file: Path, info: VideoInfo, start_s: float
) -> Iterator[tuple[float, av.VideoFrame, float]]:
    """Decoded frames with their time on the video timeline, from the frame on screen at ``start_s``.

    Seeks to the keyframe before ``start_s`` when there is one; if the demuxer lands after
    ``start_s`` (or cannot seek), decodes again from the beginning.
    """
    seek = start_s > 0
    while True:
        with open_container(file) as container:
            stream = container.streams[info.stream_index]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base)
            if seek:
                seek = _seek(container, stream, info.start_time_s + start_s)
            t = -1.0 / info.fps
            decoded = False
            for frame in _decode(container, stream, file):
                t = frame.pts * tb - info.start_time_s if frame.pts is not None else t + 1.0 / info.fps
                if seek and not decoded and t > start_s + _EPS:
                    break  # landed after the start: the frame on screen at start_s was skipped
                decoded = True
                yield t, frame, tb
            else:
                if decoded or not seek:
                    return
        seek = False


def _seek(container, stream, time_s: float) -> bool:
    try:
        container.seek(int(time_s / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        return False
    return True


def _decode(container, stream, file: Path) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; a damaged packet is skipped, as players do, unless many in a row are."""
    failures = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError as exc:
                failures += 1
                if failures > _MAX_BAD_PACKETS:
                    raise InputError(f"{file}: damaged video stream ({ffmpeg_reason(exc)})") from None
                continue
            failures = 0
            yield from frames
    except av.error.FFmpegError as exc:
        raise InputError(f"{file}: read error in the video stream ({ffmpeg_reason(exc)})") from None


class _Held:
    """The source frame on screen now; converted to an output picture once, and only if used."""

    def __init__(self, frame, t: float, tb: float, geometry: _Geometry, reformatter, file: Path):
        self.frame = frame
        self.t = t
        self.duration_s = (frame.duration or 0) * tb
        self._geometry = geometry
        self._reformatter = reformatter
        self._file = file
        self._image: np.ndarray | None = None

    def image(self) -> np.ndarray:
        if self._image is None:
            try:
                self._image = self._geometry.convert(self.frame, self._reformatter)
            except (av.error.FFmpegError, ValueError) as exc:
                raise InputError(f"{self._file}: cannot convert a frame at {self.t:.3f} s ({exc})") from None
            self.frame = None
        return self._image


class _RateSink:
    """Output times of one rate, and the chunk being filled for it."""

    def __init__(self, index: int, rate: float, start_s: float, chunk: int, shape: tuple[int, int, int]):
        self.index = index
        self.rate = rate
        self.start_s = start_s
        self.chunk = chunk
        self.shape = shape
        self.emitted = 0  # output frames so far (k of the next output time)
        self._frames: np.ndarray | None = None
        self._times: list[float] = []

    @property
    def next_time(self) -> float:
        return self.start_s + self.emitted / self.rate

    def fill(self, held: _Held, until: float) -> Iterator[FrameChunk]:
        """Put ``held`` at every output time before ``until``; yield each chunk that fills up."""
        while (t := self.next_time) < until - _EPS:
            if self._frames is None:
                self._frames = np.empty((self.chunk, *self.shape), dtype=np.uint8)
            self._frames[len(self._times)] = held.image()
            self._times.append(t)
            self.emitted += 1
            if len(self._times) == self.chunk:
                yield from self.flush()

    def flush(self) -> Iterator[FrameChunk]:
        """Yield what the current chunk holds (nothing if empty)."""
        n = len(self._times)
        if n == 0 or self._frames is None:
            return
        frames = self._frames if n == self.chunk else self._frames[:n].copy()
        yield FrameChunk(self.index, np.asarray(self._times, dtype=np.float64), frames)
        self._frames, self._times = None, []


@dataclass(frozen=True)
class _Geometry:
    """How a decoded picture becomes an output frame: scale (with swscale), turn upright, crop or pad.

    ``scaled_w`` x ``scaled_h`` is the upright picture after scaling; ``out_w`` x ``out_h`` the output.
    """

    scaled_w: int
    scaled_h: int
    out_w: int
    out_h: int
    turns: int  # counter-clockwise quarter turns that make the picture upright (np.rot90's k)
    mode: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.out_h, self.out_w, 3)

    @classmethod
    def plan(cls, info: VideoInfo, size: int | tuple[int, int] | None, resize: str) -> _Geometry:
        if resize not in ("crop", "letterbox", "stretch"):
            raise InputError(f"resize must be 'crop', 'letterbox' or 'stretch', got {resize!r}")
        turns = (info.rotation // 90) % 4
        width, height = info.width, info.height
        if size is None:
            return cls(width, height, width, height, turns, "stretch")
        out_h, out_w = _check_size(size)
        if resize == "stretch":
            scaled_w, scaled_h = out_w, out_h
        elif resize == "crop":
            scale = max(out_w / width, out_h / height)
            scaled_w, scaled_h = max(out_w, round(width * scale)), max(out_h, round(height * scale))
        else:
            scale = min(out_w / width, out_h / height)
            scaled_w = min(out_w, max(1, round(width * scale)))
            scaled_h = min(out_h, max(1, round(height * scale)))
        return cls(scaled_w, scaled_h, out_w, out_h, turns, resize)

    def convert(self, frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
        """(out_h, out_w, 3) uint8 RGB picture from a decoded frame (possibly a view)."""
        # Scale in the coded orientation (swscale does scaling and the RGB conversion in one step),
        # then turn the small picture upright in numpy.
        coded_w, coded_h = (
            (self.scaled_h, self.scaled_w) if self.turns % 2 else (self.scaled_w, self.scaled_h)
        )
        rgb = reformatter.reformat(
            frame, width=coded_w, height=coded_h, format="rgb24", interpolation="AREA"
        ).to_ndarray()  # (coded_h, coded_w, 3)
        if self.turns:
            rgb = np.rot90(rgb, self.turns)  # (scaled_h, scaled_w, 3)
        y0, x0 = abs(self.scaled_h - self.out_h) // 2, abs(self.scaled_w - self.out_w) // 2
        if self.mode == "crop":
            return rgb[y0 : y0 + self.out_h, x0 : x0 + self.out_w]
        if self.mode == "letterbox":
            out = np.zeros(self.shape, dtype=np.uint8)
            out[y0 : y0 + self.scaled_h, x0 : x0 + self.scaled_w] = rgb
            return out
        return rgb


def _check_rates(fps: float | Sequence[float]) -> list[float]:
    rates = [fps] if isinstance(fps, numbers.Real) else list(fps)
    if not rates:
        raise InputError("fps: give at least one frame rate")
    for rate in rates:
        if not isinstance(rate, numbers.Real) or not math.isfinite(rate) or not 0 < rate <= _MAX_FPS:
            raise InputError(f"fps must be a number in (0, {_MAX_FPS:g}], got {rate!r}")
    return [float(rate) for rate in rates]


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and 0 < v <= _MAX_SIZE for v in pair):
        raise InputError(f"size must be an int or (height, width) of ints in 1..{_MAX_SIZE}, got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_window(info: VideoInfo, start_s: float, duration_s: float | None) -> float:
    """Absolute end of the requested window on the video timeline (inf: to the end)."""
    if not math.isfinite(start_s) or start_s < 0:
        raise InputError(f"start must be a time >= 0 s, got {start_s!r}")
    if start_s >= info.duration_s:
        raise InputError(
            f"{info.path}: start {start_s:.3f} s is at or past the end of the video ({info.duration_s:.3f} s)"
        )
    if duration_s is None:
        return math.inf
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise InputError(f"duration must be a time > 0 s, got {duration_s!r}")
    return start_s + duration_s
