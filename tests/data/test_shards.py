from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from torch.utils.data import DataLoader

from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.shards import INDEX_NAME, ShardDataset, add_features, load_index, sidecar_name, write_shards
from v2a.errors import InputError, OutputError
from v2a.io.audio import load_audio
from v2a.io.writer import write_video

SR = 24_000
NUM_TRAIN = 14


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[ClipRow]]:
    """A manifest of 16 real clips: tiny H.264 videos, 0.4 s of distinct noise each as mono 24 kHz FLAC,
    except one with 48 kHz stereo WAV (transcoded when sharded) and one without audio; 14 train, 2 test."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(NUM_TRAIN + 2):
        frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
        video = write_video(root / f"c{i:02d}.mp4", frames, fps=25)
        if i == 3:
            audio = root / f"c{i:02d}.wav"
            sf.write(audio, rng.uniform(-0.5, 0.5, (19_200, 2)).astype(np.float32), 48_000)
        elif i == 5:
            audio = None
        else:
            audio = root / f"c{i:02d}.flac"
            sf.write(audio, rng.uniform(-0.5, 0.5, 9_600).astype(np.float32), SR)
        rows.append(
            ClipRow(
                id=f"c{i:02d}",
                video=str(video),
                audio=None if audio is None else str(audio),
                duration_s=0.4,
                fps=25.0,
                split="train" if i < NUM_TRAIN else "test",
                labels=[f"label{i % 3}"],
                extra={"index": i},
            )
        )
    manifest = write_manifest(root / "manifest.jsonl", rows)
    return manifest, rows


@pytest.fixture(scope="module")
def shards(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "sh"
    write_shards(dataset[0], out, shard_size_mb=0.06, progress=False)  # about 2 clips per shard
    return out


def _keys(samples) -> list[str]:
    return [sample["key"] for sample in samples]


def test_index_lists_shards_of_the_target_size(shards):
    index = load_index(shards)
    train, test = index["splits"]["train"], index["splits"]["test"]
    assert sum(s["count"] for s in train) == NUM_TRAIN and sum(s["count"] for s in test) == 2
    assert len(train) >= 5 and index["sample_rate"] == SR and index["features"] == {}
    for shard in train + test:
        assert (shards / shard["file"]).stat().st_size == shard["bytes"]
        assert shard["bytes"] <= 0.06 * 2**20 + 20_480 or shard["count"] == 1  # + tar end-of-archive padding
        assert shard["seconds"] == pytest.approx(0.4 * shard["count"])


def test_every_clip_reads_back_exactly(dataset, shards):
    _, rows = dataset
    samples = {s["key"]: s for s in ShardDataset(shards, "train", shuffle_buffer=0)}
    assert sorted(samples) == sorted(r.id for r in rows if r.split == "train")
    for row in rows[:NUM_TRAIN]:
        sample = samples[row.id]
        assert sample["video"] == Path(row.video).read_bytes() and sample["video_ext"] == "mp4"
        assert sample["meta"]["labels"] == list(row.labels) and sample["meta"]["index"] == row.extra["index"]
        assert sample["meta"]["video"] == f"{row.id}.mp4"
        assert sample["sample_rate"] == SR
        if row.audio is None:
            assert sample["audio"] is None
        elif row.audio.endswith(".flac"):  # copied as is: bit-exact
            assert np.array_equal(sample["audio"], sf.read(row.audio, dtype="float32")[0])
        else:  # the 48 kHz stereo WAV was resampled to 24 kHz mono and stored as 16-bit FLAC
            expected, _ = load_audio(row.audio, sr=SR)
            assert sample["audio"].dtype == np.float32 and sample["audio"].shape == expected.shape
            assert np.abs(sample["audio"] - np.clip(expected, -1, 1)).max() < 1e-4


def _read_as(shards: Path, split: str, rank: int, world: int, workers: int, **kwargs) -> list[str]:
    dataset = ShardDataset(shards, split, rank=rank, world_size=world, **kwargs)
    return _keys(DataLoader(dataset, batch_size=None, num_workers=workers))


@pytest.mark.parametrize("split", ["train", "test"])  # test: one shard for four readers, split by clip
def test_two_ranks_with_two_workers_read_every_clip_once(shards, split):
    expected = sorted(_keys(ShardDataset(shards, split, shuffle_buffer=0, decode_audio=False)))
    per_rank = [_read_as(shards, split, rank, 2, 2, shuffle_buffer=4) for rank in range(2)]
    assert sorted(per_rank[0] + per_rank[1]) == expected
    assert all(per_rank) or split == "test"  # 2 clips for 4 readers: rank 1's workers get none


def test_shuffling_keeps_the_multiset_and_depends_on_seed_and_epoch(shards):
    plain = _keys(ShardDataset(shards, shuffle_buffer=0, decode_audio=False))
    mixed = ShardDataset(shards, shuffle_buffer=5, seed=1, decode_audio=False)
    first, again = _keys(mixed), _keys(mixed)
    mixed.set_epoch(1)
    other_epoch = _keys(mixed)
    assert Counter(first) == Counter(plain) == Counter(other_epoch)
    assert first == again  # same seed and epoch: same order
    assert first != plain and other_epoch != first
    assert _keys(ShardDataset(shards, shuffle_buffer=5, seed=2, decode_audio=False)) != first


def test_repeat_streams_epoch_after_epoch(shards):
    stream = ShardDataset(shards, shuffle_buffer=4, repeat=True, decode_audio=False)
    keys = _keys(itertools.islice(iter(stream), 3 * NUM_TRAIN))
    assert Counter(keys) == Counter({k: 3 for k in set(keys)}) and len(set(keys)) == NUM_TRAIN
    assert keys[:NUM_TRAIN] != keys[NUM_TRAIN : 2 * NUM_TRAIN]  # each epoch is mixed anew


def test_add_features_writes_sidecars_the_reader_attaches(dataset, shards, tmp_path):
    folder = shutil.copytree(shards, tmp_path / "sh")
    calls = []

    def loudness(batch):
        calls.append(len(batch))
        rms = [0.0 if s["audio"] is None else np.sqrt(np.mean(s["audio"] ** 2)) for s in batch]
        return [np.array([value], dtype=np.float32) for value in rms]

    add_features(folder, "rms", loudness, batch_size=3, progress=False)
    assert max(calls) == 3 and sum(calls) == NUM_TRAIN + 2
    index = load_index(folder)
    assert index["features"]["rms"] == {"dtype": "float32", "shape": [1]}
    for split in ("train", "test"):
        for sample in ShardDataset(folder, split, features=["rms"], shuffle_buffer=3):
            expected = 0.0 if sample["audio"] is None else np.sqrt(np.mean(sample["audio"] ** 2))
            assert sample["features"]["rms"][0] == pytest.approx(expected)
    with pytest.raises(OutputError, match="already has the feature 'rms'"):
        add_features(folder, "rms", loudness, progress=False)
    with pytest.raises(InputError, match="fn returned 1 arrays for 2 clips"):
        add_features(folder, "bad", lambda batch: [np.zeros(1)], batch_size=2, progress=False)
    with pytest.raises(InputError, match=r"feature name 'Bad\.Name'"):
        add_features(folder, "Bad.Name", loudness, progress=False)
    with pytest.raises(InputError, match=r"has no feature 'sync' \(it has: rms\)"):
        ShardDataset(folder, features=["sync"])
    # a sidecar that belongs to another shard is detected, not silently misattached
    first, second = index["splits"]["train"][0]["file"], index["splits"]["train"][1]["file"]
    shutil.copy(folder / sidecar_name(second, "rms"), folder / sidecar_name(first, "rms"))
    with pytest.raises(InputError, match="does not match"):
        list(ShardDataset(folder, features=["rms"], shuffle_buffer=0))


def test_shards_are_reproducible_and_refuse_to_overwrite(dataset, shards, tmp_path):
    manifest, _ = dataset
    again = tmp_path / "again"
    write_shards(manifest, again, shard_size_mb=0.06, progress=False)
    names = sorted(p.name for p in shards.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert all((shards / n).read_bytes() == (again / n).read_bytes() for n in names)
    with pytest.raises(OutputError, match="already holds shards; pass --overwrite"):
        write_shards(manifest, again, progress=False)
    index = write_shards(manifest, again, shard_size_mb=1.0, overwrite=True, progress=False)
    assert sorted(p.name for p in again.glob("*.tar")) == sorted(
        s["file"] for shards_ in index["splits"].values() for s in shards_
    )  # the shards of the first run are gone


def test_bad_inputs_give_clear_errors(dataset, shards, tmp_path):
    _, rows = dataset
    with pytest.raises(InputError, match=r"holds no shards\.json"):
        ShardDataset(tmp_path)
    with pytest.raises(InputError, match="no split 'val'; they have test, train"):
        ShardDataset(shards, "val")
    with pytest.raises(InputError, match=r"rank must be in 0\.\.world_size-1"):
        ShardDataset(shards, rank=2, world_size=2)
    broken = rows[0].replace(video=str(tmp_path / "gone.mp4"))
    bad_manifest = write_manifest(tmp_path / "bad.jsonl", [broken])
    with pytest.raises(InputError, match=r"clip 'c00' needs .*gone\.mp4, which does not exist"):
        write_shards(bad_manifest, tmp_path / "out", progress=False)
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"fLaC" + bytes(200))
    failing = write_manifest(tmp_path / "failing.jsonl", [*rows[:3], rows[6].replace(audio=str(garbage))])
    with pytest.raises(InputError, match=r"garbage\.flac"):
        write_shards(failing, tmp_path / "partial", progress=False)
    assert list((tmp_path / "partial").iterdir()) == []  # no half-written shard, no index
    damaged = shutil.copytree(shards, tmp_path / "damaged")
    first = json.loads((damaged / INDEX_NAME).read_text())["splits"]["train"][0]["file"]
    (damaged / first).write_bytes((damaged / first).read_bytes()[:700])
    with pytest.raises(InputError, match="is damaged"):
        list(ShardDataset(damaged, shuffle_buffer=0))
