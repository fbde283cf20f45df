from __future__ import annotations

import numpy as np
import pytest
import torch

from v2a.audio.griffinlim import griffin_lim
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC
from v2a.errors import InputError


def _dominant_hz(wav: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.fft.rfftfreq(len(wav), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("freq", [220.0, 440.0, 1000.0, 3000.0])
def test_reconstructs_a_tone_at_its_frequency(freq: float):
    rate = DEFAULT_SPEC.sample_rate
    t = torch.arange(rate) / rate
    mel = log_mel(0.5 * torch.sin(2 * torch.pi * freq * t))
    wav = griffin_lim(mel)
    assert wav.shape == ((mel.shape[-1] - 1) * DEFAULT_SPEC.hop_length,)
    assert abs(_dominant_hz(wav.numpy(), rate) - freq) < 0.02 * freq
    assert 0.2 < float(wav.abs().max()) <= 1.0  # the level survives too


def test_batch_is_deterministic_per_seed_and_validates_shape():
    mel = log_mel(torch.randn(2, 4000) * 0.1)
    a, b = griffin_lim(mel, n_iter=4), griffin_lim(mel, n_iter=4)
    assert a.shape == (2, (mel.shape[-1] - 1) * DEFAULT_SPEC.hop_length) and torch.equal(a, b)
    assert not torch.equal(a, griffin_lim(mel, n_iter=4, seed=1))
    with pytest.raises(InputError, match="griffin_lim expects mel"):
        griffin_lim(torch.zeros(80, 10))
