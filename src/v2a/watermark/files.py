"""Watermark and check files: any audio file, or the audio track of a video (the video stream is copied).

Marked files also carry provenance tags (generator, version, model id, watermark key id): container tags
in videos and FFmpeg-written audio, Vorbis comments in FLAC, the INFO chunk's comment in WAV (see
``v2a.io.audio_tags``); ``v2a probe`` shows them under ``tags``.
"""

from __future__ import annotations

import os
from pathlib import Path

from v2a import __version__
from v2a.errors import InputError
from v2a.io.atomic import check_output_path
from v2a.io.audio import load_audio, save_audio
from v2a.io.mux import mux
from v2a.io.video_probe import is_audio_only
from v2a.watermark.detect import DEFAULT_ALPHA, Detection, detect
from v2a.watermark.embed import embed
from v2a.watermark.keys import DEFAULT_KEY, key_id
from v2a.watermark.payload import as_payload, payload_fields

GENERATOR = "Foley (v2a)"
METHOD = "v2a-ss-dB-v3"  # spread spectrum in the dB spectrum, 2 x 2 units, 40 bands, systematic payload code


def provenance_tags(
    *, key: str | bytes = DEFAULT_KEY, payload: int | bytes | None = None, model_id: str | None = None
) -> dict[str, str]:
    """Container tags that say a file was generated and watermarked (lower-case keys, never the key).

    Args:
        key: the watermark key (only its public id is written).
        payload: the embedded payload (its hex and date are written); None: today's default payload.
        model_id: name of the model that generated the audio (None: not written).

    Returns:
        Tags for ``v2a.io.mux.mux(..., metadata=...)`` and ``v2a.io.audio.save_audio(..., metadata=...)``.
    """
    fields = payload_fields(as_payload(payload))
    tags = {
        "generator": GENERATOR,
        "generator_version": __version__,
        "watermark": METHOD,
        "watermark_key_id": key_id(key),
        "watermark_payload": str(fields["hex"]),
    }
    if model_id:
        tags["model_id"] = model_id
    return tags


def watermark_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    key: str | bytes = DEFAULT_KEY,
    payload: int | bytes | None = None,
    strength: float = 1.0,
    model_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a watermarked copy of an audio file, or of a video file with its audio track marked.

    Args:
        src: audio or video file.
        out: output path; its extension picks the format (.wav/.flac/.mp3/.m4a/... for audio; .mp4/.mkv/
            .mov/.webm for video). A video's stream is copied and its (first) audio track replaced by
            the marked one; provenance tags are added to either.
        key: watermark key.
        payload: 32-bit int or 4 bytes to embed (None: model id and today's date).
        strength: depth multiplier (see ``embed``).
        model_id: model name for the provenance tags.
        overwrite: replace an existing ``out``.

    Returns:
        The written path.

    Raises:
        InputError: ``src`` is unreadable, has no audio, or an argument is invalid.
        OutputError: ``out`` is ``src``, exists without ``overwrite``, or its folder is missing.
    """
    src_path = Path(src)
    out_path = check_output_path(out, inputs=[src_path], overwrite=overwrite)
    payload = as_payload(payload)
    wav, sr = load_audio(src_path, mono=False)  # (C, S); raises InputError for unreadable files
    marked = embed(wav if wav.shape[0] > 1 else wav[0], sr, key=key, payload=payload, strength=strength)
    tags = provenance_tags(key=key, payload=payload, model_id=model_id)
    if is_audio_only(src_path):
        return save_audio(out_path, marked, sr, overwrite=overwrite, metadata=tags)
    return mux(src_path, (marked, sr), out_path, metadata=tags, overwrite=overwrite)


def detect_file(
    path: str | os.PathLike, *, key: str | bytes = DEFAULT_KEY, alpha: float = DEFAULT_ALPHA
) -> Detection:
    """Look for the watermark in an audio file or in the audio track of a video.

    Args:
        path: audio or video file.
        key: watermark key.
        alpha: p-value threshold for ``detected``.

    Returns:
        The detection (see ``Detection.to_dict`` for the JSON form).

    Raises:
        InputError: the file is missing, unreadable, or has no audio.
    """
    wav, sr = load_audio(path, mono=True)
    if sr < 8000:
        raise InputError(f"{path}: sample rate {sr} Hz is too low to hold a watermark (8000 Hz at least)")
    return detect(wav, sr, key=key, alpha=alpha)
