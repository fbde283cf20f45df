"""The semantic-head trainer on real photographs pasted into two-shot clips, and the generator it feeds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from skimage import data

from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.shards import ShardDataset, write_shards
from v2a.encoders.cache import extract_features, read_semantic
from v2a.encoders.semantic import SemanticEncoder
from v2a.encoders.semantic_head import (
    NO_SOURCE,
    feature_shots,
    generator_head,
    head_from_checkpoint,
    label_phrase,
    shot_mean,
)
from v2a.errors import InputError
from v2a.io.writer import write_video
from v2a.train.semantic_head_trainer import (
    SemanticHeadTrainConfig,
    load_frames,
    on_screen_labels,
    soft_targets,
    train_semantic_head,
)

FPS = 8.0
SR = 24_000
SOURCES = {  # label -> photograph of the thing that sounds
    "animal/cat": data.chelsea,
    "engine/rocket": data.rocket,
    "glass/clink": data.coffee,
}
BACKDROPS = {"train": (data.brick, data.grass), "test": (data.gravel,)}


def _picture(source: np.ndarray, backdrop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 160 x 160 frame: the backdrop with the source photo pasted at a random place and size."""
    canvas = Image.fromarray(np.stack([backdrop] * 3, -1) if backdrop.ndim == 2 else backdrop)
    canvas = canvas.resize((160, 160))
    width = int(rng.integers(70, 120))
    photo = Image.fromarray(source).resize((width, width * source.shape[0] // source.shape[1]))
    canvas.paste(photo, (int(rng.integers(0, 160 - photo.width)), int(rng.integers(0, 160 - photo.height))))
    return np.asarray(canvas)


def _clips(root: Path, split: str, count: int, seed: int) -> list[ClipRow]:
    """Two-shot clips of 2 s: a different source in each shot, its events on screen, one off-screen event."""
    rng = np.random.default_rng(seed)
    labels = list(SOURCES)
    rows = []
    for i in range(count):
        backdrops = BACKDROPS[split]
        first, second = rng.choice(len(labels), size=2, replace=False)
        frames = []
        for label in (labels[first], labels[second]):
            backdrop = backdrops[int(rng.integers(len(backdrops)))]()
            frames += [_picture(SOURCES[label](), backdrop, rng)] * int(FPS)
        video = write_video(root / f"{split}{i}.mp4", np.stack(frames), fps=FPS)
        sound = np.zeros(2 * SR, np.float32)
        for t in (0.3, 1.4):
            sound[int(t * SR) : int(t * SR) + 2400] = rng.standard_normal(2400) * np.exp(
                -np.arange(2400) / 300
            )
        sf.write(root / f"{split}{i}.flac", 0.3 * sound, SR)
        events = [
            {"start_s": 0.3, "label": labels[first], "on_screen": True, "shot": 0},
            {"start_s": 1.4, "label": labels[second], "on_screen": True, "shot": 1},
            {"start_s": 1.6, "label": "weather/rain", "on_screen": False, "shot": 1},
        ]
        shots = [{"t0": 0.0, "t1": 1.0}, {"t0": 1.0, "t1": 2.0}]
        audio = str(root / f"{split}{i}.flac")
        rows.append(ClipRow(id=f"{split}{i}", video=str(video), audio=audio, duration_s=2.0, fps=FPS, split=split,
                            events=events, extra={"shots": shots}))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def photo_shards(tmp_path_factory) -> tuple[Path, Path]:
    """Train shards (brick and grass backdrops) and held-out shards (gravel), with all features."""
    root = tmp_path_factory.mktemp("photos")
    folders = []
    for split, count, seed in (("train", 12, 0), ("test", 6, 1)):
        manifest = write_manifest(root / f"{split}.jsonl", _clips(root, split, count, seed))
        folder = root / f"shards-{split}"
        write_shards(manifest, folder, progress=False)
        extract_features(folder, device="cpu", progress=False)
        folders.append(folder)
    return folders[0], folders[1]


def test_frames_take_the_labels_on_screen_in_their_shot():
    meta = {
        "shots": [{"t0": 0.0, "t1": 2.0}, {"t0": 2.0, "t1": 4.0}],
        "events": [
            {"label": "door/open", "on_screen": True, "shot": 0},
            {"label": "impact/wood", "on_screen": True, "shot": 0},
            {"label": "crowd/chatter", "on_screen": False, "shot": 0},
            {"label": "animal/pig", "on_screen": True, "shot": 1},
        ],
    }
    labels = on_screen_labels(meta, np.array([0.0, 1.9, 2.0, 3.5, 9.0]))
    assert labels == [("door/open", "impact/wood")] * 2 + [("animal/pig",)] * 3
    assert on_screen_labels({"events": [{"label": "x/y", "on_screen": False}]}, np.zeros(2)) == [(), ()]
    # ingested footage says nothing about the screen: its clip labels name what is visible
    ingested = {
        "labels": ["dog/bark", "animal/dog", "dog/bark"],
        "events": [{"label": "dog/bark", "start_s": 1}],
    }
    assert on_screen_labels(ingested, np.zeros(3)) == [("animal/dog", "dog/bark")] * 3
    assert on_screen_labels({"labels": []}, np.zeros(2)) == [(), ()]


def test_soft_targets_split_each_frame_and_lift_rare_labels(photo_shards):
    frames = load_frames(photo_shards[0], "train")
    assert len(frames) == 12 * 16  # every frame has its shot's source on screen; rain is off screen
    assert all(len(labels) == 1 for labels in frames.targets)
    target, weight = soft_targets(frames, sorted(SOURCES))
    np.testing.assert_allclose(target.sum(axis=1), 1.0)
    counts = {x: sum(labels == (x,) for labels in frames.targets) for x in SOURCES}
    rare, common = min(counts, key=counts.get), max(counts, key=counts.get)
    if counts[rare] < counts[common]:
        rows = {
            x: next(i for i, labels in enumerate(frames.targets) if labels == (x,)) for x in (rare, common)
        }
        assert weight[rows[rare]] > weight[rows[common]]


def test_head_names_the_source_on_unseen_backdrops_better_than_the_bridge(photo_shards, tmp_path):
    train, held_out = photo_shards
    cfg = SemanticHeadTrainConfig(run_dir=str(tmp_path / "run"), data=str(train), val_data=str(held_out),
                                  val_split="test", hidden=64, epochs=40, batch_size=32)  # fmt: skip
    release = train_semantic_head(cfg)
    head = head_from_checkpoint(release)
    assert head.labels == tuple(sorted(SOURCES))
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    assert report["val"]["head"]["acc"] >= 0.9
    assert report["val"]["head"]["acc"] >= report["val"]["bridge"]["acc"]
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 0
    # its text-space vectors sit nearest to the phrase of the label on screen
    frames = load_frames(held_out, "test")
    vectors = head.text_space(frames.features)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    phrases = head.label_embeddings.numpy()
    nearest = [head.labels[i] for i in np.argmax(vectors @ phrases.T, axis=1)]
    assert np.mean([n in t for n, t in zip(nearest, frames.targets, strict=True)]) >= 0.9
    assert label_phrase("footstep/wood") == "footstep wood"


def test_bad_settings_and_unlabelled_shards_are_refused(photo_shards, tmp_path):
    with pytest.raises(InputError, match="epochs"):
        train_semantic_head(
            SemanticHeadTrainConfig(run_dir=str(tmp_path), data=str(photo_shards[0]), epochs=0)
        )
    with pytest.raises(InputError, match="no split 'train'"):
        load_frames(photo_shards[1], "train")  # the held-out folder has only its test split
    # a clip whose events are all off screen teaches nothing
    video = write_video(tmp_path / "v.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=FPS)
    row = ClipRow(id="v", video=str(video), audio=None, duration_s=1.0, fps=FPS,
                  events=[{"start_s": 0.2, "label": "door/open", "on_screen": False}])  # fmt: skip
    write_shards(write_manifest(tmp_path / "m.jsonl", [row]), tmp_path / "s", progress=False)
    extract_features(tmp_path / "s", encoders=("semantic",), device="cpu", progress=False)
    with pytest.raises(InputError, match="no frame with a labelled sound source"):
        load_frames(tmp_path / "s", "train")


def test_a_generator_release_carries_its_head_and_the_pipeline_uses_it(photo_shards, tmp_path):
    from v2a.model.dit import load_generator
    from v2a.pipeline import FoleyPipeline
    from v2a.train.generator_trainer import GeneratorTrainConfig, train_generator

    train, _ = photo_shards
    head_release = train_semantic_head(
        SemanticHeadTrainConfig(run_dir=str(tmp_path / "head"), data=str(train), hidden=16, epochs=2)
    )
    run = tmp_path / "gen"
    config = GeneratorTrainConfig(run_dir=str(run), data=str(train), semantic_head=str(head_release), max_steps=1,
                                  batch_size=2, min_seconds=1.0, max_seconds=2.0, device="cpu")  # fmt: skip
    release = train_generator(config)
    net = load_generator(release)
    assert net.cfg.semantic_dim == 768
    head = generator_head(release)
    assert head is not None and head.labels == tuple(sorted(SOURCES))
    pipe = FoleyPipeline.from_pretrained(release, device="cpu")
    assert pipe.semantic_head is not None
    video = next(Path(train).parent.glob("train0.mp4"))
    features = pipe.video_features(video, 0.0, 2.0)
    assert features.semantic.shape[1] == 768
    torch.testing.assert_close(
        torch.from_numpy(features.semantic[:, 384:]),
        torch.from_numpy(head.text_space(pipe.semantic_encoder.encode_video(video).features)),
    )
    # resuming without the flag keeps the run's head; a started network of another width is refused
    train_generator(dataclasses.replace(config, semantic_head=None, max_steps=2))
    assert generator_head(release) is not None and load_generator(release).cfg.semantic_dim == 768
    plain = train_generator(dataclasses.replace(config, run_dir=str(tmp_path / "plain"), semantic_head=None))
    assert generator_head(plain) is None and load_generator(plain).cfg.semantic_dim == 384
    with pytest.raises(InputError, match="--semantic-head"):
        train_generator(dataclasses.replace(config, run_dir=str(tmp_path / "b"), init_from=str(plain)))
    started = train_generator(dataclasses.replace(config, run_dir=str(tmp_path / "c"), semantic_head=None,
                                                  init_from=str(release)))  # fmt: skip
    assert generator_head(started) is not None  # a run started from a release with a head keeps it


def _photo_folder(root: Path) -> Path:
    """A backgrounds folder (``backgrounds.jsonl`` + images) of plain photographs with nothing that sounds."""
    pictures = {"astronaut": (data.astronaut, "train"), "hubble": (data.hubble_deep_field, "train"),
                "camera": (data.camera, "train"), "retina": (data.retina, "test")}  # fmt: skip
    (root / "images").mkdir(parents=True)
    rows = []
    for name, (load, split) in pictures.items():
        pixels = load()
        Image.fromarray(np.stack([pixels] * 3, -1) if pixels.ndim == 2 else pixels).save(
            root / f"images/{name}.png"
        )
        rows.append({"path": f"images/{name}.png", "kind": "photo", "material": "outdoor", "split": split})
    (root / "backgrounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_shots_are_found_where_the_picture_jumps_and_posteriors_are_averaged_over_them(photo_shards):
    rng = np.random.default_rng(0)
    looks = rng.standard_normal((3, 1280)).astype(np.float32)
    order = [0] * 5 + [1] * 3 + [0] * 4
    features = (looks[order] + 0.1 * rng.standard_normal((12, 1280))).astype(np.float32)
    shots = feature_shots(features)
    assert shots.tolist() == [0] * 5 + [1] * 3 + [2] * 4  # a return to an earlier look is a new shot
    assert feature_shots(features[:1]).tolist() == [0] and len(feature_shots(features[:0])) == 0
    values = np.arange(12, dtype=np.float32)[:, None]
    np.testing.assert_allclose(shot_mean(values, shots)[:, 0], [2] * 5 + [6] * 3 + [9.5] * 4)
    # real frames: a two-shot clip's frames repeat one picture per shot, so each half is one shot
    dataset = ShardDataset(
        photo_shards[0], "train", features=("semantic",), shuffle_buffer=0, decode_audio=False
    )
    clip = next(iter(dataset))
    found = feature_shots(read_semantic(clip["features"]["semantic"]).features)
    assert len(set(found[:8].tolist())) == 1 and len(set(found[8:].tolist())) == 1


def test_a_head_taught_plain_photographs_hands_them_back_to_the_bridge(photo_shards, tmp_path):
    train, held_out = photo_shards
    photos = _photo_folder(tmp_path / "backgrounds")
    cfg = SemanticHeadTrainConfig(run_dir=str(tmp_path / "run"), data=str(train), val_data=str(held_out),
                                  val_split="test", hidden=64, epochs=40, batch_size=32, photos=str(photos),
                                  photo_crops=8)  # fmt: skip
    head = head_from_checkpoint(train_semantic_head(cfg))
    assert head.labels == (*sorted(SOURCES), NO_SOURCE) and head.smooth_shots
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    assert report["abstain"]["photos"] >= 0.9
    assert report["val"]["head"]["acc"] >= 0.9  # it still names the sources on unseen backdrops
    # a photograph it never saw: the head abstains, and its vector is (almost) the bridge's own
    encoder = SemanticEncoder()
    picture = Image.open(photos / "images/retina.png").convert("RGB").resize((224, 224))
    unseen = encoder.encode_frames(np.asarray(picture)[None])
    assert head.labels[int(np.argmax(head.posteriors(unseen.features)))] == NO_SOURCE
    handed_back = head.text_space(unseen.features, fallback=unseen.text_space)
    assert float(handed_back[0] @ unseen.text_space[0]) > 0.9
    # a frame with a source keeps the source's phrase, whatever the bridge says
    frames = load_frames(held_out, "test")
    vectors = head.text_space(frames.features[:16], fallback=frames.text_space[:16])
    phrases = head.label_embeddings.numpy()[: len(SOURCES)]
    nearest = [head.labels[i] for i in np.argmax(vectors @ phrases.T, axis=1)]
    assert np.mean([n in t for n, t in zip(nearest, frames.targets[:16], strict=True)]) >= 0.9
    with pytest.raises(InputError, match="photos"):
        train_semantic_head(dataclasses.replace(cfg, abstain=False))
