from __future__ import annotations

import av
import numpy as np
import pytest

from v2a.io.writer import write_video


def _frames(n: int, h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def test_vfr_timestamps_and_rotation_survive(tmp_path):
    times = np.cumsum(np.random.default_rng(1).uniform(0.02, 0.09, 30)) + 0.5
    for codec, ext in [("libx264", ".mp4"), ("libvpx-vp9", ".webm"), ("mpeg4", ".mkv")]:
        path = write_video(tmp_path / f"v{ext}", _frames(30), timestamps_s=times, codec=codec, rotation=90)
        with av.open(str(path)) as container:
            decoded = list(container.decode(video=0))
        got = np.array([float(f.time) for f in decoded])
        # intervals are exact to the container's clock (matroska: 1 ms); the absolute start may move by
        # under 1 ms in mp4, whose edit list is stored in the 1/1000 s movie time scale
        assert got.size == 30
        assert np.abs(np.diff(got) - np.diff(times)).max() < 1.1e-3, codec
        assert np.abs(got - times).max() < 2e-3, codec
        assert decoded[0].rotation == 90


def test_audio_track_and_constant_rate_containers(tmp_path):
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(24_000) / 24_000).astype(np.float32)
    path = write_video(tmp_path / "a.avi", _frames(25), fps=25, codec="mpeg4", audio=tone)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert sum(1 for _ in container.decode(video=0)) == 25
    with pytest.raises(ValueError, match="constant frame rate"):
        write_video(tmp_path / "b.avi", _frames(3), timestamps_s=[0, 0.1, 0.3], codec="mpeg4")
    assert not (tmp_path / "b.avi").exists()
    with pytest.raises(ValueError, match="multiple of 90"):
        write_video(tmp_path / "c.mp4", _frames(3), rotation=45)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi"], "failed writes must leave no files"
