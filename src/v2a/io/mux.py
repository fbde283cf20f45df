"""Put audio tracks into a video: the video packets are copied bit-exactly, the audio is encoded to fit.

The video stream is remuxed (no decode, no re-encode): payloads, timestamps, time base, codec parameters and
display-matrix side data go through unchanged. Each new audio track is padded with silence or trimmed so it
spans exactly the video, from its first frame time to the end of its last frame, and starts at that first
frame time. The original audio can be kept as an extra track (packets copied, not re-encoded).

Known limit: in MP4/MOV, when the video starts after time zero, FFmpeg's muxer cannot trim the encoder
priming of AAC/Opus with the edit list, so up to one audio frame of near-silence is presented just before
the first video frame; the content itself stays in sync (measured < 1 ms off).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from v2a.errors import InputError
from v2a.io.atomic import atomic_output, check_output_path
from v2a.io.audio import encode_waveform, layout_for, load_audio, resample

AudioCodec = Literal["aac", "flac", "opus", "pcm"]
AudioTrack = str | os.PathLike | tuple[np.ndarray, int]

# Output extension -> FFmpeg muxer.
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
# Our codec name -> FFmpeg encoder.
_ENCODERS = {"aac": "aac", "flac": "flac", "opus": "libopus", "pcm": "pcm_s16le"}
# Combinations FFmpeg can write but common players cannot play: refused with a hint.
_REFUSED = {("mp4", "pcm"): ".mkv or .mov", ("mov", "flac"): ".mkv or .mp4", ("mov", "opus"): ".mkv or .mp4"}
_LOSSY_BITRATE_PER_CHANNEL = {"aac": 96_000, "opus": 64_000}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# Container tags that describe the old file rather than its content: not carried over.
_STALE_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


@dataclass(frozen=True)
class VideoSpan:
    """Where the video stream sits on the timeline, in seconds.

    Attributes:
        start: presentation time of the first frame.
        end: presentation time at which the last frame stops being shown.
    """

    start: Fraction
    end: Fraction

    @property
    def duration(self) -> Fraction:
        """Seconds from the first frame to the end of the last."""
        return self.end - self.start


def mux(
    video: str | os.PathLike,
    audio: AudioTrack | Sequence[AudioTrack],
    out: str | os.PathLike,
    *,
    audio_codec: AudioCodec = "aac",
    bitrate: int | None = None,
    keep_original_audio: bool = False,
    sample_rate: int | None = None,
    metadata: Mapping[str, str] | None = None,
    audio_metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out``: the video stream of ``video`` copied bit-exactly plus new audio track(s).

    Args:
        video: input video file (any container PyAV reads); its first video stream is copied.
        audio: one track or a list of tracks; a track is an audio/video file path or ``(waveform, rate)``
            with a (S,) or (C, S) float waveform.
        out: output file; the container follows the extension (.mp4, .m4v, .mov, .mkv, .webm).
        audio_codec: "aac", "flac", "opus" or "pcm" (16-bit). In .webm, which only takes Opus, the
            default "aac" becomes "opus".
        bitrate: bits per second for aac/opus (None: 96 kb/s per channel for aac, 64 kb/s for opus).
        keep_original_audio: also copy the input's audio streams, after the new ones, without re-encoding.
        sample_rate: encode at this rate (None: the track's rate). Rates the codec lacks become 48 kHz.
        metadata: container tags to set (e.g. generator, model id); the input's tags are kept otherwise.
            Matroska reads tag names back in upper case: look them up case-insensitively.
        audio_metadata: tags for each new audio track (e.g. title, language).
        overwrite: replace an existing ``out``.

    Returns:
        The written path.

    Raises:
        InputError: unusable input, no video stream, or a codec the container cannot hold.
        OutputError: ``out`` is an input, exists without ``overwrite``, or its folder is missing.
    """
    video_path = _check_file(video, "video")
    tracks = _as_track_list(audio)
    audio_paths = [Path(t) for t in tracks if isinstance(t, str | os.PathLike)]
    out_path = check_output_path(out, inputs=[video_path, *audio_paths], overwrite=overwrite)
    fmt = _CONTAINERS.get(out_path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot mux into {out_path.name}: use one of {', '.join(_CONTAINERS)} as extension")
    codec = _choose_codec(audio_codec, fmt, out_path)
    if bitrate is not None and (codec not in _LOSSY_BITRATE_PER_CHANNEL or bitrate <= 0):
        raise InputError(f"bitrate must be a positive number and applies to aac/opus only, not {codec}")
    if sample_rate is not None and sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    waves = [_load_track(track) for track in tracks]

    span = video_span(video_path)
    track_tags = {str(k): str(v) for k, v in (audio_metadata or {}).items()}
    if fmt in ("mp4", "mov") and "title" in track_tags:
        track_tags.setdefault("handler_name", track_tags["title"])  # the track name most players show
    plan = _AudioPlan(codec, bitrate, sample_rate, track_tags)
    with _open_video(video_path) as src, atomic_output(out_path) as tmp:
        try:
            _write(
                src, tmp, fmt, span, waves, plan, keep_original_audio, _container_tags(src.metadata, metadata)
            )
        except av.FFmpegError as err:
            raise InputError(f"cannot mux {video_path} into {out_path}: {_reason(err)}") from None
    return out_path


@dataclass(frozen=True)
class _AudioPlan:
    """How the new audio tracks are encoded."""

    codec: str
    bitrate: int | None
    sample_rate: int | None
    tags: dict[str, str]


def _write(
    src: av.container.InputContainer,
    tmp: Path,
    fmt: str,
    span: VideoSpan,
    waves: list[tuple[np.ndarray, int]],
    plan: _AudioPlan,
    keep_original_audio: bool,
    tags: dict[str, str],
) -> None:
    """Remux the video (and original audio) packets and interleave the newly encoded audio by time."""
    vin = _main_video_stream(src, Path(src.name))
    originals = list(src.streams.audio) if keep_original_audio else []
    options = {"movflags": "use_metadata_tags"} if fmt in ("mp4", "mov") else {}
    with av.open(str(tmp), mode="w", format=fmt, container_options=options) as dst:
        supported = dst.supported_codecs
        if vin.codec_context.name not in supported:
            raise InputError(
                f"{vin.codec_context.name} video cannot be copied into a {tmp.suffix} file; use .mkv or .mp4"
            )
        vout = dst.add_stream_from_template(vin)
        _copy_stream_info(vin, vout)
        new_packets = _encode_tracks(dst, waves, span, plan)
        copies = {vin.index: vout}
        for stream in originals:
            if stream.codec_context is None:
                raise InputError(f"{src.name}: the original audio codec is unknown or unsupported")
            name = stream.codec_context.name
            if name not in supported or (fmt, name.split("_")[0]) in _REFUSED:
                raise InputError(f"the original {name} audio cannot go into {tmp.suffix} files; use .mkv")
            copies[stream.index] = dst.add_stream_from_template(stream)
            _copy_stream_info(stream, copies[stream.index])
            copies[stream.index].disposition = stream.disposition & ~av.stream.Disposition.default
        dst.metadata.update(tags)

        # Demuxed packets come in file order; slot each encoded packet in before the first later one.
        pending = 0
        for packet in src.demux([vin, *originals]):
            if packet.size == 0 and packet.dts is None:
                continue  # demuxer's end-of-stream marker
            now = _packet_time(packet)
            while pending < len(new_packets) and now is not None and new_packets[pending][0] <= now:
                dst.mux(new_packets[pending][1])
                pending += 1
            packet.stream = copies[packet.stream.index]
            dst.mux(packet)
        for _, packet in new_packets[pending:]:
            dst.mux(packet)


def _encode_tracks(
    dst: av.container.OutputContainer, waves: list[tuple[np.ndarray, int]], span: VideoSpan, plan: _AudioPlan
) -> list[tuple[float, av.Packet]]:
    """Add one stream per waveform, fit each to the video span and encode it; packets sorted by time."""
    timed = []
    for i, (wav, rate) in enumerate(waves):
        stream, enc_rate = _add_audio_stream(dst, plan, wav.shape[0], rate)
        stream.metadata.update(plan.tags)
        stream.disposition = av.stream.Disposition.default if i == 0 else 0
        if enc_rate != rate:
            wav = resample(wav, rate, enc_rate)
        wav = _fit_length(wav, round(span.duration * enc_rate))
        packets = encode_waveform(stream, wav, enc_rate, start_pts=round(span.start * enc_rate))
        timed.extend((_packet_time(p) or 0.0, i, n, p) for n, p in enumerate(packets))
    timed.sort(key=lambda item: item[:3])
    return [(t, p) for t, _, _, p in timed]


def _add_audio_stream(
    dst: av.container.OutputContainer, plan: _AudioPlan, channels: int, rate: int
) -> tuple[av.audio.stream.AudioStream, int]:
    """Add an encoder stream for the planned codec; returns it and the rate it encodes at."""
    enc_rate = plan.sample_rate or rate
    if plan.codec == "opus" and enc_rate not in _OPUS_RATES:
        enc_rate = 48_000
    if plan.codec == "aac" and enc_rate not in _AAC_RATES:
        enc_rate = 48_000
    stream = dst.add_stream(_ENCODERS[plan.codec], rate=enc_rate)
    stream.layout = layout_for(channels)
    if plan.codec in _LOSSY_BITRATE_PER_CHANNEL:
        stream.bit_rate = plan.bitrate or _LOSSY_BITRATE_PER_CHANNEL[plan.codec] * channels
    return stream, enc_rate


def _packet_time(packet: av.Packet) -> float | None:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


def _fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    """Trim or pad (C, S) audio with silence to exactly ``n`` samples."""
    if wav.shape[1] >= n:
        return wav[:, :n]
    return np.pad(wav, ((0, 0), (0, n - wav.shape[1])))


def video_span(video: str | os.PathLike) -> VideoSpan:
    """Timeline of a file's main video stream from its packets (no decoding).

    A packet without a duration is taken to last as long as the typical frame interval. Packets the
    container marks as discarded (edit-list pre-roll) are not shown and do not count.

    Args:
        video: video file.

    Returns:
        First frame time and end of the last frame, in seconds.

    Raises:
        InputError: the file cannot be read or has no video frames.
    """
    path = Path(video)
    starts: list[int] = []
    ends: list[int] = []
    with _open_video(path) as container:
        stream = _main_video_stream(container, path)
        try:
            for packet in container.demux(stream):
                if packet.pts is None or packet.is_discard:
                    continue
                starts.append(packet.pts)
                ends.append(packet.pts + (packet.duration or 0))
        except av.FFmpegError as err:
            raise InputError(f"cannot read video {path}: {_reason(err)}") from None
        tb = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    if not starts:
        raise InputError(f"{path} has no video frames with timestamps")
    steps = [b - a for a, b in itertools.pairwise(sorted(starts)) if b > a]
    typical = int(np.median(steps)) if steps else max(1, round(1 / (rate * tb)))
    end = max(e if e > s else s + typical for s, e in zip(starts, ends, strict=True))
    return VideoSpan(start=min(starts) * tb, end=end * tb)


def _open_video(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.FFmpegError, ValueError, OSError) as err:
        raise InputError(f"cannot read video {path}: {_reason(err)}") from None


def _main_video_stream(container: av.container.InputContainer, name: Path) -> av.video.stream.VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            if stream.codec_context is None:
                raise InputError(f"{name}: the video codec is unknown or unsupported")
            return stream
    raise InputError(f"{name} has no video stream")


def _choose_codec(audio_codec: str, fmt: str, out: Path) -> str:
    if audio_codec not in _ENCODERS:
        raise InputError(f"unknown audio codec {audio_codec!r}; use one of {', '.join(_ENCODERS)}")
    if fmt == "webm" and audio_codec == "aac":
        return "opus"  # the default; WebM holds only Opus and Vorbis
    hint = _REFUSED.get((fmt, audio_codec))
    if hint is None and fmt == "webm" and audio_codec != "opus":
        hint = ".mkv, or opus audio"
    if hint is not None:
        raise InputError(f"{audio_codec} audio cannot go into a {out.suffix} file; use {hint}")
    return audio_codec


def _container_tags(original: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    tags = {k: v for k, v in original.items() if k.lower() not in _STALE_TAGS}
    tags.update({str(k): str(v) for k, v in (extra or {}).items()})
    return tags


def _copy_stream_info(src: av.stream.Stream, dst: av.stream.Stream) -> None:
    """Carry the descriptive stream tags and the disposition (codec parameters come with the template)."""
    for key in ("language", "title", "handler_name"):
        if key in src.metadata:
            dst.metadata[key] = src.metadata[key]
    dst.disposition = src.disposition


def _check_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file {p} does not exist")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a {what} file")
    if p.stat().st_size == 0:
        raise InputError(f"{what} file {p} is empty")
    return p


def _as_track_list(audio: AudioTrack | Sequence[AudioTrack]) -> list[AudioTrack]:
    if isinstance(audio, tuple) and len(audio) == 2 and isinstance(audio[0], np.ndarray):
        return [audio]
    if isinstance(audio, str | os.PathLike):
        return [audio]
    tracks = list(audio)
    if not tracks:
        raise InputError("no audio track given to mux")
    return tracks


def _load_track(track: AudioTrack) -> tuple[np.ndarray, int]:
    """(C, S) float32 waveform and rate of a file or an in-memory track."""
    if isinstance(track, str | os.PathLike):
        return load_audio(track, mono=False)
    wav, rate = track
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]  # (1, S)
    if wav.ndim != 2 or wav.shape[1] == 0 or not 1 <= wav.shape[0] <= 8:
        raise ValueError(f"audio must be (S,) or (C<=8, S) with S > 0, got {wav.shape=}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("audio contains NaN or inf samples")
    if int(rate) != rate or rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {rate!r}")
    return np.clip(wav, -1.0, 1.0), int(rate)


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__
