"""Probe a video file: what it holds (size, rate, rotation, audio) and whether it is usable at all.

``probe`` is the gate every video passes before decoding: it opens the file, decodes the first frame
(which proves the codec is supported and gives the time origin and rotation), reads the packets of the
last group of pictures to learn the true end time, and checks the result against ``VideoLimits``.
Every problem is raised as one ``InputError`` whose message names the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from v2a.errors import InputError

# Demuxers that open files which are not moving pictures: text shown as ANSI art, single images.
_TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})
_HEAD_PACKETS = 64  # packets read at the start to judge constant vs variable frame rate
_MAX_SEARCH_PACKETS = 1024  # packets tried before giving up on finding a decodable first frame


@dataclass(frozen=True)
class VideoLimits:
    """Bounds beyond which a video is refused as absurd (protects memory and time).

    Attributes:
        max_width: widest accepted display width in pixels.
        max_height: tallest accepted display height in pixels.
        max_pixels: largest accepted width * height (8K DCI is ~35.4 M).
        max_duration_s: longest accepted duration in seconds.
    """

    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 8192 * 4352
    max_duration_s: float = 4 * 3600.0


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video (times in seconds, sizes in pixels).

    Attributes:
        path: the file.
        container: FFmpeg demuxer name (e.g. ``"matroska,webm"``).
        codec: FFmpeg decoder name of the video stream (e.g. ``"h264"``).
        duration_s: last frame's presentation time + its duration, minus ``start_time_s``.
        fps: average frame rate (frames / duration for variable-rate video).
        width: displayed width (after sample aspect ratio and rotation).
        height: displayed height (after rotation).
        coded_width: width of the decoded pictures before rotation.
        coded_height: height of the decoded pictures before rotation.
        rotation: display rotation in degrees, counter-clockwise, as ``VideoFrame.rotation`` reads it
            (one of 0, 90, 180, -90); frames are turned by this much to come out upright.
        start_time_s: presentation time of the first frame on the container's clock; the video
            timeline of ``v2a.io.video`` starts here (time 0).
        num_frames: number of frames (from the container header, else estimated as duration * fps).
        is_vfr: whether the frame intervals vary (variable frame rate).
        has_audio: whether the file has an audio stream.
        audio_rate: audio sample rate in Hz, or None.
        audio_channels: audio channel count, or None.
        audio_codec: FFmpeg decoder name of the audio stream, or None.
        audio_start_s: where the audio stream starts on the video timeline (negative: before the first
            video frame), or None when unknown or silent.
        sample_aspect_ratio: pixel aspect ratio applied to the width (1.0 for square pixels).
        stream_index: index of the video stream in the container.
        num_audio_tracks: number of audio streams (e.g. several generated variants plus the original).
        tags: container metadata with lower-case keys (provenance: generator, model id, watermark key id).
    """

    path: str
    container: str
    codec: str
    duration_s: float
    fps: float
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    start_time_s: float
    num_frames: int
    is_vfr: bool
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    audio_codec: str | None
    audio_start_s: float | None
    sample_aspect_ratio: float
    stream_index: int
    num_audio_tracks: int = 0
    tags: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict of all fields (what ``v2a probe --json`` prints)."""
        return dataclasses.asdict(self)


def probe(path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Inspect a video file and check that it can be decoded.

    Args:
        path: the video file.
        limits: size and duration bounds; a video beyond them is refused.

    Returns:
        The file's ``VideoInfo``.

    Raises:
        InputError: the path is missing, a directory or empty; the file is not a media file, has no
            video stream, uses a codec that cannot be decoded, is truncated, or exceeds ``limits``.
    """
    file = check_video_path(path)
    with open_container(file) as container:
        stream = select_video_stream(container, file)
        first, head_pts = _scan_head(container, stream, file)
        tb = stream.time_base
        origin = first.pts if first.pts is not None else (head_pts[0] if head_pts else 0)
        start_time_s = float(origin * tb)
        intervals = np.diff(_settled_pts(head_pts)) if head_pts else np.zeros(0)
        step = int(np.median(intervals)) if intervals.size else 0
        end = _scan_tail(container, stream, step)
        duration_s = _duration(container, stream, file, origin, end, start_time_s)
        fps = _average_fps(stream, duration_s, step)
        is_vfr = _varies(intervals, float(1 / (fps * tb)))
        if is_vfr and stream.frames <= 0 and max(head_pts) > min(head_pts):
            # No frame count and a nominal rate (Matroska's default duration) that the
            # timestamps contradict: average over the first packets instead.
            fps = (len(head_pts) - 1) / float((max(head_pts) - min(head_pts)) * tb)
        num_frames = _num_frames(stream.frames, duration_s, fps)
        sar = _sample_aspect_ratio(stream)
        rotation = _quarter_turns(first) * 90
        width, height = max(1, round(first.width * sar)), first.height
        if rotation in (90, -90):
            width, height = height, width
        _check_limits(file, width, height, duration_s, limits)
        audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
        return VideoInfo(
            path=str(file),
            container=container.format.name,
            codec=stream.codec_context.name,
            duration_s=duration_s,
            fps=fps,
            width=width,
            height=height,
            coded_width=first.width,
            coded_height=first.height,
            rotation=rotation,
            start_time_s=start_time_s,
            num_frames=int(num_frames),
            is_vfr=bool(is_vfr),
            has_audio=audio is not None,
            audio_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_start_s=_audio_start(audio, start_time_s),
            sample_aspect_ratio=sar,
            stream_index=stream.index,
            num_audio_tracks=len(container.streams.audio),
            tags=_container_tags(container),
        )


def check_video_path(path: str | os.PathLike, *, kind: str = "video") -> Path:
    """Refuse a missing path, a directory or an empty file before FFmpeg sees it (``kind``: what the file
    should be, for the messages)."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{file}: no such file")
    if file.is_dir():
        raise InputError(f"{file}: is a directory, not {_article(kind)} {kind} file")
    if not os.access(file, os.R_OK):
        raise InputError(f"{file}: permission denied")
    if file.stat().st_size == 0:
        raise InputError(f"{file}: file is empty (0 bytes)")
    return file


@contextlib.contextmanager
def open_container(file: Path, *, kind: str = "video") -> Iterator[av.container.InputContainer]:
    """Open ``file`` with FFmpeg, turning its errors into one-line ``InputError``s (``kind``: as above)."""
    try:
        container = av.open(str(file), metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise InputError(f"{file}: {_open_problem(file, kind)} ({ffmpeg_reason(exc)})") from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise InputError(f"{file}: cannot be opened as a media file ({exc})") from None
    try:
        yield container
    finally:
        container.close()


def select_video_stream(container: av.container.InputContainer, file: Path) -> av.video.stream.VideoStream:
    """The first real video stream (cover art is not video), or an ``InputError`` saying why none."""
    fmt = container.format.name
    if fmt in _TEXT_DEMUXERS:
        raise InputError(f"{file}: not a video file (FFmpeg reads it as text, format {fmt!r})")
    if fmt in _IMAGE_DEMUXERS or fmt.endswith("_pipe"):
        raise InputError(f"{file}: is a still image (format {fmt!r}), not a video")
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise InputError(f"{file}: has no video stream (streams: {', '.join(kinds)})")
    stream = videos[0]
    if stream.codec_context is None:
        raise InputError(f"{file}: unsupported video codec (no decoder for it in this FFmpeg build)")
    return stream


def is_audio_only(path: str | os.PathLike) -> bool:
    """Whether a readable media file has audio and no real video stream (cover art is not video)."""
    try:
        with av.open(str(path)) as container:
            videos = [
                s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
            ]
            return bool(container.streams.audio) and not videos
    except (av.error.FFmpegError, OSError, UnicodeError, ValueError):
        return False


def _open_problem(file: Path, kind: str) -> str:
    with open(file, "rb") as fh:
        head = fh.read(12)
    if head[4:8] == b"ftyp":
        return "MP4/MOV file without a readable index (moov): truncated or still being written"
    return f"not {_article(kind)} {kind} file or damaged beyond reading"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def ffmpeg_reason(exc: BaseException) -> str:
    """The readable part of an FFmpeg error (without the errno and the C function name)."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else str(exc)


def _scan_head(container, stream, file: Path) -> tuple[av.VideoFrame, list[int]]:
    """Decode the first frame and collect the pts of the first packets."""
    pts: list[int] = []
    first = None
    last_error: BaseException | None = None
    packets = 0
    try:
        for packet in container.demux(stream):
            packets += 1
            if packet.pts is not None:
                pts.append(packet.pts)
            if first is None:
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError as exc:  # a damaged packet: try the next one, as players do
                    last_error = exc
                    frames = []
                first = frames[0] if frames else None
            if first is not None and len(pts) >= _HEAD_PACKETS:
                break
            if first is None and packets >= _MAX_SEARCH_PACKETS:
                break
    except av.error.FFmpegError as exc:
        last_error = exc
    if first is None:
        reason = f" ({ffmpeg_reason(last_error)})" if last_error is not None else ""
        codec = stream.codec_context.name
        raise InputError(f"{file}: no decodable frame in the {codec} video stream{reason}")
    return first, pts


def _scan_tail(container, stream, step: int) -> int | None:
    """End (pts + duration, stream ticks) of the last frame, found by reading the packets near the end.

    The last frame is the one with the largest pts; with B-frames it is not the last packet, and
    pts + duration of other packets can reach further (MP4 stores durations in decode order).
    """
    target = None
    if stream.duration is not None and stream.start_time is not None:
        target = stream.start_time + stream.duration
    elif container.duration is not None:  # seeking past the end lands on the last keyframe
        end_us = (container.start_time or 0) + container.duration
        target = int(Fraction(end_us, 1_000_000) / stream.time_base)
    if target is None or target <= 0:
        return None
    last: tuple[int, int] | None = None  # (pts, duration) of the latest frame so far
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
        for packet in container.demux(stream):
            if packet.pts is not None and (last is None or packet.pts >= last[0]):
                last = (packet.pts, packet.duration if packet.duration and packet.duration > 0 else step)
    except av.error.FFmpegError:
        pass
    return None if last is None else last[0] + last[1]


def _duration(container, stream, file: Path, origin: int, end: int | None, start_time_s: float) -> float:
    """Duration from the real end of the packets; refuse a file that ends well before its header says."""
    tb = stream.time_base
    declared_end = _declared_end_s(container, stream)
    if end is None or end <= origin:
        if declared_end is None or declared_end <= start_time_s:
            raise InputError(f"{file}: video duration is unknown or zero")
        return declared_end - start_time_s
    duration = float((end - origin) * tb)
    if declared_end is not None:
        declared = declared_end - start_time_s
        if duration < declared - max(0.5, 0.05 * declared):
            raise InputError(
                f"{file}: truncated: frames end at {duration:.2f} s but the header says {declared:.2f} s"
            )
    return duration


def _declared_end_s(container, stream) -> float | None:
    """The end time of the video stream that the container header declares, if it declares one."""
    if stream.duration and stream.start_time is not None:
        return float((stream.start_time + stream.duration) * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")  # Matroska: absolute end time
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    if len(container.streams) == 1 and container.duration:
        return container.duration / 1_000_000
    return None


def _average_fps(stream, duration_s: float, step: int) -> float:
    """FFmpeg's average rate (frames / duration for variable-rate MP4), else what else is known."""
    if stream.average_rate and 0 < float(stream.average_rate) < 10_000:
        return float(stream.average_rate)
    if stream.frames > 0 and duration_s > 0:
        return stream.frames / duration_s
    for rate in (stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) < 10_000:
            return float(rate)
    if step > 0:
        return float(1 / (step * stream.time_base))
    return 25.0


def _num_frames(header_frames: int, duration_s: float, fps: float) -> int:
    """The header's frame count unless it contradicts duration * fps (a damaged or lying header)."""
    estimate = max(1, round(duration_s * fps))
    if header_frames > 0 and abs(header_frames - estimate) <= 1 + 0.1 * estimate:
        return header_frames
    return estimate


_REORDER_DEPTH = 16  # B-frame reordering never delays a frame by more packets than this


def _settled_pts(head_pts: list[int]) -> np.ndarray:
    """Sorted pts of the first packets, without the top ones whose neighbours may still be unread.

    Packets come in decode order, so with B-frames the frames just before the last pts read may
    come in later packets; cutting the highest pts leaves a gap-free run of presentation times.
    """
    pts = np.unique(np.asarray(head_pts, dtype=np.int64))
    return pts[:-_REORDER_DEPTH] if pts.size > 2 * _REORDER_DEPTH else pts


def _varies(intervals: np.ndarray, mean_interval: float) -> bool:
    """Whether frame intervals (stream ticks) differ by more than timestamp rounding (1 tick or 2 %).

    The first packets' intervals are compared with each other and with the average interval of the
    whole stream, so a rate that changes after the first packets still counts as variable.
    """
    if intervals.size == 0:
        return False
    median = float(np.median(intervals))
    tolerance = max(1.5, 0.02 * median)
    return bool(np.any(np.abs(intervals - median) > tolerance) or abs(mean_interval - median) > tolerance)


def _sample_aspect_ratio(stream) -> float:
    sar = stream.sample_aspect_ratio
    if not sar or sar.numerator <= 0:
        return 1.0
    value = float(sar)
    return value if 0.25 <= value <= 4.0 else 1.0  # anything wilder is a broken header, not anamorphic video


def _quarter_turns(frame: av.VideoFrame) -> int:
    """The frame's display rotation in quarter turns: -1, 0, 1 or 2 (FFmpeg gives [-180, 180] degrees)."""
    try:
        rotation = frame.rotation
    except (ValueError, OverflowError):  # a degenerate display matrix has no angle (NaN)
        return 0
    if not math.isfinite(rotation):
        return 0
    turns = round(rotation / 90) % 4
    return -1 if turns == 3 else turns


def _check_limits(file: Path, width: int, height: int, duration_s: float, limits: VideoLimits) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{file}: video has no pixels ({width}x{height})")
    if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        raise InputError(
            f"{file}: video size {width}x{height} exceeds the limit "
            f"({limits.max_width}x{limits.max_height}, {limits.max_pixels} pixels)"
        )
    if not duration_s > 0:
        raise InputError(f"{file}: video duration is zero")
    if duration_s > limits.max_duration_s:
        raise InputError(
            f"{file}: video lasts {duration_s:.1f} s, more than the limit of {limits.max_duration_s:.1f} s"
        )


def _audio_start(audio, video_start_s: float) -> float | None:
    if audio is None or audio.start_time is None:
        return None
    return float(audio.start_time * audio.time_base) - video_start_s


_TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time"}


def _container_tags(container: av.container.InputContainer) -> dict[str, str]:
    """Descriptive container tags, keys lower-cased (Matroska upper-cases them), muxer bookkeeping left out."""
    tags = {str(k).lower(): str(v) for k, v in container.metadata.items()}
    return {k: v for k, v in sorted(tags.items()) if k not in _TECHNICAL_TAGS}
