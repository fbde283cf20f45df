from __future__ import annotations

from v2a.encoders.imagenet_classes import IMAGENET_CLASSES, NUM_CLASSES


def test_one_unique_name_per_class():
    assert len(IMAGENET_CLASSES) == NUM_CLASSES == 1000
    assert len(set(IMAGENET_CLASSES)) == 1000
    assert all(name == name.strip() and name for name in IMAGENET_CLASSES)


def test_known_indices_in_standard_order():
    known = {
        0: "tench",
        1: "goldfish",
        8: "hen",
        104: "wallaby",
        207: "Golden Retriever",
        281: "tabby cat",
        285: "Egyptian cat",
        291: "lion",
        340: "zebra",
        388: "giant panda",
        398: "abacus",
        504: "coffee mug",
        555: "fire truck",
        657: "missile",
        817: "sports car",
        920: "traffic light",
        967: "espresso",
        999: "toilet paper",
    }
    assert {i: IMAGENET_CLASSES[i] for i in known} == known


def test_dog_breeds_say_dog():
    assert IMAGENET_CLASSES[162] == "Beagle dog"
    assert all(IMAGENET_CLASSES[i] != "Beagle" for i in range(1000))
