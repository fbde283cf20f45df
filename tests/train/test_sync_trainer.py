"""Sync-encoder training: cached inputs, shifted pairs that keep sound and picture aligned, the loss, and a
tiny run that validates, saves a loadable release and resumes where it stopped."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from v2a.data.manifest import ClipRow, write_manifest
from v2a.encoders.sync import AUDIO_STEPS, SyncEncoder, sync_config
from v2a.errors import InputError
from v2a.io.writer import write_video
from v2a.model.checkpoint import load_train_state
from v2a.train.loop import read_metrics
from v2a.train.sync_data import SyncClips, sample_batch, select_rows, shift_audio
from v2a.train.sync_trainer import SyncTrainConfig, sync_loss, train_sync

SR = 24_000
TINY = sync_config("tiny")
FLOOR = math.log(TINY.spec.log_floor)


def _flash_clip(folder: Path, name: str, fps: float, seed: int, *, own_track: bool) -> ClipRow:
    """A 3 s clip: squares flash with clicks; the sound goes to a FLAC or into the video itself."""
    rng = np.random.default_rng(seed)
    times = np.arange(round(3 * fps)) / fps
    frames = np.full((len(times), 48, 48, 3), 60, np.uint8)
    wav = np.zeros(3 * SR, np.float32)
    for e in (0.4 + rng.uniform(0, 0.3), 1.3 + rng.uniform(0, 0.3), 2.2 + rng.uniform(0, 0.3)):
        frames[(times >= e) & (times < e + 0.12), 10:30, 10:30] = 240
        wav[round(e * SR) : round(e * SR) + 240] = 0.5 * rng.standard_normal(240)
    video = write_video(
        folder / f"{name}.mp4", frames, fps=fps, audio=wav if own_track else None, sample_rate=SR
    )
    audio = None
    if not own_track:
        audio = folder / f"{name}.flac"
        sf.write(audio, wav, SR)
    split = "val" if name.startswith("val") else "train"
    return ClipRow(
        id=name, video=str(video), audio=audio and str(audio), duration_s=3.0, fps=fps, split=split
    )


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    rows = [
        _flash_clip(root, "a", 30.0, 0, own_track=False),
        _flash_clip(root, "b", 20.0, 1, own_track=True),
        _flash_clip(root, "c", 25.0, 2, own_track=False),
        _flash_clip(root, "val0", 24.0, 3, own_track=False),
    ]
    (root / "broken.mp4").write_bytes(b"not a video")
    rows.append(ClipRow(id="broken", video=str(root / "broken.mp4"), audio=None, duration_s=3.0, fps=25.0))
    return write_manifest(root / "manifest.jsonl", rows)


def _config(manifest: Path, run_dir: Path, **changes) -> SyncTrainConfig:
    base = SyncTrainConfig(
        data=(str(manifest),),
        run_dir=str(run_dir),
        preset="tiny",
        batch_size=4,
        max_offset_s=0.5,
        log_every=1,
        checkpoint_minutes=60.0,
        warmup_steps=2,
        ema_decay=0.9,
        device="cpu",
    )
    return dataclasses.replace(base, **changes)


def test_tiny_run_caches_validates_saves_and_resumes(manifest: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    release = train_sync(_config(manifest, run_dir, max_steps=3))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss/sync" in r] == [1, 2, 3]
    val = [r for r in records if "val/acc_100ms" in r]
    assert len(val) == 1 and 0 <= val[0]["val/acc_100ms"] <= 1 and val[0]["val/mae_s"] >= 0
    assert load_train_state(run_dir / "last")["step"] == 3
    assert (run_dir / "losses.png").stat().st_size > 0
    cached = sorted((run_dir / "features").glob("*.npz"))
    assert len(cached) == 4  # the broken clip is skipped, the others computed once
    stamps = [p.stat().st_mtime_ns for p in cached]

    train_sync(_config(manifest, run_dir, max_steps=5))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss/sync" in r] == [1, 2, 3, 4, 5]
    assert load_train_state(run_dir / "last")["step"] == 5
    assert load_train_state(run_dir / "shadow")["step"] == 3
    assert [p.stat().st_mtime_ns for p in sorted((run_dir / "features").glob("*.npz"))] == stamps

    encoder = SyncEncoder.from_checkpoint(release)
    assert encoder.config == TINY
    feats = encoder.encode_video(np.zeros((10, 48, 48, 3), np.uint8))
    assert feats.features.shape == (10, TINY.dim)


def test_bad_settings_and_missing_data_are_input_errors(manifest: Path, tmp_path: Path):
    with pytest.raises(InputError, match="batch_size"):
        train_sync(_config(manifest, tmp_path / "r", batch_size=0))
    with pytest.raises(InputError, match="max_offset_s"):
        train_sync(_config(manifest, tmp_path / "r", max_offset_s=0.0))
    with pytest.raises(InputError, match="unknown sync preset"):
        train_sync(_config(manifest, tmp_path / "r", preset="huge"))
    with pytest.raises(InputError, match="no usable training clips"):
        train_sync(_config(manifest, tmp_path / "r", train_split="test", max_steps=1))


def test_rows_without_a_val_split_hold_out_a_stable_twentieth(tmp_path: Path):
    rows = [
        ClipRow(id=f"clip{i}", video=f"v{i}.mp4", audio=None, duration_s=1.0, fps=25.0) for i in range(200)
    ]
    path = write_manifest(tmp_path / "m.jsonl", rows)
    train, val = select_rows([path], "train"), select_rows([path], "val")
    assert 3 <= len(val) <= 20 and len(train) + len(val) == 200
    assert not {r.id for r in train} & {r.id for r in val}
    assert [r.id for r in select_rows([path], "val")] == [r.id for r in val]


def test_shift_audio_delays_the_track_and_fills_silence():
    mel = np.tile(np.arange(20, dtype=np.float32), (3, 1))  # column i holds i
    late = shift_audio(mel, 3, start=-2, length=26, config=TINY)
    # window position j is clip frame j - 2; a delay of 3 shows clip frame j - 5 there
    np.testing.assert_array_equal(late[0, 5:22], np.arange(0, 17))
    assert np.all(late[:, :5] == FLOOR) and np.all(late[:, 22:] == FLOOR)
    early = shift_audio(mel, -4, start=0, length=20, config=TINY)
    np.testing.assert_array_equal(early[0, :16], np.arange(4, 20))
    assert np.all(early[:, 16:] == FLOOR)


def test_batches_keep_picture_and_sound_aligned_up_to_the_stated_shift():
    """A motion mark at frame 40 and a loud audio frame at the same time land ``shift`` apart."""
    T, event = 120, 40
    motion = np.zeros((T, 3, 8, 8), np.float16)
    motion[event] = 1.0
    mel = np.full((TINY.spec.n_mels, AUDIO_STEPS * T), FLOOR, np.float16)
    mel[:, AUDIO_STEPS * event] = 0.0
    clips = SyncClips(ids=["x"], motion=[motion], mel=[mel])
    rng = np.random.default_rng(0)
    L = 10
    seen = 0
    for _ in range(20):
        batch = sample_batch(clips, 4, rng, config=TINY, max_lag=L, augment=False)
        assert batch.motion.shape == (4, TINY.window_frames, 3, 8, 8)
        assert batch.mel.shape == (4, TINY.spec.n_mels, AUDIO_STEPS * (TINY.window_frames + 2 * L))
        for b in range(4):
            marks = torch.nonzero(batch.motion[b].flatten(1).sum(1)).flatten()
            louds = torch.nonzero(batch.mel[b, 0] > FLOOR).flatten()
            if len(marks) and len(louds):
                seen += 1
                # aligned audio for window frame m sits at column 4 (m + L); a delay of s frames adds 4 s
                assert int(louds[0]) - AUDIO_STEPS * (int(marks[0]) + L) == round(
                    AUDIO_STEPS * float(batch.shift[b])
                )
        assert float(batch.shift.abs().max()) <= L
    assert seen > 10


def test_loss_prefers_the_true_lag_and_batch_negatives_agree_with_a_direct_sum():
    torch.manual_seed(0)
    B, W, L, D = 3, 12, 4, 8
    audio = torch.nn.functional.normalize(torch.randn(B, W + 2 * L, D), dim=-1)
    shift = torch.tensor([2.0, 2.0, 2.0])
    video = audio[:, L + 2 : L + 2 + W].clone()  # the picture matches the audio 2 frames later
    good, values = sync_loss(video, audio, torch.tensor(20.0), shift)
    bad, _ = sync_loss(video, audio, torch.tensor(20.0), -shift)
    assert float(good) < 0.5 < float(bad) and float(values["acc/lag_40ms"]) == 1.0
    # the batch-negative logits equal <video_b, audio_c at b's lag> / W
    uneven = torch.tensor([2.0, -1.0, 3.0])
    loss, _ = sync_loss(video, audio, torch.tensor(5.0), uneven)
    from v2a.encoders.sync import lag_scores

    scores = 5.0 * lag_scores(video, audio)
    lags = [2, -1, 3]
    cross = torch.stack(
        [
            torch.stack([(video[b] * audio[c, L + lags[b] : L + lags[b] + W]).sum() / W for c in range(B)])
            for b in range(B)
        ]
    )
    logits = torch.cat([scores, 5.0 * cross[~torch.eye(B, dtype=torch.bool)].view(B, B - 1)], dim=1)
    want = torch.nn.functional.cross_entropy(logits, torch.tensor([L + 2, L - 1, L + 3]))
    torch.testing.assert_close(loss, want)
