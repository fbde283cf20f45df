from __future__ import annotations

import dataclasses

import pytest

from v2a.audio.spec import DEFAULT_SPEC, SPEC_48K, get_spec


def test_default_spec_is_24k_hop_256():
    assert DEFAULT_SPEC.sample_rate == 24_000 and DEFAULT_SPEC.hop_length == 256
    assert DEFAULT_SPEC.mel_fps == pytest.approx(93.75)
    assert DEFAULT_SPEC.f_max <= DEFAULT_SPEC.sample_rate / 2


def test_specs_round_trip_by_name_and_are_frozen():
    for spec in (DEFAULT_SPEC, SPEC_48K):
        assert get_spec(spec.name) is spec
        assert spec.f_max <= spec.sample_rate / 2
        # same time resolution in seconds at both rates, so models port across specs
        assert spec.hop_length / spec.sample_rate == pytest.approx(
            DEFAULT_SPEC.hop_length / DEFAULT_SPEC.sample_rate
        )
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SPEC.sample_rate = 1  # type: ignore[misc]
    changed = DEFAULT_SPEC.replace(n_mels=80)
    assert changed.n_mels == 80 and DEFAULT_SPEC.n_mels == 100
    with pytest.raises(ValueError, match="unknown audio spec"):
        get_spec("mel96k")


def test_frame_and_sample_counts():
    spec = DEFAULT_SPEC
    assert spec.num_samples(8.0) == 192_000
    assert spec.num_frames(192_000) == 751
    assert spec.num_frames(0) == 1
