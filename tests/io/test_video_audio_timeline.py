"""A video's own soundtrack read on the video timeline (time 0 = first frame)."""

from __future__ import annotations

import numpy as np
import pytest

from media import make_counter_video
from v2a.errors import InputError
from v2a.io.audio import load_video_audio
from v2a.io.video import probe

SR = 24_000


def _click_track(seconds: float, click_at_s: float) -> np.ndarray:
    wav = np.zeros(round(seconds * SR), np.float32)
    start = round(click_at_s * SR) - 120  # the click's peak is at click_at_s
    wav[start : start + 240] = np.hanning(240).astype(np.float32) * 0.8
    return wav


def _click_time(wav: np.ndarray) -> float:
    return float(np.argmax(np.abs(wav))) / SR


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_audio_aligned_to_first_frame_when_video_starts_late(tmp_path, ext):
    # audio starts at container time 0, video at 1.5 s: a click at audio time 2.0 s is at video time 0.5 s
    path = make_counter_video(
        tmp_path / f"late{ext}",
        fps=25,
        num_frames=75,
        start_s=1.5,
        audio=_click_track(4.0, 2.0),
        sample_rate=SR,
    )
    info = probe(path)
    assert info.audio_start_s == pytest.approx(-1.5, abs=0.002)
    wav = load_video_audio(path, sr=SR)
    assert wav.shape == (round(info.duration_s * SR),)
    assert _click_time(wav) == pytest.approx(0.5, abs=0.002)
    window = load_video_audio(path, sr=SR, start_s=0.25, duration_s=1.0)
    assert window.shape == (SR,)
    assert _click_time(window) == pytest.approx(0.25, abs=0.002)


def test_short_soundtrack_is_padded_and_missing_audio_is_an_error(tmp_path):
    path = make_counter_video(
        tmp_path / "short.mp4", fps=25, num_frames=50, audio=_click_track(1.0, 0.3), sample_rate=SR
    )
    wav = load_video_audio(path, sr=16_000)
    assert wav.shape == (32_000,)
    assert float(np.argmax(np.abs(wav))) / 16_000 == pytest.approx(0.3, abs=0.002)
    assert np.abs(wav[20_000:]).max() < 1e-3  # silence after the soundtrack ends (AAC tail aside)
    silent = make_counter_video(tmp_path / "mute.mp4", fps=25, num_frames=10)
    with pytest.raises(InputError, match="no audio stream"):
        load_video_audio(silent, sr=SR)
    with pytest.raises(InputError, match="outside the video"):
        load_video_audio(path, sr=SR, start_s=5.0)
