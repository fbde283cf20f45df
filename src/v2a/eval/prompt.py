"""Prompt adherence: does a prompted generation sound like what the prompt names, and does a negative
prompt remove what it names?

A prompt names sound classes by words: a label ``category/name`` is named when its ``name`` appears in the
prompt (``"a dog barks"`` -> ``animal/dog``), a whole category when the category or one of its common
words appears (``"footsteps on gravel"`` -> ``footstep``; ``"a car engine"`` -> ``engine``). Words match
with light stemming (plural ``-s``/``-es``, ``-en`` adjectives such as "wooden", ``-ing`` forms). The
classifier's posterior then gives:

- ``prompt_match``: 1 when the top category of the generation is a category the prompt names;
- ``prompt_prob``: the probability mass on the named labels (or the named categories when the prompt names
  no specific label);
- ``neg_prompt_drop``: mass on the classes a negative prompt names, generated *without* the negative prompt
  minus *with* it (positive: the negative prompt removed that sound).

Prompts that name no class the classifier knows are not scored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from v2a.eval.classifier import SoundClassifier, category

# Everyday words for a category beyond its own name (the corpus taxonomy's category names).
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "ambience": ("ambient", "ambiance", "atmosphere", "background"),
    "animal": ("bark", "meow", "moo", "neigh", "oink", "chirp", "tweet", "growl", "roar", "howl"),
    "crowd": ("people", "audience", "chatter", "applause", "cheer"),
    "door": ("doors",),
    "engine": ("motor", "car", "truck", "vehicle", "train", "plane", "aircraft"),
    "explosion": ("explode", "blast", "boom"),
    "fire": ("flame", "crackle", "burning"),
    "footstep": ("step", "walk", "walking", "running", "steps"),
    "glass": ("shatter",),
    "impact": ("hit", "knock", "bang", "thud", "bounce", "collide", "crash", "slam", "drop", "fall"),
    "machine": ("machinery", "mechanical"),
    "music": ("song", "melody", "tune", "instrument"),
    "speech": ("voice", "talk", "talking", "speak", "speaking", "dialogue", "words", "narration"),
    "vocal": ("scream", "laugh", "cough", "grunt", "shout"),
    "water": ("splash", "drip", "river", "stream", "waves"),
    "weather": ("rain", "wind", "thunder", "storm"),
}


@dataclass(frozen=True)
class PromptClasses:
    """The classes a prompt names.

    Attributes:
        labels: labels named by their specific name.
        categories: categories named directly, by a common word, or through a named label.
    """

    labels: tuple[str, ...]
    categories: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.categories)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _matches(word: str, term: str) -> bool:
    if word == term:
        return True
    for suffix in ("s", "es", "en", "ing", "ed"):
        if word == term + suffix or (
            suffix in ("ing", "ed") and term.endswith("e") and word == term[:-1] + suffix
        ):
            return True
    return False


def prompt_classes(prompt: str, labels: Sequence[str]) -> PromptClasses:
    """Find the labels and categories a prompt names (see the module docstring).

    Args:
        prompt: free text; "" names nothing.
        labels: the known labels (``category/name``).

    Returns:
        The named classes (falsy when none).
    """
    words = _words(prompt)
    if not words:
        return PromptClasses((), ())

    def named(term: str) -> bool:
        parts = _words(term)
        return bool(parts) and all(any(_matches(w, p) for w in words) for p in parts)

    known_categories = sorted({category(x) for x in labels})
    found_labels = [
        x for x in labels if "/" in x and x.split("/", 1)[1] != "generic" and named(x.split("/", 1)[1])
    ]
    found_categories = {
        c for c in known_categories if named(c) or any(named(w) for w in CATEGORY_WORDS.get(c, ()))
    }
    # a name shared by several categories ("wood": footstep/wood, impact/wood) counts only where the
    # prompt also names the category, unless it names none of them
    if found_categories:
        narrowed = [x for x in found_labels if category(x) in found_categories]
        found_labels = narrowed or found_labels
    found_categories |= {category(x) for x in found_labels}
    return PromptClasses(tuple(found_labels), tuple(sorted(found_categories)))


def class_mass(model: SoundClassifier, probs: np.ndarray, classes: PromptClasses) -> float:
    """Probability mass of a clip posterior on the named labels, or on the named categories when the
    prompt names no label."""
    if classes.labels:
        index = [model.labels.index(x) for x in classes.labels if x in model.labels]
        return float(np.sum(np.asarray(probs)[index]))
    cat_probs = model.category_proba(probs)
    return float(
        sum(cat_probs[model.categories.index(c)] for c in classes.categories if c in model.categories)
    )


def prompt_adherence(model: SoundClassifier, probs: np.ndarray, prompt: str) -> dict[str, float]:
    """``prompt_match`` and ``prompt_prob`` of one generation (empty when the prompt names no known class).

    Args:
        model: the classifier that produced ``probs``.
        probs: (L,) label posterior of the generation.
        prompt: the positive prompt it was generated with.
    """
    classes = prompt_classes(prompt, model.labels)
    if not classes:
        return {}
    top_cat = model.categories[int(np.argmax(model.category_proba(probs)))]
    return {
        "prompt_match": float(top_cat in classes.categories),
        "prompt_prob": class_mass(model, probs, classes),
    }


def negative_prompt_drop(
    model: SoundClassifier,
    without: Sequence[np.ndarray],
    with_negative: Sequence[np.ndarray],
    negative_prompt: str,
) -> float | None:
    """How much a negative prompt lowers the probability of what it names.

    Args:
        model: the classifier.
        without: (L,) posteriors of generations made without a negative prompt (same video and prompt).
        with_negative: (L,) posteriors of generations made with ``negative_prompt``.
        negative_prompt: the negative prompt.

    Returns:
        mean mass without - mean mass with; None when a side is empty or the prompt names no known class.
    """
    classes = prompt_classes(negative_prompt, model.labels)
    if not classes or not without or not with_negative:
        return None
    before = np.mean([class_mass(model, p, classes) for p in without])
    after = np.mean([class_mass(model, p, classes) for p in with_negative])
    return float(before - after)
