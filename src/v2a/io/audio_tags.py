"""Tags in audio files (provenance: generator, model id, watermark key id), and what an audio file holds.

Writing (used by ``v2a.io.audio.save_audio(..., metadata=...)``): FLAC files get one Vorbis comment per
tag (``WATERMARK_KEY_ID=1a2b3c4d``); WAV and the other formats libsndfile writes have only a fixed set
of text fields (the RIFF INFO chunk in WAV), so the tags go into its comment field (ICMT), one
``key=value`` line per tag; files written through FFmpeg get container tags.

Reading (``audio_tags``, ``probe_audio``): FFmpeg's view of the container and audio stream tags, keys
lower-cased, with a comment made only of ``key=value`` lines expanded back into its tags, so the same
tags come back whichever way they were stored.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from v2a.errors import InputError
from v2a.io.video_probe import check_video_path, open_container

_VENDOR = b"v2a"  # vendor string of the Vorbis comment block
_FLAC_STREAMINFO, _FLAC_VORBIS_COMMENT = 0, 4
# Muxer and encoder bookkeeping, not descriptive tags (container tags, and stream tags of mp4 and Matroska).
_BOOKKEEPING = {"encoder", "major_brand", "minor_version", "compatible_brands", "creation_time"}
_BOOKKEEPING |= {"duration", "handler_name", "language", "vendor_id"}


@dataclass(frozen=True)
class AudioInfo:
    """What ``probe_audio`` learns about an audio file.

    Attributes:
        path: the file.
        container: FFmpeg demuxer name (e.g. ``"wav"``, ``"flac"``).
        codec: FFmpeg decoder name of the first audio stream (e.g. ``"pcm_s16le"``).
        duration_s: length of the audio in seconds (0.0 when the file does not say).
        audio_rate: sample rate in Hz.
        audio_channels: channel count.
        num_audio_tracks: number of audio streams.
        tags: file tags with lower-case keys (see ``audio_tags``).
    """

    path: str
    container: str
    codec: str
    duration_s: float
    audio_rate: int
    audio_channels: int
    num_audio_tracks: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict of all fields (what ``v2a probe --json`` prints for audio files)."""
        return asdict(self)


def check_tags(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Tags as a plain dict of strings; raises InputError for keys no audio format can store."""
    tags = {str(k): str(v) for k, v in (metadata or {}).items()}
    for key, value in tags.items():
        if not key or "=" in key or not all(0x20 < ord(c) < 0x7E for c in key):
            raise InputError(f"tag name {key!r} must be printable ASCII without spaces or '='")
        if "\n" in value or "\r" in value:
            raise InputError(f"tag {key!r} must be one line of text")
    return tags


def write_soundfile(
    path: Path, data: np.ndarray, sr: int, *, subtype: str | None, sf_format: str, tags: dict[str, str]
) -> None:
    """Write (S, C) samples with libsndfile and store ``tags`` as the format allows (see module docstring)."""
    if not tags:
        sf.write(path, data, sr, subtype=subtype, format=sf_format)
        return
    channels = 1 if data.ndim == 1 else data.shape[1]
    with sf.SoundFile(path, "w", sr, channels, subtype=subtype, format=sf_format) as f:
        if sf_format != "FLAC":
            try:
                f.comment = "\n".join(f"{k}={v}" for k, v in tags.items())
            except RuntimeError:
                warn_untagged(path, sf_format)
        f.write(data)
    if sf_format == "FLAC":
        set_flac_comments(path, tags)


def warn_untagged(path: Path, fmt: str) -> None:
    """Warn that a file was written without its tags because its format has no place for them."""
    warnings.warn(
        f"{path}: {fmt} files cannot hold tags; they were not written", RuntimeWarning, stacklevel=4
    )


def set_flac_comments(path: Path, tags: dict[str, str]) -> None:
    """Replace the Vorbis comment block of a FLAC file by one holding ``tags`` (keys upper-cased)."""
    raw = path.read_bytes()
    if raw[:4] != b"fLaC":
        raise ValueError(f"{path} is not a FLAC file")
    blocks, pos, last = [], 4, False
    while not last:
        header = raw[pos]
        last, kind = bool(header & 0x80), header & 0x7F
        length = int.from_bytes(raw[pos + 1 : pos + 4], "big")
        if kind != _FLAC_VORBIS_COMMENT:
            blocks.append((kind, raw[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    entries = [f"{k.upper()}={v}".encode() for k, v in tags.items()]
    body = struct.pack("<I", len(_VENDOR)) + _VENDOR + struct.pack("<I", len(entries))
    body += b"".join(struct.pack("<I", len(e)) + e for e in entries)
    at = 1 if blocks and blocks[0][0] == _FLAC_STREAMINFO else 0
    blocks.insert(at, (_FLAC_VORBIS_COMMENT, body))
    out = bytearray(b"fLaC")
    for i, (kind, payload) in enumerate(blocks):
        out.append(kind | (0x80 if i == len(blocks) - 1 else 0))
        out += len(payload).to_bytes(3, "big") + payload
    path.write_bytes(bytes(out) + raw[pos:])


def audio_tags(container: av.container.InputContainer) -> dict[str, str]:
    """Descriptive tags of an open file (container and first audio stream), keys lower-cased.

    Encoder bookkeeping is left out; a comment made only of ``key=value`` lines (how ``save_audio``
    stores tags in WAV files) is replaced by the tags it holds.
    """
    raw = dict(container.metadata)
    if container.streams.audio:
        raw = {**container.streams.audio[0].metadata, **raw}
    tags = {str(k).lower(): str(v) for k, v in raw.items()}
    expanded = _comment_tags(tags.get("comment", ""))
    if expanded:
        del tags["comment"]
        tags.update(expanded)
    return {k: v for k, v in sorted(tags.items()) if k not in _BOOKKEEPING}


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Inspect an audio file: format, rate, channels, duration and tags.

    Raises:
        InputError: the file is missing, empty, not a media file, or has no audio stream.
    """
    file = check_video_path(path, kind="audio")
    with open_container(file, kind="audio") as container:
        if not container.streams.audio or container.streams.audio[0].codec_context is None:
            raise InputError(f"{file}: has no readable audio stream")
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        return AudioInfo(
            path=str(file),
            container=container.format.name,
            codec=stream.codec_context.name,
            duration_s=round(duration, 6),
            audio_rate=int(stream.codec_context.sample_rate or stream.rate or 0),
            audio_channels=int(stream.codec_context.channels or 0),
            num_audio_tracks=len(container.streams.audio),
            tags=audio_tags(container),
        )


def _comment_tags(comment: str) -> dict[str, str]:
    """The tags of a comment made only of ``key=value`` lines, else {}."""
    lines = [line for line in comment.splitlines() if line.strip()]
    pairs = [line.split("=", 1) for line in lines]
    if not lines or any(len(p) != 2 or not p[0] or " " in p[0] for p in pairs):
        return {}
    return {k.lower(): v for k, v in pairs}
