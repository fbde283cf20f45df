"""Fuzz the video reader with damaged files: it must return valid frames or raise InputError, never
another exception, and never hang."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media import make_counter_video
from v2a.errors import InputError
from v2a.io.video import VideoLimits, read_video

SEEDS = [  # (name, codec, audio): small real videos the damage starts from
    ("seed.mp4", "libx264", True),
    ("seed.webm", "libvpx-vp9", True),
    ("seed.mkv", "libx264", False),
    ("seed.avi", "mpeg4", False),
    ("seed.gif", "gif", False),
    ("seed-faststart.mp4", "libx264", True),  # seed.mp4 with its index first
]
FASTSTART = "seed-faststart.mp4"
LIMITS = VideoLimits(max_width=4096, max_height=4096, max_pixels=4096 * 4096, max_duration_s=60.0)
SECONDS_PER_EXAMPLE = 20


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    made = {
        name: make_counter_video(
            folder / name, fps=25, num_frames=30, codec=codec, width=64, height=48, audio=audio, bframes=2
        )
        for name, codec, audio in SEEDS
        if name != FASTSTART
    }
    _faststart(made["seed.mp4"], folder / FASTSTART)
    return {name: (folder / name).read_bytes() for name, _, _ in SEEDS}


def _faststart(source: Path, out: Path) -> None:
    """Remux with the index (moov) first, as web MP4s are: damage then hits the packets, not the index."""
    with av.open(str(source)) as src, av.open(str(out), "w", options={"movflags": "faststart"}) as dst:
        mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)


@st.composite
def damage(draw, size: int) -> list[tuple[str, int, bytes]]:
    """A few edits: truncate at a point, overwrite bytes with noise, or insert noise."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "zero"]))
        at = draw(st.integers(0, max(0, size - 1)))
        noise = draw(st.binary(min_size=1, max_size=64))
        edits.append((kind, at, noise))
    return edits


def _apply(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for kind, at, noise in edits:
        at = min(at, len(buf))
        if kind == "truncate":
            del buf[at:]
        elif kind == "overwrite":
            buf[at : at + len(noise)] = noise
        elif kind == "insert":
            buf[at:at] = noise
        else:
            buf[at : at + 16 * len(noise)] = bytes(min(16 * len(noise), len(buf) - at))
    return bytes(buf)


@contextlib.contextmanager
def _time_limit(seconds: int):
    def _raise(signum, frame):
        raise TimeoutError(f"the reader took more than {seconds} s on a damaged file")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_read(path: Path) -> None:
    with _time_limit(SECONDS_PER_EXAMPLE):
        try:
            seqs = read_video(path, [8, 25], size=24, limits=LIMITS)
        except InputError as exc:
            message = str(exc)
            assert message and "\n" not in message and path.name in message, message
            return
    assert len(seqs) == 2
    for seq in seqs:
        assert seq.frames.dtype == np.uint8 and seq.frames.shape[1:] == (24, 24, 3)
        assert len(seq) >= 1 and seq.frames.shape[0] == len(seq)
        np.testing.assert_allclose(seq.times_s, np.arange(len(seq)) / seq.fps, atol=1e-9)


def _fuzz(seeds, tmp_path_factory, name: str, data) -> None:
    source = seeds[name]
    edits = data.draw(damage(len(source)))
    path = tmp_path_factory.getbasetemp() / f"damaged{Path(name).suffix}"
    path.write_bytes(_apply(source, edits))
    _check_read(path)


SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture],
}


@settings(max_examples=50, derandomize=True, **SETTINGS)
@given(name=st.sampled_from([s[0] for s in SEEDS]), data=st.data())
def test_damaged_files_give_frames_or_input_error(seeds, tmp_path_factory, name, data):
    _fuzz(seeds, tmp_path_factory, name, data)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(name=st.sampled_from([s[0] for s in SEEDS]), data=st.data())
def test_damaged_files_long_random_campaign(seeds, tmp_path_factory, name, data):
    _fuzz(seeds, tmp_path_factory, name, data)


@pytest.mark.parametrize("name", [s[0] for s in SEEDS])
def test_truncated_at_many_points(seeds, tmp_path, name):
    """Cut each seed at 20 evenly spaced points, from the first bytes to all but the last one."""
    source = seeds[name]
    for fraction in np.linspace(0.0, 1.0, 20, endpoint=False)[1:]:
        path = tmp_path / f"cut{Path(name).suffix}"
        path.write_bytes(source[: max(1, int(len(source) * fraction))])
        _check_read(path)
