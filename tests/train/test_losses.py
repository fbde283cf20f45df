from __future__ import annotations

import pytest
import torch

from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC, SPEC_48K
from v2a.train.losses import (
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    phase_loss,
    stft_resolutions,
)


def _tone(freq: float, n: int = 12_000) -> torch.Tensor:
    t = torch.arange(n) / 24_000
    return (0.5 * torch.sin(2 * torch.pi * freq * t))[None]


def test_stft_loss_is_zero_for_identical_and_grows_with_distortion():
    loss = MultiResolutionSTFTLoss(stft_resolutions(DEFAULT_SPEC))
    real = _tone(440.0) + 0.01 * torch.randn(1, 12_000)
    assert float(loss(real, real)) == pytest.approx(0.0, abs=1e-6)
    slight, heavy = real + 0.01 * torch.randn_like(real), real + 0.2 * torch.randn_like(real)
    assert 0 < float(loss(slight, real)) < float(loss(heavy, real))
    assert float(loss(_tone(450.0), real)) > float(loss(slight, real))


def test_stft_loss_gradient_is_finite_on_silence():
    fake = torch.zeros(1, 4096, requires_grad=True)
    MultiResolutionSTFTLoss()(fake, torch.zeros(1, 4096)).backward()
    assert torch.isfinite(fake.grad).all()


def test_resolutions_scale_with_sample_rate():
    assert stft_resolutions(SPEC_48K) == tuple(
        (2 * n, 2 * h, 2 * w) for n, h, w in stft_resolutions(DEFAULT_SPEC)
    )


def test_mel_l1_matches_direct_computation():
    real, fake = _tone(440.0), _tone(660.0)
    mel = log_mel(real)
    assert float(mel_l1_loss(real, mel, DEFAULT_SPEC)) == pytest.approx(0.0, abs=1e-6)
    expected = (log_mel(fake) - mel).abs().mean()
    assert float(mel_l1_loss(fake, mel, DEFAULT_SPEC)) == pytest.approx(float(expected), rel=1e-5)


def test_adversarial_losses_have_the_textbook_values():
    real, fake = [torch.tensor([2.0, 0.5])], [torch.tensor([-2.0, 0.0])]
    # hinge: relu(1 - real) -> [0, 0.5] mean 0.25; relu(1 + fake) -> [0, 1] mean 0.5
    assert float(discriminator_loss(real, fake, kind="hinge")) == pytest.approx(0.75)
    # lsgan: (1 - real)^2 -> [1, 0.25] mean 0.625; fake^2 -> [4, 0] mean 2
    assert float(discriminator_loss(real, fake, kind="lsgan")) == pytest.approx(2.625)
    assert float(generator_adversarial_loss(fake, kind="hinge")) == pytest.approx(2.0)
    assert float(generator_adversarial_loss(fake, kind="lsgan")) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        discriminator_loss(real, fake, kind="wgan")


def test_feature_matching_passes_gradient_only_to_fake_features():
    real = [[torch.ones(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True)]]
    fake = [[torch.zeros(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True)]]
    loss = feature_matching_loss(real, fake)
    assert float(loss.detach()) == pytest.approx(1.0)  # layer 1 differs by 1 everywhere, layer 2 matches
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def _chirp(n: int = 12_000) -> torch.Tensor:
    t = torch.arange(n) / 24_000
    clicks = torch.zeros(n)
    clicks[::3000] = 1.0  # transients: their group delay says where in each frame they sit
    return (0.3 * torch.sin(2 * torch.pi * (300 + 2000 * t) * t) + 0.5 * clicks)[None]


def test_phase_loss_sees_polarity_and_delay_but_not_level():
    real = _chirp()
    n_fft, hop = DEFAULT_SPEC.n_fft, DEFAULT_SPEC.hop_length
    assert float(phase_loss(real, real, n_fft, hop)) == pytest.approx(0.0, abs=1e-3)
    assert float(phase_loss(0.5 * real, real, n_fft, hop)) == pytest.approx(0.0, abs=1e-3)
    # a polarity flip turns every phase by pi (the phase term is 2) but keeps every phase difference
    assert float(phase_loss(-real, real, n_fft, hop)) == pytest.approx(2.0, abs=0.05)
    delayed = torch.roll(real, 24, dims=1)  # 1 ms late
    assert float(phase_loss(delayed, real, n_fft, hop)) > 0.3


def test_phase_loss_gradient_is_finite_on_silence():
    fake = torch.zeros(1, 4096, requires_grad=True)
    phase_loss(fake, _chirp(4096), DEFAULT_SPEC.n_fft, DEFAULT_SPEC.hop_length).backward()
    assert torch.isfinite(fake.grad).all()
