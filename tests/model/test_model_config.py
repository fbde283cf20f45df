from __future__ import annotations

import json

import pytest
import torch

from v2a.errors import InputError
from v2a.model.config import DEFAULT_LATENT_FPS, PRESETS, ModelConfig, SequenceConfig, model_config
from v2a.model.dit import AudioDiT


def test_default_latent_rate_is_the_codec_rate():
    assert DEFAULT_LATENT_FPS == pytest.approx(24_000 / 256 / 3) == pytest.approx(31.25)
    assert ModelConfig().latent_fps == DEFAULT_LATENT_FPS


@pytest.mark.parametrize(
    ("name", "low", "high"), [("tiny", 2e6, 4e6), ("small", 60e6, 150e6), ("medium", 300e6, 600e6)]
)
def test_presets_have_their_intended_sizes(name, low, high):
    with torch.device("meta"):  # no memory, no init cost
        net = AudioDiT(model_config(name))
    assert low <= net.num_parameters() <= high


def test_sequence_lengths_follow_duration_and_rates():
    seq = SequenceConfig(duration=8.0)
    assert (seq.latent_frames, seq.semantic_frames, seq.sync_frames) == (250, 64, 200)
    # a frame is counted when its timestamp lies inside the clip: 1.01 s holds frames at 0, 1/8, ..., 1.0
    short = model_config("tiny").sequence(1.01)
    assert (short.latent_frames, short.semantic_frames, short.sync_frames) == (32, 9, 26)
    with pytest.raises(InputError, match="duration"):
        SequenceConfig(duration=0.0)


def test_config_round_trips_through_json_and_rejects_bad_fields():
    cfg = model_config("small", latent_dim=40)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert PRESETS["small"].latent_dim != 40  # presets are never mutated
    with pytest.raises(InputError, match="unknown fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(InputError, match="unknown generator size 'huge'"):
        model_config("huge")
    with pytest.raises(InputError, match="heads"):
        model_config("tiny", heads=3)
    with pytest.raises(InputError, match="input_kernel"):
        model_config("tiny", input_kernel=2)
