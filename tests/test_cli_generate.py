"""`v2a generate`: the command line over v2a.pipeline (exit codes, JSON report, one-line errors, warnings).

The generator checkpoint has random, UNTRAINED weights: these tests check the command's plumbing, not sound.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from v2a.cli import main
from v2a.io.video import probe
from v2a.watermark import detect_file


@pytest.fixture(scope="module")
def checkpoint(random_generator_checkpoint: Path) -> str:
    """The random-weight generator checkpoint, as a command-line argument."""
    return str(random_generator_checkpoint)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("v2a: error:"), err
    return lines[0]


def test_generate_writes_the_variants_and_reports_them_as_json(checkpoint, sample_video, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["generate", str(sample_video), "--checkpoint", checkpoint, "--device", "cpu", "--steps", "2", "-n", "2",
            "--seed", "3", "--out", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)  # stdout is exactly the JSON report
    assert report["seeds"] == [3, 4] and report["watermarked"] and report["sample_rate"] == 24_000
    assert report["start_s"] == 0.0 and report["duration_s"] == pytest.approx(probe(sample_video).duration_s)
    assert [sorted(files) for files in report["paths"]] == [["mp4", "wav"], ["mp4", "wav"]]
    written = [Path(p) for files in report["paths"] for p in files.values()]
    assert all(p.is_file() for p in written) and sorted(p.name for p in out.iterdir()) == sorted(
        ["bounce.3.mp4", "bounce.3.wav", "bounce.4.mp4", "bounce.4.wav"]
    )
    assert detect_file(report["paths"][1]["mp4"]).detected
    # the same command again refuses to overwrite: exit 2, one line
    assert main(argv) == 2
    assert "exists" in _one_error_line(capsys.readouterr().err)


def test_a_missing_video_is_one_error_line(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "missing.mp4")]) == 2
    captured = capsys.readouterr()
    assert "missing.mp4" in _one_error_line(captured.err) and captured.out == ""


def test_a_missing_transcript_or_checkpoint_is_exit_2(checkpoint, sample_video, tmp_path, capsys):
    argv = ["generate", str(sample_video), "--checkpoint", checkpoint, "--out", str(tmp_path)]
    assert main([*argv, "--transcript", str(tmp_path / "missing.txt")]) == 2
    assert "transcript" in _one_error_line(capsys.readouterr().err)
    assert (
        main(["generate", "--checkpoint", str(tmp_path / "nope"), "--prompt", "rain", "--out", str(tmp_path)])
        == 2
    )
    _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # nothing written by the failed calls


def test_no_watermark_warns_and_writes_an_unmarked_track(checkpoint, tmp_path, capsys, caplog):
    argv = ["generate", "--prompt", "rain", "--duration", "2", "--checkpoint", checkpoint, "--device", "cpu",
            "--steps", "2", "--format", "wav", "--out", str(tmp_path), "--no-watermark", "--json"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    assert any(
        r.levelno == logging.WARNING and "watermarking is OFF" in r.getMessage() for r in caplog.records
    )
    report = json.loads(capsys.readouterr().out)
    assert not report["watermarked"] and report["paths"] == [{"wav": str(tmp_path / "foley.0.wav")}]
    assert not detect_file(tmp_path / "foley.0.wav").detected


def test_generate_flag_defaults_are_the_models_sampling_defaults(capsys):
    """The CLI spells the defaults out (so --help needs no torch); they must be the generator's own."""
    from v2a.cli import build_parser
    from v2a.model.dit import DEFAULT_GUIDANCE, DEFAULT_GUIDANCE_NO_PROMPT, DEFAULT_SAMPLER, DEFAULT_STEPS
    from v2a.model.flow import SAMPLERS

    args = build_parser().parse_args(["generate", "clip.mp4"])
    assert (args.steps, args.sampler, args.cfg) == (DEFAULT_STEPS, DEFAULT_SAMPLER, None)  # None: per prompt
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert (
        f"default {DEFAULT_GUIDANCE:g} with a --prompt, {DEFAULT_GUIDANCE_NO_PROMPT:g} for the picture"
        in usage
    )
    assert DEFAULT_SAMPLER in SAMPLERS
