"""Audio watermark: a keyed, inaudible mark carrying 32 bits that survives codecs, filters and edits.

``embed`` marks a waveform, ``detect`` finds the mark with a p-value, its payload and where it is;
``watermark_file`` / ``detect_file`` do the same for audio and video files. See ``grid`` for the method, and
``subbass`` for the second, sync-only layer below 219 Hz that carries the mark where sound is mostly rumble.
"""

from __future__ import annotations

from v2a.watermark.detect import DEFAULT_ALPHA, Detection, detect
from v2a.watermark.embed import embed
from v2a.watermark.files import detect_file, provenance_tags, watermark_file
from v2a.watermark.keys import DEFAULT_KEY, key_id
from v2a.watermark.payload import DEFAULT_MODEL_ID, make_payload, payload_fields

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_KEY",
    "DEFAULT_MODEL_ID",
    "Detection",
    "detect",
    "detect_file",
    "embed",
    "key_id",
    "make_payload",
    "payload_fields",
    "provenance_tags",
    "watermark_file",
]
