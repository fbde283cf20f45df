"""Sounds inside game containers: zip-like paks (.zip/.pk3/.wz), Doom WADs (DMX lumps), OpenTTD .cat files.

Each reader yields :class:`Member` objects whose ``data`` is a complete audio file (wav/ogg/...) that
``v2a.io.audio.load_audio`` can decode from bytes, so the rest of the corpus builder never needs to know
where a sound came from.
"""

from __future__ import annotations

import io
import re
import struct
import wave
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2a.errors import InputError

AUDIO_SUFFIXES = frozenset({".wav", ".ogg", ".oga", ".flac", ".mp3", ".opus", ".aiff", ".aif", ".au"})
ZIP_SUFFIXES = frozenset({".zip", ".pk3", ".wz"})
CONTAINER_SUFFIXES = ZIP_SUFFIXES | {".wad", ".cat"}

_DMX_FORMAT = 3
_DMX_PAD = 16  # DMX sound lumps carry 16 padding samples before and after the real ones
_CAT_NEW_FORMAT = 0x80000000  # OpenTTD .cat: high bit of an offset marks "name + RIFF" entries


@dataclass(frozen=True)
class Member:
    """One sound found inside a container.

    Attributes:
        name: path of the sound inside the container (a lump name for WADs, a slug for .cat entries).
        data: the sound as a complete audio file (wav, ogg, ...).
        note: text the container stores with the sound (OpenTTD .cat: title, author and licence).
    """

    name: str
    data: bytes
    note: str = ""


def is_container(path: str | Path) -> bool:
    """Whether ``path`` names a container format this module can open (by its suffix)."""
    return Path(path).suffix.lower() in CONTAINER_SUFFIXES


def iter_members(path: str | Path, *, include: re.Pattern[str] | None = None) -> Iterator[Member]:
    """Yield the sounds inside a container.

    Args:
        path: a .zip/.pk3/.wz, .wad or .cat file.
        include: keep only members whose name this pattern finds (``re.search``); None keeps all sounds.

    Yields:
        The container's sounds, in the container's own order.

    Raises:
        InputError: the file is missing, of an unknown kind, or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"container {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in ZIP_SUFFIXES:
        members = _iter_zip(path)
    elif suffix == ".wad":
        members = iter_wad_sounds(path)
    elif suffix == ".cat":
        members = iter_cat_sounds(path)
    else:
        raise InputError(f"{path}: unknown container type {suffix!r}; known: {sorted(CONTAINER_SUFFIXES)}")
    for member in members:
        if include is None or include.search(member.name):
            yield member


def member_names(path: str | Path) -> list[tuple[str, str]]:
    """(name, note) of every sound in a container, without reading zip members' data.

    Raises:
        InputError: the file is missing, of an unknown kind, or corrupt.
    """
    path = Path(path)
    if path.suffix.lower() not in ZIP_SUFFIXES:
        return [(m.name, m.note) for m in iter_members(path)]
    try:
        with zipfile.ZipFile(path) as archive:
            return [
                (info.filename, "")
                for info in archive.infolist()
                if not info.is_dir() and Path(info.filename).suffix.lower() in AUDIO_SUFFIXES
            ]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as err:
        raise InputError(f"corrupt zip archive {path}: {err}") from None


def _iter_zip(path: Path) -> Iterator[Member]:
    """Audio files of a zip archive (Quake 3 .pk3 and Warzone 2100 .wz are plain zips)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or Path(info.filename).suffix.lower() not in AUDIO_SUFFIXES:
                    continue
                yield Member(info.filename, archive.read(info))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise InputError(f"corrupt zip archive {path}: {err}") from None


def iter_wad_sounds(path: str | Path) -> Iterator[Member]:
    """DMX sound lumps of a Doom WAD, each converted to an 8-bit WAV file.

    A WAD starts with ``IWAD``/``PWAD``, a lump count and the directory offset; each directory entry is
    ``<II8s`` (file position, size, name). Sound lumps are recognised by their DMX header, not their name.

    Raises:
        InputError: the file is not a WAD or its directory points outside the file.
    """
    path = Path(path)
    blob = path.read_bytes()
    if len(blob) < 12 or blob[:4] not in (b"IWAD", b"PWAD"):
        raise InputError(f"{path} is not a Doom WAD (no IWAD/PWAD magic)")
    count, dir_offset = struct.unpack_from("<ii", blob, 4)
    if count < 0 or dir_offset < 12 or dir_offset + 16 * count > len(blob):
        raise InputError(f"corrupt WAD {path}: directory of {count} lumps at {dir_offset} exceeds the file")
    for i in range(count):
        pos, size, raw_name = struct.unpack_from("<ii8s", blob, dir_offset + 16 * i)
        if size <= 0 or pos < 0 or pos + size > len(blob):
            continue
        lump = blob[pos : pos + size]
        if not is_dmx(lump):
            continue
        name = raw_name.split(b"\0", 1)[0].decode("ascii", "replace")
        yield Member(name, dmx_to_wav(lump))


def is_dmx(lump: bytes) -> bool:
    """Whether a lump has a plausible DMX sound header (format 3, a rate, a sample count that fits)."""
    if len(lump) < 8:
        return False
    fmt, rate, count = struct.unpack_from("<HHI", lump)
    return fmt == _DMX_FORMAT and 4000 <= rate <= 48000 and 0 < count <= len(lump) - 8


def dmx_to_wav(lump: bytes) -> bytes:
    """Convert a DMX sound lump (``<HHI`` header, then unsigned 8-bit PCM) to WAV file bytes.

    Raises:
        ValueError: the lump is not a DMX sound.
    """
    if not is_dmx(lump):
        raise ValueError("not a DMX sound lump")
    _, rate, count = struct.unpack_from("<HHI", lump)
    pcm = lump[8 : 8 + count]
    if len(pcm) > 2 * _DMX_PAD:
        pcm = pcm[_DMX_PAD:-_DMX_PAD]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)  # WAV 8-bit is unsigned, exactly like DMX
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def iter_cat_sounds(path: str | Path) -> Iterator[Member]:
    """Sounds of an OpenTTD sound set (.cat, as in openttd-opensfx).

    The file starts with a table of ``<II`` (offset, size) pairs; the first offset, masked, gives the
    table length. In the format OpenSFX uses, the high bit of each offset is set and each entry holds a
    length-prefixed description (title, author, licence) followed by a RIFF WAV of ``size`` bytes.

    Raises:
        InputError: the table or an entry lies outside the file, or an entry is not a WAV.
    """
    path = Path(path)
    blob = path.read_bytes()
    if len(blob) < 8:
        raise InputError(f"corrupt sound catalogue {path}: only {len(blob)} bytes")
    first = struct.unpack_from("<I", blob)[0] & ~_CAT_NEW_FORMAT
    count = first // 8
    if count == 0 or first > len(blob):
        raise InputError(f"corrupt sound catalogue {path}: table size {first} does not fit the file")
    for i in range(count):
        raw_offset, size = struct.unpack_from("<II", blob, 8 * i)
        offset = raw_offset & ~_CAT_NEW_FORMAT
        if offset >= len(blob):
            raise InputError(f"corrupt sound catalogue {path}: entry {i} starts past the end")
        name_len = blob[offset]
        text = blob[offset + 1 : offset + 1 + name_len].split(b"\0", 1)[0].decode("utf-8", "replace")
        start = offset + 1 + name_len
        data = blob[start : start + size]
        if len(data) != size or data[:4] != b"RIFF":
            raise InputError(f"corrupt sound catalogue {path}: entry {i} ({text[:40]!r}) is not a WAV")
        yield Member(f"{i:03d}_{_slug(cat_title(text))}.wav", data, note=text)


def cat_title(note: str) -> str:
    """The quoted title at the start of an OpenSFX description (``"Cow". Original ...`` -> ``Cow``)."""
    match = re.match(r'\s*"([^"]+)"', note)
    return match.group(1) if match else note.split(".")[0]


def cat_license(note: str) -> str | None:
    """The licence an OpenSFX description names (``... License: Creative Commons Zero 1.0.``), if any."""
    match = re.search(r"Licen[cs]e:\s*(.+?)\.?\s*$", note)
    return match.group(1).strip() if match else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "sound"


def make_wad(lumps: list[tuple[str, bytes]]) -> bytes:
    """Build a PWAD holding the given (name, data) lumps; names are cut to 8 ASCII characters."""
    body = b"".join(data for _, data in lumps)
    directory = b""
    pos = 12
    for name, data in lumps:
        directory += struct.pack("<ii8s", pos, len(data), name.encode("ascii")[:8])
        pos += len(data)
    return b"PWAD" + struct.pack("<ii", len(lumps), 12 + len(body)) + body + directory


def make_dmx(samples: np.ndarray, rate: int) -> bytes:
    """Encode float samples in [-1, 1] as a DMX sound lump (with the 16-sample pads)."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 127.0 + 128.0), 0, 255).astype(np.uint8)
    pad = np.full(_DMX_PAD, 128, dtype=np.uint8)
    body = np.concatenate([pad, pcm, pad]).tobytes()
    return struct.pack("<HHI", _DMX_FORMAT, rate, len(body)) + body
