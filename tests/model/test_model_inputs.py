"""Encoder outputs -> generator conditions: cropping and padding must not change what a clip means."""

from __future__ import annotations

import numpy as np
import torch

from v2a.encoders.text import TextFeatures as EncodedText
from v2a.model.config import model_config
from v2a.model.dit import AudioDiT
from v2a.model.inputs import ClipFeatures, collate, crop


def _clip(seconds: float, seed: int) -> ClipFeatures:
    rng = np.random.default_rng(seed)
    n_sem, n_sync, n_lat = int(seconds * 8), int(seconds * 25), round(seconds * 31.25)
    mask = np.array([[True, True, True, False]])
    text = EncodedText(rng.standard_normal((1, 4, 384)).astype(np.float32), mask,
                       rng.standard_normal((1, 384)).astype(np.float32), np.array([False]))  # fmt: skip
    return ClipFeatures(
        seconds, rng.standard_normal((n_sem, 384)).astype(np.float32), np.arange(n_sem) / 8,
        rng.standard_normal((n_sync, 128)).astype(np.float32), np.arange(n_sync) / 25, text,
        rng.standard_normal((24, n_lat)).astype(np.float32),
    )  # fmt: skip


def test_crop_shifts_the_timeline_and_takes_the_matching_latents():
    clip = _clip(8.0, 0)
    part = crop(clip, 2.0, 3.0, latent_fps=31.25)
    assert part.duration_s == 3.0
    assert part.semantic_times[0] == 0.0 and part.semantic_times[-1] < 3.0 and len(part.semantic) == 24
    np.testing.assert_array_equal(part.semantic[0], clip.semantic[16])  # the frame at 2.0 s
    np.testing.assert_array_equal(part.sync[0], clip.sync[50])
    np.testing.assert_array_equal(part.latents, clip.latents[:, 62:62 + 94])  # fmt: skip


def test_padding_a_clip_in_a_batch_does_not_change_its_velocity():
    torch.manual_seed(0)
    net = AudioDiT(model_config("tiny")).eval()
    for p in net.parameters():  # adaLN-Zero starts at zero output: give every layer a say
        p.data.add_(0.02 * torch.randn_like(p))
    short, long = _clip(2.0, 1), _clip(4.0, 2)
    silent = ClipFeatures(3.0, latents=np.zeros((24, 94), np.float32))  # audio-only row
    _, alone, T1 = collate([short], net.cfg)
    _, batch, T = collate([short, long, silent], net.cfg)
    assert batch.lengths.tolist() == [T1, T, 94] and batch.has_video.tolist() == [True, True, False]
    assert batch.semantic_mask[0].sum() == 16 and batch.semantic_mask[2].sum() == 24
    assert not batch.text.mask[2].any()  # no prompt for the corpus row
    x = torch.randn(3, 24, T)
    t = torch.full((3,), 0.4)
    with torch.no_grad():
        v_alone = net(x[:1, :, :T1], t[:1], alone)
        v_batch = net(x, t, batch)
    torch.testing.assert_close(v_batch[0, :, :T1], v_alone[0], atol=1e-4, rtol=1e-4)
    assert v_batch[0, :, T1:].abs().max() == 0  # padded frames get no velocity
