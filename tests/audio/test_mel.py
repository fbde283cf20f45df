from __future__ import annotations

import numpy as np
import pytest
import torch

from v2a.audio.mel import hz_to_mel, log_mel, mel_filterbank, mel_to_hz
from v2a.audio.spec import DEFAULT_SPEC, SPEC_48K, AudioSpec
from v2a.errors import InputError


def _reference_log_mel(wav: np.ndarray, spec: AudioSpec) -> np.ndarray:
    """Slaney-style log-mel written from scratch in numpy: loops over bands, explicit frames."""

    def to_mel(f: float) -> float:  # Auditory Toolbox: 200/3 Hz per mel up to 1 kHz, then log steps
        return f / (200 / 3) if f < 1000 else 15 + np.log(f / 1000) * 27 / np.log(6.4)

    def to_hz(m: float) -> float:
        return m * 200 / 3 if m < 15 else 1000 * np.exp((m - 15) * np.log(6.4) / 27)

    n_bins = spec.n_fft // 2 + 1
    freqs = np.arange(n_bins) * spec.sample_rate / spec.n_fft
    lo, hi = to_mel(spec.f_min), to_mel(spec.f_max)
    edges = [to_hz(lo + (hi - lo) * i / (spec.n_mels + 1)) for i in range(spec.n_mels + 2)]
    bank = np.zeros((spec.n_mels, n_bins))
    for m in range(spec.n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if left < f <= centre:
                bank[m, k] = (f - left) / (centre - left)
            elif centre < f < right:
                bank[m, k] = (right - f) / (right - centre)
        bank[m] *= 2 / (right - left)
    padded = np.pad(wav.astype(np.float64), spec.n_fft // 2)
    n = np.arange(spec.win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / spec.win_length)
    offset = (spec.n_fft - spec.win_length) // 2
    full_window = np.zeros(spec.n_fft)
    full_window[offset : offset + spec.win_length] = window
    n_frames = (len(padded) - spec.n_fft) // spec.hop_length + 1
    frames = np.stack(
        [padded[t * spec.hop_length : t * spec.hop_length + spec.n_fft] for t in range(n_frames)]
    )
    mag = np.abs(np.fft.rfft(frames * full_window, axis=1)).T  # (F, T)
    return np.log(np.maximum(bank @ mag, spec.log_floor))


def test_slaney_scale_anchor_points():
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)
    assert float(hz_to_mel(6400.0)) == pytest.approx(42.0)  # 27 mels per factor 6.4 above 1 kHz
    freqs = np.array([0.0, 300.0, 999.0, 1000.0, 5000.0, 11_000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(freqs)), freqs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, SPEC_48K], ids=lambda s: s.name)
def test_matches_numpy_reference(spec: AudioSpec):
    rng = np.random.default_rng(1)
    t = np.arange(int(0.3 * spec.sample_rate)) / spec.sample_rate
    wav = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = log_mel(wav, spec).numpy()
    ref = _reference_log_mel(wav, spec)
    assert ours.shape == ref.shape == (spec.n_mels, spec.num_frames(len(wav)))
    np.testing.assert_allclose(ours, ref, atol=2e-3)


@pytest.mark.parametrize("length", [0, 1, 255, 256, 257, 511, 1000, 24_000, 24_001])
def test_frame_count_for_any_length(length: int):
    frames = log_mel(torch.zeros(length)).shape
    assert frames == (DEFAULT_SPEC.n_mels, DEFAULT_SPEC.num_frames(length))
    batch = log_mel(np.zeros((3, length), dtype=np.float32), SPEC_48K).shape
    assert batch == (3, SPEC_48K.n_mels, SPEC_48K.num_frames(length))


def test_silence_sits_at_the_floor_and_loud_tone_peaks_in_its_band():
    silence = log_mel(torch.zeros(2400))
    torch.testing.assert_close(silence, torch.full_like(silence, float(np.log(DEFAULT_SPEC.log_floor))))
    t = torch.arange(24_000) / 24_000
    mel = log_mel(0.5 * torch.sin(2 * torch.pi * 2000 * t))
    peak_band = int(mel[:, 40].argmax())
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(12_000.0), 102))[1:-1]
    assert abs(centres[peak_band] - 2000) < 150


def test_batch_rows_equal_single_calls_and_are_deterministic():
    rng = np.random.default_rng(0)
    wav = rng.uniform(-1, 1, (4, 5000)).astype(np.float32)
    batch = log_mel(torch.from_numpy(wav))
    for i in range(4):
        torch.testing.assert_close(batch[i], log_mel(wav[i]), rtol=0, atol=1e-5)
    assert torch.equal(batch, log_mel(torch.from_numpy(wav)))
    assert log_mel(wav.astype(np.float64)).dtype == torch.float32


def test_filterbank_is_cached_and_triangles_are_positive():
    bank = mel_filterbank(DEFAULT_SPEC)
    assert bank is mel_filterbank(DEFAULT_SPEC)
    assert bank.shape == (DEFAULT_SPEC.n_mels, DEFAULT_SPEC.n_fft // 2 + 1)
    assert torch.all(bank >= 0) and torch.all(bank.sum(dim=1) > 0)


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, 4), torch.zeros(()), torch.zeros(10, dtype=torch.int16)])
def test_bad_input_raises_input_error(bad: torch.Tensor):
    with pytest.raises(InputError, match="log_mel expects"):
        log_mel(bad)
