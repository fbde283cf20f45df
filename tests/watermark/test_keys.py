"""Keys: public ids and the keyed unit layout."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.errors import InputError
from v2a.watermark import grid
from v2a.watermark.keys import DEFAULT_KEY, HALF_UNITS, SYNC_UNITS, key_id, layout
from v2a.watermark.payload import CODED_BITS, encode


def test_key_id_is_short_stable_and_hides_the_key():
    assert key_id(DEFAULT_KEY) == key_id(DEFAULT_KEY.encode())
    assert len(key_id("secret")) == 8 and key_id("secret") != key_id("secret2")
    assert "secret" not in key_id("secret")
    for bad in ("", b"", None, 3):
        with pytest.raises(InputError, match="key"):
            key_id(bad)


def test_layout_puts_every_coded_bit_once_in_each_half_block():
    keyed = layout("k")
    assert keyed.signs.shape == (grid.UNIT_ROWS, grid.UNIT_COLS)
    assert int(keyed.sync.sum()) == SYNC_UNITS
    for half in (keyed.role.reshape(-1)[:HALF_UNITS], keyed.role.reshape(-1)[HALF_UNITS:]):
        assert sorted(half[half >= 0].tolist()) == list(range(CODED_BITS))
    assert np.array_equal(layout("k").signs, keyed.signs)
    assert not np.array_equal(layout("other").signs, keyed.signs)


def test_cell_marks_are_balanced_checkerboards():
    marks = layout("k").cell_marks(encode(b"\x00\x01\x02\x03"))
    assert marks.shape == (grid.BLOCK_CHIPS, grid.BANDS)
    assert set(np.unique(marks)) == {-1.0, 1.0}
    squares = marks.reshape(grid.UNIT_ROWS, 2, grid.UNIT_COLS, 2)
    assert np.all(squares.sum(axis=(1, 3)) == 0)  # each 2 x 2 unit sums to zero along time and frequency
    assert np.all(squares[:, 0, :, 0] == -squares[:, 1, :, 0])
