"""Encode frames (and optionally audio) into a video file: used by Foley world, the demo sample and tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from v2a.io.atomic import atomic_output
from v2a.io.audio import encode_waveform, layout_for, resample

# codec -> pixel format it is encoded with
_PIX_FMT = {
    "libx264": "yuv420p",
    "h264": "yuv420p",
    "libx265": "yuv420p",
    "mpeg4": "yuv420p",
    "libvpx": "yuv420p",
    "libvpx-vp9": "yuv420p",
    "mjpeg": "yuvj420p",
    "gif": "rgb8",
    "prores": "yuv422p10le",
    "libsvtav1": "yuv420p",
}
_CONSTANT_RATE_CONTAINERS = {".avi", ".gif"}
_AUDIO_CODEC_DEFAULT = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus", ".avi": "mp3"}


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    *,
    fps: float = 25.0,
    timestamps_s: Sequence[float] | None = None,
    codec: str = "libx264",
    audio: np.ndarray | None = None,
    sample_rate: int = 24_000,
    audio_codec: str | None = None,
    rotation: int = 0,
    crf: int | None = 23,
    bframes: int | None = None,
) -> Path:
    """Encode RGB frames to ``path`` atomically.

    Args:
        path: output file; the container follows the extension (.mp4, .mkv, .webm, .mov, .avi, .gif).
        frames: (T, H, W, 3) uint8 RGB array or a sequence of (H, W, 3) arrays.
        fps: nominal frame rate (used for timestamps when ``timestamps_s`` is None).
        timestamps_s: explicit presentation time of each frame in seconds, for variable frame rate.
        codec: FFmpeg video encoder name (libx264, mpeg4, libvpx-vp9, gif, ...).
        audio: optional (S,) or (C, S) float waveform in [-1, 1].
        sample_rate: rate of ``audio`` in Hz.
        audio_codec: FFmpeg audio encoder; default by container (aac for mp4).
        rotation: display rotation in degrees, counter-clockwise as FFmpeg reports it
            (``VideoFrame.rotation``), stored as the stream's display matrix.
        crf: constant rate factor for x264/x265/vpx (None: encoder default).
        bframes: maximum consecutive B-frames for x264/x265 (None: encoder default).

    Returns:
        The written path.
    """
    out = Path(path)
    frame_list = list(frames)
    if not frame_list:
        raise ValueError("write_video needs at least one frame")
    height, width = frame_list[0].shape[:2]
    if timestamps_s is not None and len(timestamps_s) != len(frame_list):
        raise ValueError(f"{len(timestamps_s)=} differs from {len(frame_list)=}")
    if timestamps_s is not None and out.suffix.lower() in _CONSTANT_RATE_CONTAINERS:
        raise ValueError(
            f"{out.suffix} stores a constant frame rate; use .mp4/.mkv/.webm/.mov for timestamps_s"
        )

    # A fine time base keeps VFR timestamps exact to ~0.01 ms (MPEG-4 part 2 allows at most 1/65535).
    if timestamps_s is not None:
        time_base = Fraction(1, 30_000) if codec == "mpeg4" else Fraction(1, 90_000)
    else:
        time_base = 1 / Fraction(fps).limit_denominator(100_000)
    with atomic_output(out) as tmp, av.open(str(tmp), mode="w", format=_container_format(out)) as container:
        rate = Fraction(fps).limit_denominator(100_000)
        vstream = container.add_stream(codec, rate=rate)
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = _PIX_FMT.get(codec, "yuv420p")
        vstream.time_base = time_base
        vstream.codec_context.time_base = time_base
        options: dict[str, str] = {}
        if crf is not None and codec in {"libx264", "libx265", "libvpx", "libvpx-vp9"}:
            options["crf"] = str(crf)
            if codec.startswith("libvpx"):
                options["b"] = "0"
        if bframes is not None and codec in {"libx264", "libx265"}:
            options["bf"] = str(bframes)
        if codec in {"libx264", "libx265"}:
            options.setdefault("preset", "veryfast")
        vstream.options = options
        astream = None
        if audio is not None:
            astream = _add_audio_stream(
                container,
                audio,
                sample_rate,
                audio_codec or _AUDIO_CODEC_DEFAULT.get(out.suffix.lower(), "aac"),
            )
        if rotation:
            _set_rotation(vstream, rotation)

        for i, image in enumerate(frame_list):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="rgb24")
            if timestamps_s is not None:
                frame.pts = round(timestamps_s[i] / time_base)
            else:
                frame.pts = i
            frame.time_base = time_base
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio, sample_rate)
    return out


def _container_format(path: Path) -> str | None:
    return {
        ".mkv": "matroska",
        ".webm": "webm",
        ".mov": "mov",
        ".avi": "avi",
        ".gif": "gif",
        ".mp4": "mp4",
    }.get(path.suffix.lower())


def _add_audio_stream(
    container: av.container.OutputContainer, audio: np.ndarray, sample_rate: int, codec: str
):
    channels = 1 if audio.ndim == 1 else audio.shape[0]
    rate = 48_000 if codec in {"libopus", "opus"} else sample_rate
    astream = container.add_stream(codec, rate=rate)
    astream.layout = layout_for(channels)
    astream.time_base = Fraction(1, rate)
    return astream


def _encode_audio(container, astream, audio: np.ndarray, sample_rate: int) -> None:
    """Encode the whole waveform from time 0 (with proper timestamps, so encoder priming is trimmed)."""
    wav = np.atleast_2d(np.asarray(audio, dtype=np.float32))  # (C, S)
    if astream.rate != sample_rate:
        wav = resample(wav, sample_rate, astream.rate)
    for packet in encode_waveform(astream, wav, astream.rate):
        container.mux(packet)


def _set_rotation(vstream, rotation: int) -> None:
    """Store display rotation as the container's display matrix (what phones write and players honour)."""
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    vstream.set_display_rotation(rotation)
