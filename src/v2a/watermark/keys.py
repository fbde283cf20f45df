"""Watermark keys: the secret that seeds the pattern, its public id, and the keyed unit layout.

The key seeds a pseudo-random sign (+1/-1) for every unit (2 x 2 cells) of the block and decides which
units carry the sync pattern (known signs, used to detect and align) and which carry each coded payload
bit (the sign times the bit; every bit once in each half block). Without the key the pattern is noise:
a wrong key correlates with nothing, which is what makes the detector's p-value exact (see ``detect``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from v2a.errors import InputError
from v2a.watermark import grid
from v2a.watermark.payload import CODED_BITS

DEFAULT_KEY = "foley-public-watermark-v1"  # the public model's key: anyone can detect its mark
UNITS = grid.UNIT_ROWS * grid.UNIT_COLS  # 640 units (2 x 2 cells) per block
HALF_UNITS = UNITS // 2  # each half block carries every coded bit once (162 units) and 158 sync units
SYNC_UNITS = UNITS - 2 * CODED_BITS


def key_bytes(key: str | bytes) -> bytes:
    """The key as bytes (UTF-8 for text).

    Raises:
        InputError: the key is empty or neither text nor bytes.
    """
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes | bytearray) or len(key) == 0:
        raise InputError("watermark key must be a non-empty string or bytes")
    return bytes(key)


def key_id(key: str | bytes) -> str:
    """Public 8-hex-digit id of a key (a hash: it tells keys apart without revealing them)."""
    return hashlib.sha256(b"v2a-watermark-key-id\0" + key_bytes(key)).hexdigest()[:8]


@dataclass(frozen=True)
class Layout:
    """The keyed pattern of one block, in units of 2 x 2 cells (see ``grid``).

    Attributes:
        signs: (UNIT_ROWS, UNIT_COLS) float32 pseudo-random +1/-1 per unit.
        role: (UNIT_ROWS, UNIT_COLS) int16: -1 for a sync unit, else the coded payload bit it carries.
    """

    signs: np.ndarray
    role: np.ndarray

    @property
    def sync(self) -> np.ndarray:
        """(UNIT_ROWS, UNIT_COLS) bool mask of the sync units."""
        return self.role < 0

    def unit_marks(self, coded: np.ndarray) -> np.ndarray:
        """(UNIT_ROWS, UNIT_COLS) +1/-1 value of each unit in a block carrying ``coded`` (CODED_BITS,) bits."""
        bits = np.where(self.sync, 1.0, 2.0 * coded[np.maximum(self.role, 0)] - 1.0)
        return (self.signs * bits).astype(np.float32)

    def cell_marks(self, coded: np.ndarray) -> np.ndarray:
        """(BLOCK_CHIPS, BANDS) +1/-1 mark of every cell: unit value times the 2 x 2 checkerboard."""
        return checkerboard(self.unit_marks(coded))


def checkerboard(units: np.ndarray) -> np.ndarray:
    """(2 R, 2 C) float32 cell marks of (R, C) unit values: each unit a 2 x 2 square marked +u -u / -u +u."""
    cells = np.repeat(np.repeat(units, 2, axis=0), 2, axis=1)
    rows, cols = np.indices(cells.shape)
    return (cells * (1.0 - 2.0 * ((rows + cols) % 2))).astype(np.float32)


def keyed_rng(domain: bytes, key: str | bytes) -> np.random.Generator:
    """Random generator seeded by the key and a domain tag, so each use of one key draws independently."""
    seed = int.from_bytes(hashlib.sha256(domain + b"\0" + key_bytes(key)).digest()[:16], "little")
    return np.random.default_rng(seed)


def layout(key: str | bytes) -> Layout:
    """The unit layout for ``key`` (deterministic; cached)."""
    return _layout(key_bytes(key))


@functools.cache
def _layout(key: bytes) -> Layout:
    rng = keyed_rng(b"v2a-watermark-pattern", key)
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=UNITS)
    role = np.full(UNITS, -1, dtype=np.int16)
    for half in (0, 1):  # units are numbered row by row, so a half block is a contiguous range
        payload_units = half * HALF_UNITS + rng.permutation(HALF_UNITS)[:CODED_BITS]
        role[payload_units] = np.arange(CODED_BITS, dtype=np.int16)
    shape = (grid.UNIT_ROWS, grid.UNIT_COLS)
    return Layout(signs=signs.reshape(shape), role=role.reshape(shape))
