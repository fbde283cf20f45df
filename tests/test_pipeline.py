"""v2a.pipeline / v2a generate with the bundled generator: files, seeds, watermark, lengths and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from media import make_counter_video
from v2a.cli import main
from v2a.errors import InputError, OutputError
from v2a.io.video import probe
from v2a.pipeline import FoleyPipeline
from v2a.watermark import detect_file
from v2a.watermark.files import GENERATOR

STEPS = 2  # plumbing tests: few steps keep them fast (quality is measured in benchmarks/)


@pytest.fixture(scope="module")
def pipe() -> FoleyPipeline:
    return FoleyPipeline.from_pretrained(device="cpu")


def test_variants_are_written_muxed_marked_and_reproducible(pipe, sample_video, tmp_path):
    out = tmp_path / "out"
    res = pipe(sample_video, num_waveforms_per_prompt=2, seed=5, num_inference_steps=STEPS, out_dir=out,
               progress=False)  # fmt: skip
    assert res.seeds == [5, 6] and res.waveforms.shape == (2, round(8.0 * 24_000))
    for seed in (5, 6):
        info = probe(out / f"bounce.{seed}.mp4")
        assert info.has_audio and abs(info.duration_s - 8.0) < 0.05
        assert info.tags.get("generator") == GENERATOR and "watermark_key_id" in info.tags
        assert detect_file(out / f"bounce.{seed}.wav").detected
    assert np.abs(res.waveforms[0] - res.waveforms[1]).mean() > 1e-3  # seeds differ
    again = pipe(sample_video, seed=5, num_inference_steps=STEPS, progress=False)
    np.testing.assert_allclose(again.waveforms[0], res.waveforms[0], atol=1e-5)  # same seed, same track
    with pytest.raises(OutputError):
        pipe(sample_video, seed=5, num_inference_steps=STEPS, out_dir=out, progress=False)


def test_unmarked_only_when_asked(pipe, sample_video, tmp_path, caplog):
    res = pipe(sample_video, seed=0, num_inference_steps=STEPS, watermark=False, out_dir=tmp_path,
               output_format="wav", progress=False)  # fmt: skip
    assert not res.watermarked and "watermarking is OFF" in caplog.text
    assert not detect_file(res.paths[0]["wav"]).detected
    assert "mp4" not in res.paths[0]


def test_text_only_image_and_long_inputs(pipe, tmp_path):
    text = pipe(None, "rain on a tin roof", duration=3.0, num_inference_steps=STEPS, progress=False)
    assert text.waveforms.shape == (1, 72_000)
    image = np.full((120, 160, 3), 90, np.uint8)
    still = pipe(image=image, duration=2.0, num_inference_steps=STEPS, progress=False)
    assert still.waveforms.shape == (1, 48_000)
    long = make_counter_video(tmp_path / "long.mp4", fps=25, num_frames=25 * 12)
    res = pipe(long, num_inference_steps=STEPS, window_s=4.0, context_s=1.0, progress=False)
    assert res.waveforms.shape == (1, round(probe(long).duration_s * 24_000))
    part = pipe(long, start=3.0, duration=4.0, num_inference_steps=STEPS, progress=False)
    assert part.start_s == 3.0 and part.waveforms.shape == (1, 96_000)


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
    ],
)
def test_bad_arguments_are_one_clear_error(pipe, sample_video, kwargs, message):
    with pytest.raises(InputError, match=message):
        pipe(sample_video, num_inference_steps=STEPS, progress=False, **kwargs)


def test_cli_generate_json_and_errors(sample_video, tmp_path, capsys):
    rc = main(["generate", str(sample_video), "--steps", "2", "-n", "2", "--out", str(tmp_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["seeds"] == [0, 1] and report["watermarked"]
    assert all(tmp_path.joinpath(p).exists() for files in report["paths"] for p in files.values())
    assert main(["generate", str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.startswith("v2a: error:")
    assert main(["generate", str(sample_video), "--transcript", str(tmp_path / "none.txt")]) == 2
    assert main(["generate", "--checkpoint", str(tmp_path / "nope"), "--prompt", "rain"]) == 2
