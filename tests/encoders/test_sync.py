"""Sync encoder: audio input on the video timeline, the networks, checkpoints, per-frame features for any
source frame rate, and the AV-offset estimator recovering known shifts (a tiny model trained here on
flashes with clicks, and the bundled model on the sample video)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from v2a.encoders import sync
from v2a.encoders.motion import motion_from_frames
from v2a.encoders.sync import (
    AUDIO_STEPS,
    SyncEncoder,
    SyncNet,
    audio_frames,
    estimate_offset,
    lag_scores,
    sync_config,
)
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.writer import write_video
from v2a.train.sync_data import SyncClips, sample_batch
from v2a.train.sync_trainer import sync_loss

SR = 24_000
TINY = sync_config("tiny")


# ---- synthetic media: squares that flash with a click ----


def _event_times(rng: np.random.Generator, duration_s: float, *, grid_s: float) -> np.ndarray:
    """Irregular event times on a grid, at least 0.4 s apart, away from the clip ends."""
    times, t = [], 0.3 + rng.uniform(0, 0.5)
    while t < duration_s - 0.4:
        times.append(round(t / grid_s) * grid_s)
        t += rng.uniform(0.4, 1.2)
    return np.asarray(times)


def _flash_frames(
    events: np.ndarray, times_s: np.ndarray, rng: np.random.Generator, size: int = 64
) -> np.ndarray:
    """A square at a random place for 0.12 s from each event, on a grey background."""
    frames = np.full((len(times_s), size, size, 3), 70, np.uint8)
    for e in events:
        y, x = rng.integers(4, size - 16, 2)
        shown = (times_s >= e - 1e-9) & (times_s < e + 0.12 - 1e-9)
        frames[shown, y : y + 12, x : x + 12] = 230
    return frames


def _clicks(events: np.ndarray, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    wav = np.zeros(round(duration_s * SR), np.float32)
    n = 480
    burst = rng.standard_normal(n).astype(np.float32) * np.exp(-np.arange(n) / 80).astype(np.float32)
    for e in events:
        i = round(e * SR)
        wav[i : i + n] += 0.5 * burst[: len(wav) - i]
    return wav


def _delay(wav: np.ndarray, shift_s: float) -> np.ndarray:
    """The track delayed by ``shift_s`` (negative: advanced), same length, silence where nothing is left."""
    k = round(shift_s * SR)
    out = np.zeros_like(wav)
    if k >= 0:
        out[k:] = wav[: len(wav) - k]
    else:
        out[:k] = wav[-k:]
    return out


@pytest.fixture(scope="module")
def trained_tiny() -> SyncEncoder:
    """A tiny sync net trained for a few seconds on flash + click clips (25 fps, events every 40 ms)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: threads only add contention on a busy machine
    clips = SyncClips()
    for i in range(16):
        events = _event_times(rng, 6.0, grid_s=0.04)
        times = np.arange(150) / 25
        motion = motion_from_frames(_flash_frames(events, times, rng), times, spec=TINY.motion)
        clips.ids.append(str(i))
        clips.motion.append(motion.features.astype(np.float16))
        clips.mel.append(audio_frames(_clicks(events, 6.0, rng), SR, 150, config=TINY).astype(np.float16))
    net = SyncNet(TINY)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        batch = sample_batch(clips, 16, rng, config=TINY, max_lag=25)
        video, audio, scale = net(batch.motion, batch.mel)
        loss, _ = sync_loss(video, audio, scale, batch.shift)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return SyncEncoder(net)


# ---- audio input ----


@pytest.mark.parametrize("rate", [24_000, 44_100])
def test_audio_frames_put_a_click_on_its_video_time(rate):
    wav = np.zeros(2 * rate, np.float32)
    click_s = 0.83  # a 4 ms click centred here
    wav[round(click_s * rate) - rate // 500 : round(click_s * rate) + rate // 500] = 0.8
    mel = audio_frames(wav, rate, 50, config=TINY)
    assert mel.shape == (TINY.spec.n_mels, AUDIO_STEPS * 50)
    step_s = 1 / (25 * AUDIO_STEPS)  # column i is the mel window centred at i * 10 ms
    assert abs(np.argmax(mel.mean(axis=0)) * step_s - click_s) <= 1.01 * step_s


def test_audio_frames_cut_long_and_pad_short_tracks_with_silence():
    floor = math.log(TINY.spec.log_floor)
    loud = 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)  # 1 s of noise
    short = audio_frames(loud, SR, 50, config=TINY)  # the video lasts 2 s
    assert short[:, 10:90].min() > floor + 1
    np.testing.assert_allclose(short[:, 110:], floor)
    long = audio_frames(np.tile(loud, 3), SR, 25, config=TINY)
    assert long.shape[1] == 100 and long.min() > floor + 1


# ---- network ----


def test_lag_scores_match_a_direct_sum():
    gen = torch.Generator().manual_seed(0)
    video = torch.nn.functional.normalize(torch.randn(2, 7, 5, generator=gen), dim=-1)
    audio = torch.nn.functional.normalize(torch.randn(2, 7 + 6, 5, generator=gen), dim=-1)
    got = lag_scores(video, audio)
    assert got.shape == (2, 7)
    for b in range(2):
        for lag in range(-3, 4):
            want = sum(float(video[b, k] @ audio[b, k + 3 + lag]) for k in range(7)) / 7
            assert float(got[b, lag + 3]) == pytest.approx(want, abs=1e-5)


def test_towers_give_per_frame_embeddings_and_chunking_changes_nothing(monkeypatch):
    torch.manual_seed(0)
    config = sync_config("small")
    net = SyncNet(config)
    motion = np.random.default_rng(0).standard_normal((60, 3, 16, 16)).astype(np.float32)
    mel = np.random.default_rng(1).standard_normal((100, AUDIO_STEPS * 60)).astype(np.float32) - 4
    v, a, scale = net(torch.from_numpy(motion)[None], torch.from_numpy(mel)[None])
    assert v.shape == (1, 60, config.dim) and a.shape == (1, 60, config.dim)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(1, 60))
    assert float(scale.detach()) == pytest.approx(10.0)
    encoder = SyncEncoder(net)
    whole_v, whole_a = encoder.video_embeddings(motion), encoder.audio_embeddings(mel, phase=2)
    monkeypatch.setattr(sync, "_CHUNK_FRAMES", 7)
    torch.testing.assert_close(encoder.video_embeddings(motion), whole_v, atol=1e-5, rtol=0)
    torch.testing.assert_close(encoder.audio_embeddings(mel, phase=2), whole_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(whole_v, v[0], atol=1e-5, rtol=0)


def test_checkpoint_round_trip_and_missing_default(tmp_path, monkeypatch):
    encoder = SyncEncoder(SyncNet(TINY))
    path = encoder.save(tmp_path / "sync", meta={"step": 3})
    again = SyncEncoder.from_checkpoint(path)
    assert again.config == TINY
    for key, value in encoder.net.state_dict().items():
        torch.testing.assert_close(again.net.state_dict()[key], value)
    monkeypatch.setattr(sync, "DEFAULT_CHECKPOINT", tmp_path / "nowhere")
    with pytest.raises(ModelUnavailableError, match="v2a train sync"):
        SyncEncoder.from_checkpoint()
    with pytest.raises(InputError, match="no checkpoint"):
        SyncEncoder.from_checkpoint(tmp_path / "nowhere")
    with pytest.raises(InputError, match="unknown sync preset"):
        sync_config("huge")


# ---- per-frame features on the timeline ----


def _square_video(path: Path, fps: float, times_s: np.ndarray, *, vfr: bool = False) -> Path:
    """A square on screen from 1.0 s until 2.0 s (96 x 96 frames)."""
    frames = np.full((len(times_s), 96, 96, 3), 80, np.uint8)
    frames[(times_s >= 1.0 - 1e-9) & (times_s < 2.0 - 1e-9), 30:60, 20:50] = 240
    return write_video(path, frames, fps=fps, timestamps_s=times_s if vfr else None, crf=10)


def test_features_follow_timestamps_for_any_source_rate(tmp_path):
    torch.manual_seed(1)
    encoder = SyncEncoder(SyncNet(sync_config("small")))
    ref = encoder.encode_video(_square_video(tmp_path / "25.mp4", 25.0, np.arange(75) / 25))
    assert ref.features.shape == (75, 128)
    np.testing.assert_allclose(ref.times_s, np.arange(75) / 25)
    vfr_times = np.sort(np.r_[np.random.default_rng(2).uniform(0, 2.99, 70), 0.0, 1.0, 2.0])
    sources = {
        "30": (_square_video(tmp_path / "30.mp4", 30.0, np.arange(90) / 30), 0),
        "vfr": (_square_video(tmp_path / "vfr.mp4", 25.0, np.unique(vfr_times), vfr=True), 0),
        # at 23.976 fps the square appears with the frame at 1.001 s and leaves at 2.002 s: one frame later
        "23.976": (_square_video(tmp_path / "24.mp4", 24000 / 1001, np.arange(72) * 1001 / 24000), 1),
    }
    for name, (path, lag) in sources.items():
        got = encoder.encode_video(path)
        np.testing.assert_allclose(got.times_s, np.arange(len(got)) / 25, err_msg=name)
        edge = encoder.config.receptive_frames  # frames that see the clip's ends differently
        n = min(len(got), len(ref)) - lag - 2 * edge
        cos = (got.features[lag + edge : lag + edge + n] * ref.features[edge : edge + n]).sum(axis=1)
        assert cos.min() > 0.95, (name, cos.min())
        wrong = (got.features[lag + edge + 1 : lag + edge + n] * ref.features[edge : edge + n - 1]).sum(
            axis=1
        )
        assert wrong.min() < 0.9, name  # the features do change at the events: the check is sharp


# ---- offset estimation ----


def _flash_video(tmp_path: Path, name: str, *, shift_s: float, fps: float = 30.0) -> tuple[Path, np.ndarray]:
    """An 8 s flash + click video at ``fps`` whose own track is delayed by ``shift_s``; also its unshifted
    track."""
    rng = np.random.default_rng(7)
    events = _event_times(rng, 8.0, grid_s=0.2)  # on both the 25 and the 30 fps grid
    times = np.arange(round(8 * fps)) / fps
    wav = _clicks(events, 8.0, rng)
    path = write_video(
        tmp_path / name,
        _flash_frames(events, times, rng),
        fps=fps,
        audio=_delay(wav, shift_s),
        sample_rate=SR,
    )
    return path, wav


def test_trained_estimator_recovers_known_shifts(tmp_path, trained_tiny):
    path, wav = _flash_video(tmp_path, "late.mp4", shift_s=0.2)
    est = estimate_offset(path, encoder=trained_tiny, max_offset_s=1.0)
    assert est.offset_s == pytest.approx(0.2, abs=0.05)
    assert 0.0 <= est.confidence <= 1.0 and est.confidence > 0.5
    assert len(est.lags_s) == len(est.curve) == 201
    assert est.lags_s[np.argmax(est.curve)] == pytest.approx(est.offset_s, abs=0.01)
    early = estimate_offset(path, _delay(wav, -0.32), SR, encoder=trained_tiny, max_offset_s=1.0)
    assert early.offset_s == pytest.approx(-0.32, abs=0.05)
    assert early.to_dict()["offset_s"] == pytest.approx(early.offset_s, abs=1e-4)
    flac = tmp_path / "early.wav"
    import soundfile

    soundfile.write(flac, _delay(wav, 0.64), SR)
    assert estimate_offset(path, flac, encoder=trained_tiny, max_offset_s=1.0).offset_s == pytest.approx(
        0.64, abs=0.05
    )


def test_unrelated_audio_gets_low_confidence(tmp_path, trained_tiny):
    path, _ = _flash_video(tmp_path, "v.mp4", shift_s=0.0)
    silent = np.zeros(8 * SR, np.float32)
    assert estimate_offset(path, silent, SR, encoder=trained_tiny, max_offset_s=1.0).confidence < 0.3


def test_estimator_errors_are_one_clear_line(tmp_path, trained_tiny):
    path, wav = _flash_video(tmp_path, "v.mp4", shift_s=0.0)
    with pytest.raises(InputError, match="sample_rate"):
        estimate_offset(path, wav, encoder=trained_tiny)
    with pytest.raises(InputError, match="max_offset_s"):
        estimate_offset(path, encoder=trained_tiny, max_offset_s=0)
    mute = write_video(tmp_path / "mute.mp4", np.zeros((50, 32, 32, 3), np.uint8), fps=25.0)
    with pytest.raises(InputError, match="no audio stream"):
        estimate_offset(mute, encoder=trained_tiny)
    blip = write_video(tmp_path / "blip.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=25.0)
    with pytest.raises(InputError, match="too short"):
        estimate_offset(blip, wav, SR, encoder=trained_tiny)


def test_bundled_estimator_recovers_shifts_of_the_sample_video(tmp_path, sample_video):
    from v2a.io.audio import load_video_audio
    from v2a.io.video import read_video

    wav = load_video_audio(sample_video, sr=SR)
    frames = read_video(sample_video, 25.0)[0].frames
    for shift in (0.0, 0.5, -0.2):
        path = write_video(
            tmp_path / f"s{shift}.mp4", frames, fps=25.0, audio=_delay(wav, shift), sample_rate=SR
        )
        assert estimate_offset(path).offset_s == pytest.approx(shift, abs=0.1), shift


def test_a_window_of_a_file_reads_only_that_window_and_matches_a_full_read(sample_video):
    encoder = SyncEncoder.from_checkpoint()
    full = encoder.encode_video(sample_video)
    lead = (encoder.config.receptive_frames + 2) / encoder.config.fps
    part = encoder.encode_video(sample_video, start_s=2.0 - lead, duration_s=2.0 + 2 * lead)
    inner = (part.times_s >= 2.0 - 1e-6) & (part.times_s < 4.0 - 1e-6)
    assert part.times_s[0] == pytest.approx(2.0 - lead, abs=0.021)  # times stay on the video timeline
    assert inner.sum() == 50 and len(part) < len(full) / 2
    same = np.isin(np.round(full.times_s, 3), np.round(part.times_s[inner], 3))
    np.testing.assert_allclose(part.features[inner], full.features[same], atol=2e-3)
