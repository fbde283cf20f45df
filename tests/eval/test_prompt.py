"""Prompt adherence: prompts name classes by words; the metrics follow the classifier's posterior."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.eval.classifier import SoundClassifier
from v2a.eval.prompt import negative_prompt_drop, prompt_adherence, prompt_classes

LABELS = ["animal/dog", "animal/cat", "impact/wood", "impact/metal", "footstep/wood", "speech/voice",
          "music/piano", "weather/rain"]  # fmt: skip


def test_prompts_name_labels_and_categories():
    assert prompt_classes("a dog barks twice", LABELS).labels == ("animal/dog",)
    assert prompt_classes("a dog barks twice", LABELS).categories == ("animal",)
    steps = prompt_classes("footsteps on a wooden floor", LABELS)
    assert steps.labels == ("footstep/wood",) and steps.categories == ("footstep",)
    hit = prompt_classes("a metal can hits the ground", LABELS)
    assert hit.labels == ("impact/metal",) and hit.categories == ("impact",)
    assert prompt_classes("heavy rain on a roof", LABELS).categories == ("weather",)
    assert prompt_classes("music, speech", LABELS).categories == ("music", "speech")
    assert not prompt_classes("", LABELS) and not prompt_classes("something strange", LABELS)


def _posterior(model: SoundClassifier, weights: dict[str, float]) -> np.ndarray:
    p = np.full(len(model.labels), 1e-3)
    for label, w in weights.items():
        p[model.labels.index(label)] = w
    return p / p.sum()


def test_adherence_and_negative_prompt_drop():
    model = SoundClassifier(LABELS)
    dog = _posterior(model, {"animal/dog": 0.9})
    piano = _posterior(model, {"music/piano": 0.9})
    assert prompt_adherence(model, dog, "a dog barking")["prompt_match"] == 1.0
    assert prompt_adherence(model, dog, "a dog barking")["prompt_prob"] == pytest.approx(dog[0])
    assert prompt_adherence(model, piano, "a dog barking")["prompt_match"] == 0.0
    assert prompt_adherence(model, dog, "qwerty") == {}
    mixed = _posterior(model, {"animal/dog": 0.5, "music/piano": 0.4})
    drop = negative_prompt_drop(model, [mixed], [dog], "music")
    assert drop == pytest.approx(
        mixed[model.labels.index("music/piano")] - dog[model.labels.index("music/piano")]
    )
    assert drop > 0.3
    assert negative_prompt_drop(model, [dog], [mixed], "music") < 0  # the negative prompt made it worse
    assert negative_prompt_drop(model, [], [dog], "music") is None
    assert negative_prompt_drop(model, [dog], [dog], "zzz") is None
