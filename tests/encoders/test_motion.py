"""Motion input of the sync encoder: 25 fps by timestamp from any source rate, direction and streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2a.encoders.motion import CHANNELS, MotionSpec, motion_from_frames, video_motion
from v2a.io.video import read_video
from v2a.io.writer import write_video

DIFF, FLOW_X = CHANNELS.index("diff"), CHANNELS.index("flow_x")


def _square_frames(times_s: np.ndarray, *, on_s: float, off_s: float, size: int = 96) -> list[np.ndarray]:
    """Grey frames; a white square is on screen from ``on_s`` until ``off_s``."""
    frames = []
    for t in times_s:
        img = np.full((size, size, 3), 90, np.uint8)
        if on_s - 1e-9 <= t < off_s - 1e-9:
            img[30:60, 30:60] = 255
        frames.append(img)
    return frames


def _moving_frames(num: int, *, speed: int, size: int = 64) -> np.ndarray:
    """A textured block moving ``speed`` pixels per frame to the right on a dark background."""
    rng = np.random.default_rng(0)
    block = rng.integers(120, 255, (16, 16, 3), dtype=np.uint8)
    frames = np.full((num, size, size, 3), 30, np.uint8)
    for k in range(num):
        x = 8 + speed * k
        frames[k, 24:40, x : x + 16] = block
    return frames


# source times: 23.976 fps, 30 fps, and variable frame rate (intervals 20-60 ms)
_VFR = np.cumsum(np.r_[0.0, np.random.default_rng(3).uniform(0.02, 0.06, 79)])
SOURCES = {
    "23.976": (24000 / 1001, np.arange(72) * 1001 / 24000),
    "30": (30.0, np.arange(90) / 30),
    "vfr": (25.0, _VFR),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_motion_is_sampled_by_timestamp_at_25_fps(tmp_path, name):
    fps, times = SOURCES[name]
    on_s, off_s = float(times[27]), float(times[50])  # appears with source frame 27, goes with 50
    path = write_video(
        tmp_path / f"{name}.mp4",
        _square_frames(times, on_s=on_s, off_s=off_s),
        fps=fps,
        timestamps_s=times if name == "vfr" else None,
        crf=10,
    )
    motion = video_motion(path)
    duration = times[-1] + (1 / fps if name != "vfr" else times[-1] - times[-2])
    assert len(motion) == math.ceil(duration * 25 - 1e-6)
    np.testing.assert_allclose(motion.times_s, np.arange(len(motion)) / 25)
    energy = motion.features[:, DIFF].mean(axis=(1, 2))
    # the 25 fps frame that first shows a change is the first one at or after the change's time
    expected = sorted([math.ceil(on_s * 25 - 1e-6), math.ceil(off_s * 25 - 1e-6)])
    assert sorted(np.argsort(energy)[-2:].tolist()) == expected
    assert energy[expected].min() > 20 * np.median(energy)
    assert np.all(motion.features[0] == 0)  # frame 0 has no predecessor


def test_flow_gives_direction_and_static_frames_give_nothing():
    right = motion_from_frames(_moving_frames(10, speed=2))
    left = motion_from_frames(_moving_frames(10, speed=2)[:, :, ::-1])
    assert right.features.shape == (10, 3, 16, 16)
    np.testing.assert_allclose(right.times_s, np.arange(10) / 25)
    moving = right.features[1:, DIFF].sum(axis=(1, 2)) > 0
    assert moving.all()
    assert right.features[1:, FLOW_X].sum() > 1.0 and left.features[1:, FLOW_X].sum() < -1.0
    still = motion_from_frames(np.repeat(_moving_frames(1, speed=0), 5, axis=0))
    assert np.abs(still.features).max() == 0


def test_streamed_file_motion_equals_motion_of_the_read_frames(tmp_path):
    # 12 s at 25 fps: more than one 256-frame chunk, so the previous frame is carried across chunks
    frames = np.concatenate([_moving_frames(40, speed=1)] * 8)[:300]
    path = write_video(tmp_path / "long.mp4", frames, fps=25.0, crf=10)
    streamed = video_motion(path)
    seq = read_video(path, 25.0, size=(64, 64), resize="stretch")[0]
    whole = motion_from_frames(seq.frames, seq.times_s)
    assert len(streamed) == 300
    np.testing.assert_array_equal(streamed.features, whole.features)
    window = video_motion(path, start_s=4.0, duration_s=2.0)
    np.testing.assert_allclose(window.times_s, 4.0 + np.arange(50) / 25)


def test_frames_of_other_sizes_are_scaled_and_bad_frames_refused():
    big = np.repeat(np.repeat(_moving_frames(6, speed=2), 2, axis=1), 2, axis=2)  # (6, 128, 128, 3)
    assert motion_from_frames(big).features.shape == (6, 3, 16, 16)
    coarse = motion_from_frames(big, spec=MotionSpec(size=32, grid=4))
    assert coarse.features.shape == (6, 3, 4, 4)
    with pytest.raises(ValueError, match="uint8"):
        motion_from_frames(big.astype(np.float32))
    with pytest.raises(ValueError, match="frames"):
        motion_from_frames(big[0])
    with pytest.raises(ValueError, match="match"):
        motion_from_frames(big, np.arange(3.0))
    with pytest.raises(ValueError, match="MotionSpec"):
        MotionSpec(size=30, grid=16)
