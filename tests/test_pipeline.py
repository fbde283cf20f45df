"""v2a.pipeline (FoleyPipeline, generate, GenerationResult): files, seeds, watermark, lengths and errors.

The generator checkpoint here is the tiny config with random, UNTRAINED weights (its zero-initialised adaLN
layers given random values so the conditions reach the output), with the bundled codec, vocoder and
encoders around it. These tests check plumbing (what is encoded, windowed, decoded, marked and written where),
seeds, the watermark and the errors: not sound quality, which the benchmarks measure with trained weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from media import make_counter_video
from v2a.dialogue import dialogue_track
from v2a.errors import InputError, OutputError
from v2a.io.audio import load_audio
from v2a.io.video import probe
from v2a.pipeline import FoleyPipeline, GenerationResult, generate
from v2a.watermark import DEFAULT_KEY, detect_file, embed, key_id
from v2a.watermark.files import GENERATOR

STEPS = 2  # plumbing tests: few steps keep them fast
SR = 24_000


@pytest.fixture(scope="module")
def checkpoint(random_generator_checkpoint: Path) -> Path:
    """The random-weight generator (see the module docstring)."""
    return random_generator_checkpoint


@pytest.fixture(scope="module")
def pipe(checkpoint: Path) -> FoleyPipeline:
    return FoleyPipeline.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def made(pipe: FoleyPipeline, sample_video: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two variants of the sample video from seed 5, written to a fresh folder."""
    out = tmp_path_factory.mktemp("made")
    res = pipe(sample_video, num_waveforms_per_prompt=2, seed=5, num_inference_steps=STEPS, out_dir=out,
               progress=False)  # fmt: skip
    return res, out


def test_variants_are_written_muxed_tagged_and_marked(made, sample_video):
    res, out = made
    duration = probe(sample_video).duration_s  # 8 s
    assert isinstance(res, GenerationResult) and res.seeds == [5, 6] and res.sample_rate == SR
    assert res.waveforms.shape == (2, round(duration * SR)) and res.waveforms.dtype == np.float32
    assert bool(np.isfinite(res.waveforms).all()) and res.start_s == 0.0 and res.duration_s == duration
    assert res.watermarked and set(res.timings) == {
        "encode",
        "sample",
        "decode",
        "watermark",
        "write",
        "total",
    }
    assert sorted(p.name for p in out.iterdir()) == [
        "bounce.5.mp4",
        "bounce.5.wav",
        "bounce.6.mp4",
        "bounce.6.wav",
    ]
    assert res.paths == [
        {"wav": str(out / f"bounce.{s}.wav"), "mp4": str(out / f"bounce.{s}.mp4")} for s in (5, 6)
    ]
    source = probe(sample_video)
    for i, seed in enumerate(res.seeds):
        info = probe(out / f"bounce.{seed}.mp4")
        assert info.has_audio and abs(info.duration_s - duration) < 0.05
        assert (info.num_frames, info.width, info.height) == (source.num_frames, source.width, source.height)
        assert info.tags["generator"] == GENERATOR and info.tags["watermark_key_id"] == key_id(DEFAULT_KEY)
        assert info.tags["model_id"] == "foley-random-tiny"
        wav, sr = load_audio(out / f"bounce.{seed}.wav")
        assert sr == SR
        np.testing.assert_allclose(wav, res.waveforms[i], atol=1e-4)  # the file holds the returned track
        assert detect_file(out / f"bounce.{seed}.wav").detected
        assert detect_file(out / f"bounce.{seed}.mp4").detected  # survives the AAC of the muxed copy
    assert np.sqrt(np.mean(res.waveforms**2)) > 1e-3  # not silence


def test_a_variant_depends_only_on_its_seed(pipe, made, sample_video):
    res, _ = made
    assert np.abs(res.waveforms[0] - res.waveforms[1]).mean() > 1e-3  # seeds 5 and 6 differ
    again = pipe(
        sample_video, num_waveforms_per_prompt=2, seed=[5, 9], num_inference_steps=STEPS, progress=False
    )
    assert again.seeds == [5, 9] and again.paths == []
    np.testing.assert_array_equal(again.waveforms[0], res.waveforms[0])  # same seed, same track, bit for bit
    assert np.abs(again.waveforms[1] - res.waveforms[1]).mean() > 1e-3


def test_the_default_guidance_is_7_for_the_picture_alone_and_5_with_a_prompt(pipe, sample_video):
    def run(prompt: str | None, cfg: float | None) -> GenerationResult:
        return pipe(sample_video, prompt, seed=3, duration=2.0, num_inference_steps=STEPS, guidance_scale=cfg,
                    progress=False)  # fmt: skip

    alone, prompted = run(None, None), run("footsteps on gravel", None)
    assert (alone.guidance_scale, prompted.guidance_scale) == (7.0, 5.0)
    assert alone.to_dict()["guidance_scale"] == 7.0
    np.testing.assert_array_equal(alone.waveforms, run(None, 7.0).waveforms)  # the default is exactly 7
    np.testing.assert_array_equal(prompted.waveforms, run("footsteps on gravel", 5.0).waveforms)
    assert np.abs(alone.waveforms - run(None, 5.0).waveforms).mean() > 1e-4  # and 7 is not 5
    assert run(None, 2.0).guidance_scale == 2.0  # an explicit scale wins


def test_a_transcript_is_spoken_at_its_cue_times_over_the_ducked_sound(pipe, made, sample_video):
    res, _ = made
    srt = "1\n00:00:02,000 --> 00:00:04,500\nThe ball keeps bouncing on the floor.\n"
    spoken = pipe(
        sample_video, transcript=srt, seed=5, num_inference_steps=STEPS, watermark=False, progress=False
    )
    assert "dialogue" in spoken.timings and spoken.waveforms.shape == res.waveforms[:1].shape
    plain = pipe(sample_video, seed=5, num_inference_steps=STEPS, watermark=False, progress=False)

    def rms(wav: np.ndarray, a: float, b: float) -> float:
        return float(np.sqrt(np.mean(wav[int(a * SR) : int(b * SR)] ** 2)))

    added = spoken.waveforms[0] - plain.waveforms[0]
    assert rms(added, 2.1, 4.0) > 3 * rms(added, 5.5, 8.0)  # the speech sits in its cue
    speech = dialogue_track(sample_video, srt, start_s=0.0, duration_s=spoken.duration_s, sample_rate=SR)
    cue = slice(int(2.1 * SR), int(4.0 * SR))

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a[cue], b[cue])[0, 1])

    assert corr(spoken.waveforms[0], speech) > 0.5 > 0.1 > abs(corr(plain.waveforms[0], speech))


def test_unmarked_only_when_asked_and_then_not_claimed(pipe, made, sample_video, tmp_path, caplog):
    res = pipe(
        sample_video, seed=5, num_inference_steps=STEPS, watermark=False, out_dir=tmp_path, progress=False
    )
    assert not res.watermarked and "watermarking is OFF" in caplog.text
    assert not detect_file(res.paths[0]["wav"]).detected
    tags = probe(res.paths[0]["mp4"]).tags
    assert tags["generator"] == GENERATOR and "watermark_key_id" not in tags
    # the mark is the only difference from the marked track of the same seed
    marked, _ = made
    np.testing.assert_allclose(embed(res.waveforms[0], SR), marked.waveforms[0], atol=1e-3)


def test_text_only_through_generate(checkpoint, tmp_path):
    res = generate(None, prompt="rain", duration=3, checkpoint=checkpoint, device="cpu",
                   num_inference_steps=STEPS, out_dir=tmp_path, progress=False)  # fmt: skip
    assert res.waveforms.shape == (1, 3 * SR) and res.duration_s == 3.0 and res.seeds == [0]
    assert res.paths == [{"wav": str(tmp_path / "foley.0.wav")}]  # no video: no mp4
    assert detect_file(tmp_path / "foley.0.wav").detected


def test_an_image_conditions_the_sound(pipe, tmp_path):
    cat = skimage.data.chelsea()
    still = pipe(image=cat, duration=2.0, seed=0, num_inference_steps=STEPS, progress=False)
    blind = pipe(None, duration=2.0, seed=0, num_inference_steps=STEPS, progress=False)
    assert still.waveforms.shape == blind.waveforms.shape == (1, 2 * SR)
    assert np.abs(still.waveforms - blind.waveforms).mean() > 1e-3  # the picture reached the generator
    Image.fromarray(cat).save(tmp_path / "chelsea.png")
    from_file = pipe(image=tmp_path / "chelsea.png", duration=2.0, seed=0, num_inference_steps=STEPS,
                     out_dir=tmp_path, output_format="flac", progress=False)  # fmt: skip
    assert from_file.paths == [{"flac": str(tmp_path / "chelsea.0.flac")}]
    np.testing.assert_allclose(from_file.waveforms, still.waveforms, atol=1e-4)


def test_a_long_video_is_generated_whole_and_a_span_lands_at_its_time(pipe, tmp_path):
    video = make_counter_video(tmp_path / "long.mp4", fps=25, num_frames=25 * 12)
    whole = pipe(video, num_inference_steps=STEPS, window_s=4.0, context_s=1.0, progress=False)
    assert whole.waveforms.shape == (1, round(probe(video).duration_s * SR)) == (1, 12 * SR)
    assert bool(np.isfinite(whole.waveforms).all())
    part = pipe(video, start=3.0, duration=2.0, num_inference_steps=STEPS, window_s=4.0, context_s=1.0,
                out_dir=tmp_path / "out", progress=False)  # fmt: skip
    assert part.start_s == 3.0 and part.duration_s == 2.0 and part.waveforms.shape == (1, 2 * SR)
    track, sr = load_audio(part.paths[0]["mp4"])
    assert sr == SR and np.abs(track[: round(2.9 * SR)]).max() < 1e-3  # silence before the span
    assert np.sqrt(np.mean(track[round(3.1 * SR) : round(4.9 * SR)] ** 2)) > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_waveforms_per_prompt": 0}, "num_waveforms_per_prompt"),
        ({"seed": -1}, "seeds must be"),
        ({"seed": [1, 2]}, "one seed per variant"),
        ({"start": 100.0}, "--start must be"),
        ({"image": np.zeros((64, 64, 3), np.uint8)}, "not both"),
        ({"output_format": "ogg"}, "output format"),
        ({"method": "rk4"}, "unknown sampler"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"duration": 0.01}, "duration"),
        ({"transcript": "1\n00:00:0x,000 --> 00:00:03,000\nHi\n"}, "SRT transcript line 2"),
    ],
)
def test_bad_arguments_are_one_clear_error(pipe, sample_video, kwargs, message):
    kwargs = {"num_inference_steps": STEPS, **kwargs}
    with pytest.raises(InputError, match=message):
        pipe(sample_video, progress=False, **kwargs)


def test_a_missing_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        FoleyPipeline.from_pretrained(tmp_path / "nope", device="cpu")
    with pytest.raises(InputError):
        generate(None, prompt="rain", checkpoint=tmp_path / "nope", device="cpu")


def test_existing_outputs_are_kept_unless_overwrite(pipe, sample_video, tmp_path):
    existing = tmp_path / "bounce.0.wav"
    existing.write_bytes(b"not to be lost")
    with pytest.raises(OutputError):
        pipe(sample_video, seed=0, duration=1.0, num_inference_steps=STEPS, out_dir=tmp_path, progress=False)
    assert existing.read_bytes() == b"not to be lost"
    assert [p.name for p in tmp_path.iterdir()] == ["bounce.0.wav"]  # and nothing else was written
    res = pipe(sample_video, seed=0, duration=1.0, num_inference_steps=STEPS, out_dir=tmp_path, overwrite=True,
               progress=False)  # fmt: skip
    wav, _ = load_audio(existing)  # replaced by the generated track
    np.testing.assert_allclose(wav, res.waveforms[0], atol=1e-4)


def test_an_existing_output_fails_the_call_before_anything_is_written(pipe, sample_video, tmp_path):
    (tmp_path / "bounce.1.mp4").write_bytes(b"not to be lost")
    with pytest.raises(OutputError):
        pipe(sample_video, num_waveforms_per_prompt=2, seed=0, duration=1.0, num_inference_steps=STEPS,
             out_dir=tmp_path, progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bounce.1.mp4"]
