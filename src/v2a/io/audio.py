"""Audio files and waveforms: load (any file, bytes or file object), save, resample, loudness.

Waveforms are float32 numpy arrays shaped (S,) for mono or (C, S) for C channels, values nominally in [-1, 1].
Files that libsndfile knows (wav, flac, ogg, mp3, aiff, ...) are read with soundfile; anything else, including
the audio stream of a video file, is decoded with PyAV.
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

from v2a.errors import InputError
from v2a.io.atomic import atomic_output, check_output_path
from v2a.io.audio_tags import check_tags, warn_untagged, write_soundfile

log = logging.getLogger(__name__)

AudioSource = str | os.PathLike | bytes | BinaryIO

# Output extension -> libsndfile major format. MP3 is only listed when this libsndfile can write it.
_SF_FORMATS = {
    ".wav": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".au": "AU",
    ".caf": "CAF",
    ".w64": "W64",
}
if "MP3" in sf.available_formats():
    _SF_FORMATS[".mp3"] = "MP3"
# Output extension -> (PyAV container format, encoder) for what libsndfile cannot write.
_AV_FORMATS = {
    ".m4a": ("ipod", "aac"),
    ".aac": ("adts", "aac"),
    ".opus": ("ogg", "libopus"),
    ".mp3": ("mp3", "libmp3lame"),
    ".mka": ("matroska", "flac"),
}
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
_BLOCK_S = 0.4  # BS.1770 gating block length
_SEEK_PREROLL_S = 0.2


def load_audio(
    src: AudioSource,
    *,
    sr: int | None = None,
    mono: bool = True,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read audio from a file, bytes or a binary file object.

    Args:
        src: path of an audio or video file, the file's bytes, or a binary file object (e.g. from a zip).
        sr: resample to this rate in Hz (None: keep the file's rate).
        mono: average the channels into one.
        start_s: seconds to skip from the start of the audio.
        duration_s: seconds to read (None: to the end). Less is returned when the audio ends earlier.

    Returns:
        ``(wav, rate)``: float32 waveform shaped (S,) if ``mono`` else (C, S), and its sample rate.

    Raises:
        InputError: the source is missing, a directory, empty, corrupt or without audio, or an argument
            is invalid.
    """
    if sr is not None and (not isinstance(sr, int | np.integer) or sr <= 0):
        raise InputError(f"sample rate must be a positive integer, got {sr!r}")
    if not math.isfinite(start_s) or start_s < 0:
        raise InputError(f"start_s must be a finite number >= 0, got {start_s!r}")
    if duration_s is not None and (not math.isfinite(duration_s) or duration_s <= 0):
        raise InputError(f"duration_s must be a finite number > 0, got {duration_s!r}")
    name, source = _open_source(src)

    wav, rate = _read_soundfile(source, start_s, duration_s)
    if wav is None:
        if not isinstance(source, str):
            source.seek(0)
        wav, rate = _read_pyav(source, name, start_s, duration_s)
    if wav.shape[1] == 0:
        if start_s > 0:
            raise InputError(f"{name} has no audio at or after start_s={start_s:g} s")
        raise InputError(f"{name} contains no audio samples")
    if mono:
        wav = wav.mean(axis=0)
    if sr is not None and sr != rate:
        wav, rate = resample(wav, rate, int(sr)), int(sr)
    return np.ascontiguousarray(wav, dtype=np.float32), rate


def _open_source(src: AudioSource) -> tuple[str, str | BinaryIO]:
    """Check the source and return (name for messages, path string or seekable file object)."""
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise InputError("audio bytes are empty")
        return "<audio bytes>", io.BytesIO(bytes(src))
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        if not path.exists():
            raise InputError(f"audio file {path} does not exist")
        if path.is_dir():
            raise InputError(f"{path} is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise InputError(f"audio file {path} is empty")
        return str(path), str(path)
    if not hasattr(src, "read"):
        raise InputError(f"cannot read audio from an object of type {type(src).__name__}")
    name = str(getattr(src, "name", "<audio file object>"))
    # Both readers may need to start over from byte 0: give them an in-memory copy of what is left.
    src = io.BytesIO(src.read())
    if src.getbuffer().nbytes == 0:
        raise InputError(f"audio file {name} is empty")
    return name, src


def _read_soundfile(
    source: str | BinaryIO, start_s: float, duration_s: float | None
) -> tuple[np.ndarray | None, int]:
    """Read with libsndfile; (None, 0) when it does not know the format or fails to decode."""
    try:
        with sf.SoundFile(source) as f:
            rate = f.samplerate
            start = round(start_s * rate)
            if f.frames > 0 and start >= f.frames:
                return np.zeros((f.channels, 0), dtype=np.float32), rate
            if start:
                f.seek(start)
            frames = -1 if duration_s is None else round(duration_s * rate)
            data = f.read(frames, dtype="float32", always_2d=True)  # (S, C)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None, 0
    if data.size == 0 and start_s == 0:
        return None, 0  # libsndfile accepted a header but found nothing; let FFmpeg try its luck
    return np.ascontiguousarray(data.T), rate


def _read_pyav(
    source: str | BinaryIO, name: str, start_s: float, duration_s: float | None
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any FFmpeg-readable file into (C, S) float32."""
    try:
        container = av.open(source, mode="r")
    except (av.FFmpegError, ValueError, OSError) as err:
        raise InputError(f"cannot read audio from {name}: {_reason(err)}") from None
    with container:
        if not container.streams.audio:
            raise InputError(f"{name} has no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise InputError(f"{name}: the audio codec is unknown or unsupported")
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise InputError(f"{name}: audio stream has no sample rate")
        # Seek only when timestamps resolve single samples (mp4: 1/rate); with coarse ones (Matroska: 1 ms)
        # decode from the start and count samples, so the cut is sample-exact either way.
        seek = start_s > 0 and stream.time_base is not None and stream.time_base <= Fraction(1, rate)
        origin = stream.start_time * stream.time_base if seek and stream.start_time is not None else 0
        chunks: list[np.ndarray] = []
        first_time = 0.0  # time of the first decoded sample, relative to the start of the audio
        decoded = 0
        try:
            if seek:
                # Seeking lands on or before the target; the exact start is cut below from the frame time.
                # Start a little early: lapped-transform codecs (AAC, Vorbis, Opus) need a frame of history.
                target = origin + max(0.0, start_s - _SEEK_PREROLL_S)
                container.seek(round(target / stream.time_base), stream=stream, backward=True)
            damaged = _DamageCount()
            for pts, samples in _decoded(container, stream, rate, damaged):
                if seek and not chunks:
                    if pts is None:
                        raise InputError(f"{name}: audio has no timestamps, cannot start at {start_s:g} s")
                    first_time = float(pts * stream.time_base - origin)
                chunks.append(samples)
                decoded += chunks[-1].shape[1]
                if duration_s is not None and first_time + decoded / rate >= start_s + duration_s:
                    break
        except av.FFmpegError as err:
            raise InputError(f"cannot decode audio of {name}: {_reason(err)}") from None
        if damaged.packets:
            if damaged.packets == damaged.total:
                raise InputError(f"cannot decode audio of {name}: every audio packet is damaged")
            log.warning(
                "%s: %d of %d audio packets are damaged; they were replaced by silence of their length",
                name, damaged.packets, damaged.total,
            )  # fmt: skip
    if not chunks:
        channels = stream.codec_context.channels or 1
        return np.zeros((channels, 0), dtype=np.float32), rate
    wav = np.concatenate(chunks, axis=1)
    skip = max(0, round((start_s - first_time) * rate))
    stop = None if duration_s is None else skip + round(duration_s * rate)
    return wav[:, skip:stop], rate


@dataclass
class _DamageCount:
    """Packets seen and packets that failed to decode."""

    total: int = 0
    packets: int = 0


def _decoded(
    container: av.container.InputContainer, stream: av.AudioStream, rate: int, damaged: _DamageCount
) -> Iterator[tuple[int | None, np.ndarray]]:
    """(pts, (C, S) samples) of every decoded frame, in order, with gaps in the timestamps filled by silence.

    A packet the decoder rejects (a damaged frame in an archival file, a cut download) is counted and
    skipped instead of ending the read; the silence put where its frames were missing keeps the rest of
    the track in its place in time (by the frames' timestamps, or by the packet's duration without them).
    """
    channels = stream.codec_context.channels or 1
    expected: float | None = None  # where the next frame should start, in seconds
    for packet in container.demux(stream):
        if packet.size:
            damaged.total += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:  # the decoder rejected this packet (FFmpeg reports damage under several codes)
            damaged.packets += 1
            untimed = packet.pts is None and packet.duration and packet.time_base  # no gap to find it by
            if untimed:
                yield None, np.zeros((channels, round(packet.duration * packet.time_base * rate)), np.float32)
            continue
        for frame in frames:
            samples = _frame_to_array(frame)
            if samples.shape[0] != channels:  # a damaged frame that decoded into another layout
                damaged.packets += 1
                samples = np.zeros((channels, samples.shape[1]), np.float32)
            if frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
                gap = 0 if expected is None else round((start - expected) * rate)
                if gap > max(1, rate // 500):  # more than 2 ms missing: frames were lost
                    yield None, np.zeros((samples.shape[0], gap), np.float32)
                expected = start + samples.shape[1] / rate
            yield frame.pts, samples


_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _frame_to_array(frame: av.AudioFrame) -> np.ndarray:
    """(C, S) float32 samples of a decoded frame, whatever its sample format."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T  # interleaved (1, S*C) -> (C, S)
    base = frame.format.name.rstrip("p")
    if base == "u8":
        return (data.astype(np.float32) - 128.0) / 128.0
    if base in _INT_SCALE:
        return (data.astype(np.float64) / _INT_SCALE[base]).astype(np.float32)
    return data.astype(np.float32, copy=False)


def _reason(err: BaseException) -> str:
    """One line saying what FFmpeg/libsndfile disliked, without the library's file path noise."""
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Change the sample rate with libsoxr's very-high-quality polyphase resampler.

    Args:
        wav: (..., S) waveform; any leading dims (channels, batch) are resampled independently.
        sr_in: rate of ``wav`` in Hz.
        sr_out: wanted rate in Hz.

    Returns:
        float32 (..., S') array with S' = round(S * sr_out / sr_in).
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in=} {sr_out=}")
    wav = np.asarray(wav, dtype=np.float32)
    if sr_in == sr_out:
        return wav.copy()
    lead, n = wav.shape[:-1], wav.shape[-1]
    if n == 0 or wav.size == 0:
        return np.zeros((*lead, round(n * sr_out / sr_in)), dtype=np.float32)
    flat = np.ascontiguousarray(wav.reshape(-1, n).T)  # (S, N): soxr wants time first
    out = soxr.resample(flat, sr_in, sr_out, quality="VHQ")  # (S', N)
    return np.ascontiguousarray(out.T).reshape(*lead, out.shape[0])


def to_mono(wav: np.ndarray) -> np.ndarray:
    """Average (C, S) channels into (S,); a (S,) waveform is returned as float32 unchanged."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        return wav
    if wav.ndim != 2:
        raise ValueError(f"expected (S,) or (C, S) audio, got {wav.shape=}")
    return wav.mean(axis=0)


def rms_db(wav: np.ndarray) -> float:
    """Root-mean-square level over all samples in dBFS (-inf for silence or no samples)."""
    wav = np.asarray(wav, dtype=np.float64)
    if wav.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(wav * wav)))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def loudness_lufs(wav: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, gated) in LUFS.

    A clip shorter than the 400 ms gating block is measured as if looped to one block, i.e. by its
    K-weighted mean power, so short sounds still get a comparable number.

    Args:
        wav: (S,) or (C, S) waveform, C <= 5.
        sr: sample rate in Hz.

    Returns:
        Loudness in LUFS; -inf for silence or an empty waveform.
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim not in (1, 2) or (wav.ndim == 2 and wav.shape[0] > 5):
        raise ValueError(f"expected (S,) or (C<=5, S) audio, got {wav.shape=}")
    n = wav.shape[-1]
    if n == 0 or not np.any(wav):
        return -math.inf
    block = math.ceil(_BLOCK_S * sr) + 1
    if n < block:
        wav = np.tile(wav, (1,) * (wav.ndim - 1) + (math.ceil(block / n),))
    data = wav if wav.ndim == 1 else wav.T  # pyloudnorm wants (S, C)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        value = pyloudnorm.Meter(sr).integrated_loudness(data)
    return float(value) if math.isfinite(value) else -math.inf


def normalize_loudness(
    wav: np.ndarray, sr: int, target_lufs: float = -23.0, peak_db: float | None = -1.0
) -> np.ndarray:
    """Scale to an integrated loudness, then lower the gain if the sample peak would pass ``peak_db``.

    Args:
        wav: (S,) or (C, S) waveform.
        sr: sample rate in Hz.
        target_lufs: wanted loudness in LUFS (EBU R128 broadcast: -23).
        peak_db: ceiling for the sample peak in dBFS (None: no ceiling). When it binds, the result is
            quieter than ``target_lufs``.

    Returns:
        float32 waveform of the same shape; silence is returned unchanged.
    """
    wav = np.asarray(wav, dtype=np.float32)
    loudness = loudness_lufs(wav, sr)
    if not math.isfinite(loudness):
        return wav.copy()
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    if peak_db is not None:
        peak = float(np.max(np.abs(wav)))
        gain = min(gain, 10.0 ** (peak_db / 20.0) / peak)
    return (wav * gain).astype(np.float32)


def save_audio(
    path: str | os.PathLike,
    wav: np.ndarray,
    sr: int,
    *,
    subtype: str | None = None,
    overwrite: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a waveform atomically; the format follows the extension.

    .wav/.flac/.ogg/.aiff/.mp3 (and others libsndfile knows) go through soundfile; .m4a/.aac/.opus/.mka
    (and .mp3 when libsndfile lacks it) through PyAV. Samples beyond [-1, 1] are clipped with a warning
    unless the subtype is floating point.

    Args:
        path: output file.
        wav: (S,) or (C, S) float waveform.
        sr: sample rate in Hz.
        subtype: libsndfile subtype such as "PCM_16", "PCM_24", "FLOAT", "VORBIS" (None: format default).
        overwrite: replace an existing file.
        metadata: tags to store in the file (e.g. provenance): Vorbis comments in FLAC, ``key=value``
            lines in the comment (the INFO chunk's ICMT in WAV) for the other libsndfile formats,
            container tags for the FFmpeg ones (see ``v2a.io.audio_tags``). None: no tags.

    Returns:
        The written path.

    Raises:
        InputError: unknown extension, a subtype the format does not support, or a tag name no format
            can store (formats without room for tags, such as .au and .aac, get a warning instead).
        OutputError: the output cannot be written safely.
    """
    out = check_output_path(path, overwrite=overwrite)
    tags = check_tags(metadata)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim not in (1, 2) or wav.shape[-1] == 0:
        raise ValueError(f"expected non-empty (S,) or (C, S) audio, got {wav.shape=}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("waveform contains NaN or inf samples")
    ext = out.suffix.lower()
    sf_format = _SF_FORMATS.get(ext)
    if sf_format is None and ext not in _AV_FORMATS:
        known = ", ".join(sorted(set(_SF_FORMATS) | set(_AV_FORMATS)))
        raise InputError(
            f"cannot write audio to {out}: unknown extension {ext or '(none)'}; use one of {known}"
        )
    if sf_format is not None and subtype is not None and not sf.check_format(sf_format, subtype.upper()):
        raise InputError(f"subtype {subtype} is not supported for {ext} files")
    if sf_format is None or subtype is None or subtype.upper() not in _FLOAT_SUBTYPES:
        wav = _clip(wav, out)
    data = np.ascontiguousarray(wav.T if wav.ndim == 2 else wav)  # soundfile wants (S, C)
    with atomic_output(out) as tmp:
        if sf_format is not None:
            try:
                write_soundfile(tmp, data, sr, subtype=subtype, sf_format=sf_format, tags=tags)
            except (sf.LibsndfileError, RuntimeError, ValueError) as err:
                raise InputError(f"cannot write {out} at {sr} Hz: {_reason(err)}") from None
        else:
            _write_pyav(tmp, np.atleast_2d(wav), sr, *_AV_FORMATS[ext], tags=tags)
    return out


def _clip(wav: np.ndarray, out: Path) -> np.ndarray:
    peak = float(np.max(np.abs(wav)))
    if peak <= 1.0:
        return wav
    frac = float(np.mean(np.abs(wav) > 1.0))
    warnings.warn(
        f"{out}: clipping {frac:.2%} of samples (peak {20 * math.log10(peak):+.1f} dBFS)",
        RuntimeWarning,
        stacklevel=3,
    )
    return np.clip(wav, -1.0, 1.0)


def _write_pyav(
    path: Path, wav: np.ndarray, sr: int, fmt: str, codec: str, *, tags: dict[str, str] | None = None
) -> None:
    """Encode (C, S) audio with an FFmpeg encoder into a single-stream file (with container ``tags``)."""
    if codec == "libopus" and sr not in (8000, 12000, 16000, 24000, 48000):
        wav, sr = resample(wav, sr, 48000), 48000
    options = {"movflags": "use_metadata_tags"} if tags and fmt == "ipod" else {}  # mp4 keeps any key
    if tags and fmt == "adts":
        warn_untagged(path, "ADTS (.aac)")
    with av.open(str(path), mode="w", format=fmt, options=options) as container:
        container.metadata.update(tags or {})
        stream = container.add_stream(codec, rate=sr)
        stream.layout = layout_for(wav.shape[0])
        for packet in encode_waveform(stream, wav, sr):
            container.mux(packet)


def layout_for(channels: int) -> str:
    """FFmpeg channel layout name for a channel count (mono, stereo, else FFmpeg's default for N)."""
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def encode_waveform(
    stream: av.audio.stream.AudioStream, wav: np.ndarray, sr: int, *, start_pts: int = 0, chunk: int = 4096
) -> list[av.Packet]:
    """Encode a whole (C, S) float waveform with the stream's encoder (flushed at the end).

    PyAV converts the sample format and re-frames to the encoder's frame size; the rate must already match.

    Args:
        stream: output audio stream whose rate equals ``sr`` and whose layout has C channels.
        wav: (C, S) float32 waveform.
        sr: sample rate in Hz.
        start_pts: timestamp of the first sample, in samples (1/sr units).
        chunk: samples per frame handed to the encoder.

    Returns:
        The encoded packets, in order, not yet muxed.
    """
    if stream.rate != sr:
        raise ValueError(f"{stream.rate=} differs from {sr=}")
    wav = np.atleast_2d(np.asarray(wav, dtype=np.float32))  # (C, S)
    layout = stream.layout.name
    packets: list[av.Packet] = []
    for begin in range(0, wav.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(wav[:, begin : begin + chunk]), format="fltp", layout=layout
        )
        frame.sample_rate = sr
        frame.time_base = Fraction(1, sr)
        frame.pts = start_pts + begin
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets


def load_video_audio(
    path: str | os.PathLike,
    *,
    sr: int,
    mono: bool = True,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Read a video's own soundtrack on the video timeline (time 0 = first video frame, see v2a.io.video).

    Unlike ``load_audio``, which counts from the audio stream's first sample, the result covers exactly
    ``[start_s, start_s + duration_s)`` of the picture: audio that starts later than the video is preceded
    by silence, audio before the first frame is cut, and a soundtrack that ends early is padded with silence.

    Args:
        path: video file with an audio stream.
        sr: output sample rate in Hz.
        mono: average the channels into one.
        start_s: video time to start at.
        duration_s: seconds to return (None: to the end of the video).

    Returns:
        float32 waveform, (S,) if ``mono`` else (C, S), with S = round(duration * sr).

    Raises:
        InputError: not a readable video, no audio stream, or a window outside the video.
    """
    from v2a.io.video_probe import probe  # video probing sits beside audio in v2a.io

    info = probe(path)
    if not info.has_audio:
        raise InputError(f"{path} has no audio stream")
    if not math.isfinite(start_s) or not 0 <= start_s < info.duration_s:
        raise InputError(f"start_s={start_s!r} is outside the video (0 to {info.duration_s:.3f} s)")
    span = info.duration_s - start_s if duration_s is None else duration_s
    if not math.isfinite(span) or span <= 0:
        raise InputError(f"duration_s must be a finite number > 0, got {duration_s!r}")
    total = round(span * sr)
    offset = start_s - (info.audio_start_s or 0.0)  # where the window starts on the audio's own clock
    lead = max(0, round(-offset * sr))
    channels = 1 if mono else max(1, info.audio_channels or 1)
    out = np.zeros((channels, total), np.float32)
    if lead < total:
        try:
            wav, _ = load_audio(
                path, sr=sr, mono=mono, start_s=max(0.0, offset), duration_s=(total - lead) / sr
            )
        except InputError as err:
            if "no audio at or after" not in str(err):
                raise
            wav = np.zeros((channels, 0), np.float32)
        wav = np.atleast_2d(wav)[:, : total - lead]
        out[: wav.shape[0], lead : lead + wav.shape[1]] = wav
    return out[0] if mono else out
