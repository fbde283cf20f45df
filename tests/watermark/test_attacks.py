"""Every benchmark attack at reduced size: the mark and its payload survive on an 8 s effects track."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.watermark import detect, embed
from v2a.watermark.attacks import mix_under, speed, standard_attacks, time_stretch

from .conftest import SR

PAYLOAD = 0x5EED1234
ATTACKS = standard_attacks()


@pytest.fixture(scope="module")
def marked(rain: np.ndarray) -> np.ndarray:
    return embed(rain, SR, payload=PAYLOAD)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_keeps_mark(name, marked, speech):
    rng = np.random.default_rng(3)
    attacked, rate = ATTACKS[name](marked, SR, rng, other=speech)
    assert attacked.ndim == 1 and attacked.size > 2 * rate
    found = detect(attacked, rate)
    assert found.detected, f"{name}: p={found.p_value:.2g}"
    errors = bin(int.from_bytes(found.decoded, "big") ^ PAYLOAD).count("1")
    assert errors <= 1, f"{name}: {errors} payload bit errors"


@pytest.mark.parametrize(
    ("host", "name", "other"),
    [
        ("speech", "noise_20db", "tune"),
        ("speech", "mix_under_-6db", "tune"),
        ("speech", "crop_3s", "tune"),
        ("foley", "noise_20db", "speech"),
        ("foley", "crop_3s", "speech"),
    ],
)
def test_noise_mix_and_crop_keep_mark_and_payload_on_harder_hosts(host, name, other, request):
    """Sparse speech and effects (gaps, quiet high bands) under the attacks that used to miss."""
    marked = embed(request.getfixturevalue(host), SR, payload=PAYLOAD)
    for seed in (0, 1):
        attacked, rate = ATTACKS[name](
            marked, SR, np.random.default_rng(seed), other=request.getfixturevalue(other)
        )
        found = detect(attacked, rate)
        assert found.detected and found.p_value < 1e-8, f"{host}/{name}/{seed}: p={found.p_value:.2g}"
        assert found.payload == PAYLOAD.to_bytes(4, "big"), f"{host}/{name}/{seed}"


def test_attacks_change_the_audio(marked, speech):
    """Each attack really does something (a no-op attack would make its robustness test meaningless)."""
    rng = np.random.default_rng(4)
    for name, attack in ATTACKS.items():
        if name == "none":
            continue
        attacked, rate = attack(marked, SR, rng, other=speech)
        n = min(attacked.size, marked.size)
        assert (
            rate != SR or attacked.size != marked.size or not np.allclose(attacked[:n], marked[:n], atol=1e-3)
        ), name


def test_speed_and_stretch_are_recognised(marked):
    rng = np.random.default_rng(5)
    fast, _ = speed(1.05)(marked, SR, rng)
    slow, _ = time_stretch(0.95)(marked, SR, rng)
    assert fast.size == pytest.approx(marked.size / 1.05, rel=1e-3)
    found = detect(fast, SR)
    assert found.speed == pytest.approx(1.05, abs=0.006) and found.pitch_shifted
    found = detect(slow, SR)
    assert found.speed == pytest.approx(0.95, abs=0.006) and not found.pitch_shifted


def test_mix_under_sets_the_level(marked, speech):
    mixed, _ = mix_under(-6.0)(marked, SR, np.random.default_rng(0), other=speech)
    residual = mixed - marked * (mixed @ marked) / (marked @ marked)  # remove the marked part
    marked_below_other_db = 10 * np.log10(np.mean((mixed - residual) ** 2) / np.mean(residual**2))
    assert marked_below_other_db == pytest.approx(-6.0, abs=1.0)
    with pytest.raises(ValueError, match="other audio"):
        mix_under(-6.0)(marked, SR, np.random.default_rng(0))
