"""Encoder outputs -> generator conditions (v2a.model.inputs): cropping and padding must not change a clip.

(Named test_model_inputs.py: tests/eval/test_inputs.py already takes the basename ``test_inputs``, and two test
modules of one basename in folders without ``__init__.py`` break collection of the whole suite.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dit_helpers import randomize

from v2a.encoders.text import TextFeatures as EncodedText
from v2a.errors import InputError
from v2a.model.config import model_config
from v2a.model.dit import AudioDiT
from v2a.model.inputs import ClipFeatures, collate, crop, with_text

CFG = model_config("tiny")
C = CFG.latent_dim  # latent channels (the bundled codec's)
FPS = CFG.latent_fps  # 31.25 audio latent frames per second


def _text(rng: np.random.Generator, real: int, padded: int = 7) -> EncodedText:
    """One encoded prompt of ``real`` tokens, padded to ``padded`` like the text encoder pads a batch."""
    tokens = np.zeros((1, padded, 384), np.float32)
    tokens[0, :real] = rng.standard_normal((real, 384))
    mask = np.zeros((1, padded), bool)
    mask[0, :real] = True
    return EncodedText(tokens, mask, rng.standard_normal((1, 384)).astype(np.float32), np.array([False]))


def _null_text() -> EncodedText:
    """What the text encoder gives for an empty prompt."""
    return EncodedText(np.zeros((1, 1, 384), np.float32), np.zeros((1, 1), bool), np.zeros((1, 384), np.float32),
                       np.array([True]))  # fmt: skip


def _clip(seconds: float, seed: int, *, tokens: int = 4, latents: bool = True) -> ClipFeatures:
    """Random features of a clip at the encoders' rates (semantic 8 fps, sync 25 fps) with real timestamps."""
    rng = np.random.default_rng(seed)
    seq = CFG.sequence(seconds)
    n_sem, n_sync, n_lat = seq.semantic_frames, seq.sync_frames, seq.latent_frames
    return ClipFeatures(
        seconds,
        rng.standard_normal((n_sem, 384)).astype(np.float32),
        np.arange(n_sem) / 8,
        rng.standard_normal((n_sync, 128)).astype(np.float32),
        np.arange(n_sync) / 25,
        _text(rng, tokens),
        rng.standard_normal((C, n_lat)).astype(np.float32) if latents else None,
    )


def test_crop_on_the_frame_grid_starts_at_zero_and_takes_the_matching_frames():
    clip = _clip(8.0, 0)
    part = crop(clip, 2.0, 3.0, latent_fps=FPS)
    assert part.duration_s == 3.0 and part.text is clip.text
    assert part.semantic_times[0] == 0.0 and len(part.semantic) == 24  # 8 fps frames at 2.0 .. 4.875 s
    np.testing.assert_array_equal(part.semantic, clip.semantic[16:40])
    np.testing.assert_allclose(part.semantic_times, np.arange(24) / 8, atol=1e-9)
    assert part.sync_times[0] == 0.0 and len(part.sync) == 75
    np.testing.assert_array_equal(part.sync, clip.sync[50:125])
    j0 = round(2.0 * FPS)  # Python rounds 62.5 to 62
    np.testing.assert_array_equal(part.latents, clip.latents[:, j0 : j0 + 94])


def test_crop_off_the_grid_shifts_times_by_the_start():
    clip = _clip(8.0, 1)
    part = crop(clip, 1.3, 3.0, latent_fps=FPS)
    keep = (clip.semantic_times >= 1.3) & (clip.semantic_times < 4.3)
    np.testing.assert_array_equal(part.semantic, clip.semantic[keep])
    np.testing.assert_allclose(part.semantic_times, clip.semantic_times[keep] - 1.3, atol=1e-9)
    assert 0 <= part.semantic_times[0] < 1 / 8 and part.semantic_times[-1] < 3.0
    keep = (clip.sync_times >= 1.3 - 1e-9) & (clip.sync_times < 4.3 - 1e-9)
    np.testing.assert_array_equal(part.sync, clip.sync[keep])
    np.testing.assert_allclose(part.sync_times, clip.sync_times[keep] - 1.3, atol=1e-9)
    j0 = round(1.3 * FPS)  # 40.625 -> 41
    assert j0 == 41
    np.testing.assert_array_equal(part.latents, clip.latents[:, 41 : 41 + 94])


def test_crop_at_the_end_is_cut_to_the_clip_and_an_empty_window_keeps_the_nearest_frame():
    clip = _clip(8.0, 2)
    tail = crop(clip, 7.0, 5.0, latent_fps=FPS)
    assert tail.duration_s == 1.0 and len(tail.semantic) == 8 and tail.semantic_times[-1] < 1.0
    np.testing.assert_array_equal(tail.latents, clip.latents[:, round(7.0 * FPS) :])
    # 50 ms between two semantic frames (0.125 s apart): the nearest frame stands in
    sliver = crop(clip, 0.14, 0.05, latent_fps=FPS)
    assert len(sliver.semantic) == 1
    np.testing.assert_array_equal(sliver.semantic[0], clip.semantic[1])
    assert sliver.semantic_times[0] == pytest.approx(0.125 - 0.14)
    for start, duration in ((8.0, 1.0), (-0.5, 1.0), (3.0, 0.0)):
        with pytest.raises(InputError):
            crop(clip, start, duration, latent_fps=FPS)


def test_collate_pads_clips_and_marks_what_is_real():
    short, long = _clip(2.0, 3, tokens=3), _clip(4.0, 4, tokens=5)
    corpus = ClipFeatures(
        3.0, text=_null_text(), latents=np.ones((C, 94), np.float32)
    )  # audio + empty caption
    bare = ClipFeatures(2.5)  # nothing but a length
    latents, cond, T = collate([short, long, corpus, bare], CFG)
    assert T == 125 and latents.shape == (4, C, 125)
    assert cond.lengths.tolist() == [63, 125, 94, CFG.sequence(2.5).latent_frames]
    assert cond.has_video.tolist() == [True, True, False, False]
    torch.testing.assert_close(latents[0, :, :63], torch.from_numpy(short.latents))
    assert not latents[0, :, 63:].any() and not latents[3].any()
    torch.testing.assert_close(latents[2, :, :94], torch.ones(C, 94))
    assert not latents[2, :, 94:].any()
    cond.check(CFG, 4, T)  # shapes fit the network

    # semantic tokens: padded to the longest, masked; clips without video get frames within their duration
    assert cond.semantic.shape == (4, 32, 384) and cond.semantic_mask.sum(1).tolist() == [16, 32, 24, 20]
    torch.testing.assert_close(cond.semantic[0, :16], torch.from_numpy(short.semantic))
    assert (
        cond.semantic[0, 16:] == cond.semantic[0, 15]
    ).all()  # padding holds the last frame (and is masked)
    assert not cond.semantic[2:].any()
    assert bool((torch.diff(cond.semantic_times[0]) > 0).all())  # padding continues the timeline
    for row, duration in ((2, 3.0), (3, 2.5)):
        times, mask = cond.semantic_times[row], cond.semantic_mask[row]
        torch.testing.assert_close(times, torch.arange(32) / 8.0)
        assert bool((times[mask] < duration).all()) and bool((times[~mask] >= duration).all())
    assert cond.sync.shape == (4, 100, 128) and cond.sync_times.shape == (4, 100)
    torch.testing.assert_close(cond.sync[1], torch.from_numpy(long.sync))

    # text: real tokens packed to the front; an empty or missing prompt has no True in its mask row
    assert cond.text.tokens.shape == (4, 5, 384)
    assert cond.text.mask.sum(1).tolist() == [3, 5, 0, 0]
    assert cond.text.present.tolist() == [True, True, False, False]
    torch.testing.assert_close(cond.text.tokens[0, :3], torch.from_numpy(short.text.tokens[0, :3]))
    torch.testing.assert_close(cond.text.pooled[1], torch.from_numpy(long.text.pooled[0]))
    assert not cond.text.pooled[2:].any() and not cond.text.tokens[2:].any()


def test_collate_without_features_and_with_a_fixed_length():
    latents, cond, T = collate([ClipFeatures(2.0)], CFG)
    assert latents is None and T == 63 and cond.semantic is None and cond.sync is None and cond.text is None
    assert cond.has_video.tolist() == [False] and cond.lengths.tolist() == [63]
    latents, cond, T = collate([_clip(4.0, 5)], CFG, num_frames=100)
    assert T == 100 and latents.shape == (1, C, 100) and cond.lengths.tolist() == [100]
    with pytest.raises(InputError):
        collate([], CFG)


def test_with_text_gives_every_row_the_prompt_and_drops_an_empty_one():
    rng = np.random.default_rng(6)
    prompt = _text(rng, 4)
    _, cond, _ = collate([ClipFeatures(2.0), ClipFeatures(3.0)], CFG)
    both = with_text(with_text(cond, prompt), _text(rng, 2), negative=True)
    assert both.text.mask.sum(1).tolist() == [4, 4] and both.negative_text.mask.sum(1).tolist() == [2, 2]
    torch.testing.assert_close(both.text.tokens[1, :4], torch.from_numpy(prompt.tokens[0, :4]))
    assert both.has_any_prompt and both.has_any_negative_prompt
    assert with_text(both, _null_text()).text is None and with_text(both, None).text is None
    assert with_text(both, None, negative=True).negative_text is None
    assert with_text(both, None).negative_text is both.negative_text


@pytest.fixture(scope="module")
def net() -> AudioDiT:
    """The tiny generator with random weights everywhere (adaLN-Zero would otherwise make every velocity 0)."""
    torch.manual_seed(0)
    return randomize(AudioDiT(CFG), seed=1).eval()


def _batch() -> list[ClipFeatures]:
    """A short and a long video clip with prompts, an audio-only clip with an empty caption, a bare length."""
    return [
        _clip(2.0, 7, tokens=3),
        _clip(4.0, 8, tokens=5),
        ClipFeatures(3.0, text=_null_text(), latents=np.zeros((C, 94), np.float32)),
        ClipFeatures(2.5),
    ]


@torch.no_grad()
def _velocities(
    net: AudioDiT, clips: list[ClipFeatures]
) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """Velocity of the collated batch, and of each clip collated alone, at the same t and x."""
    _, cond, T = collate(clips, CFG)
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(len(clips), C, T, generator=g), torch.full((len(clips),), 0.4)
    prepared = net.prepare_conditions(cond, num_frames=T)
    assert prepared.context.shape == (len(clips), C + 1, T)  # the given latents and their mask
    assert prepared.audio_mask.sum(1).tolist() == cond.lengths.tolist()
    v = net.predict_flow(x, t, prepared)
    assert v.shape == (len(clips), C, T) and bool(torch.isfinite(v).all())
    alone, lengths = [], cond.lengths.tolist()
    for row, clip in enumerate(clips):
        n = lengths[row]
        assert not v[row, :, n:].any()  # padded frames get no velocity
        _, single, frames = collate([clip], CFG)
        assert frames == n
        alone.append(
            net.predict_flow(x[row : row + 1, :, :n], t[:1], net.prepare_conditions(single, num_frames=n))[0]
        )
        assert alone[-1].abs().mean() > 0.05  # a real signal, so the comparisons can fail
    return v, alone, lengths


def test_a_collated_batch_runs_through_the_network_and_rows_match_their_clip_alone(net):
    v, alone, lengths = _velocities(net, _batch())
    for row in (1, 2, 3):  # the longest clip, and the rows without video
        torch.testing.assert_close(v[row, :, : lengths[row]], alone[row], atol=1e-4, rtol=1e-4)


def test_padding_a_shorter_video_clip_does_not_change_its_velocity(net):
    # its last audio frames lie past its last sync frame: the padded sync frames must hold that frame's value
    v, alone, lengths = _velocities(net, _batch())
    torch.testing.assert_close(v[0, :, : lengths[0]], alone[0], atol=1e-4, rtol=1e-4)
