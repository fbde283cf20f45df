"""The `v2a` command as a user meets it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from v2a.io.writer import write_video


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "v2a.cli", *args], capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_probe_json_on_bundled_sample(sample_video):
    result = run_cli("probe", str(sample_video), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in ("duration_s", "fps", "width", "height", "rotation", "has_audio", "audio_rate", "codec"):
        assert key in info
    assert info["duration_s"] == pytest.approx(8.0, abs=0.05)
    assert info["fps"] == pytest.approx(25.0)
    assert (info["width"], info["height"]) == (256, 192)
    assert info["has_audio"] is True and info["audio_rate"] == 24_000 and info["codec"] == "h264"


def test_probe_table_is_human_readable(sample_video):
    result = run_cli("probe", str(sample_video))
    assert result.returncode == 0
    assert "duration_s" in result.stdout and "8" in result.stdout


def test_bad_inputs_give_one_line_and_exit_2(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_one_line_error(run_cli("probe", str(tmp_path / "missing.mp4")), "missing.mp4")
    assert_one_line_error(run_cli("probe", str(tmp_path)), str(tmp_path))
    assert_one_line_error(run_cli("probe", str(text)), "notes.txt")
    assert_one_line_error(run_cli("probe", str(empty)), "empty.mp4")
    assert_one_line_error(run_cli("probe", "--bogus-option", str(text)), "--bogus-option")
    assert_one_line_error(run_cli("frobnicate"), "frobnicate")


def test_debug_shows_traceback(tmp_path):
    result = run_cli("--debug", "probe", str(tmp_path / "missing.mp4"))
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_mux_command_writes_playable_video_and_refuses_input(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (50, 64, 96, 3), dtype=np.uint8)
    video = write_video(tmp_path / "clip.mp4", frames, fps=25)
    tone = 0.2 * np.sin(2 * np.pi * 330 * np.arange(48_000) / 24_000).astype(np.float32)
    from v2a.io.audio import save_audio

    track = save_audio(tmp_path / "tone.wav", tone, 24_000)
    out = tmp_path / "out.mp4"
    result = run_cli("mux", str(video), str(track), "-o", str(out), "--json", "--tag", "comment=foley test")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == str(out)
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
    probed = json.loads(run_cli("probe", str(out), "--json").stdout)
    assert probed["tags"]["comment"] == "foley test" and probed["num_audio_tracks"] == 1
    assert_one_line_error(run_cli("mux", str(video), str(track), "-o", str(video)), "input")
    before = out.read_bytes()
    assert_one_line_error(run_cli("mux", str(video), str(track), "-o", str(out)), "exists")
    assert out.read_bytes() == before
    assert_one_line_error(
        run_cli("mux", str(video), str(track), "-o", str(tmp_path / "x.mp4"), "--tag", "novalue")
    )


def test_data_ingest_then_shard(tmp_path, sample_video):
    src = tmp_path / "footage" / "bounce"
    src.mkdir(parents=True)
    (src / "a.mp4").write_bytes(sample_video.read_bytes())
    out = tmp_path / "clips"
    result = run_cli(
        "data", "ingest", str(tmp_path / "footage"), "--out", str(out), "--clip-s", "4", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["clips"] == 2 and report["dropped_clips"] == {}
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["duration_s"] for row in rows] == [4.0, 4.0]
    result = run_cli("data", "shard", str(out / "manifest.jsonl"), "--out", str(tmp_path / "shards"))
    assert result.returncode == 0, result.stderr
    assert "train: 1 shard(s), 2 clips" in result.stdout
    result = run_cli("data", "features", str(tmp_path / "shards"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["features"] == ["semantic", "sync", "text", "latents"]
    from v2a.data.shards import ShardDataset

    features = ("semantic", "sync", "text", "latents")
    samples = list(ShardDataset(tmp_path / "shards", features=features, shuffle_buffer=0))
    assert len(samples) == 2
    assert all(s["features"]["semantic"].shape == (32,) for s in samples)  # 4 s at 8 fps
    assert all(s["features"]["sync"].shape == (100,) for s in samples)  # 4 s at 25 fps
    # 4 s: 376 mel frames (hop 256, centred) -> ceil(376 / 3) = 126 latent frames at 31.25 fps
    assert all(s["features"]["latents"].shape == (32, 126) for s in samples)
    assert_one_line_error(run_cli("data", "ingest", str(tmp_path / "nope"), "--out", str(out)), "nope")
    assert_one_line_error(
        run_cli("data", "shard", str(tmp_path / "nope.jsonl"), "--out", str(out)), "nope.jsonl"
    )


def test_data_sfx_with_a_relative_cache(tmp_path, repo_root):
    # minetest-data is the one package the corpus tests fetch with apt (cached in .deb-cache/)
    out = tmp_path / "sfx"
    args = ["data", "sfx", "--out", str(out), "--packages", "minetest-data", "--cache", ".deb-cache"]
    result = subprocess.run(
        [sys.executable, "-m", "v2a.cli", *args, "--no-progress", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr
    assert "clips" in result.stdout and (out / "manifest.jsonl").exists() and (out / "README.md").exists()
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) > 50 and all(row["package"] == "minetest-data" for row in rows)


def test_data_foley_world_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["data", "foley-world", "--out", str(out), "--count", "2", "--seed", "3", "--size", "96"]
        result = run_cli(*args, "--duration", "2", "--workers", "1", "--no-progress", "--json")
        assert result.returncode == 0, result.stderr
        outs.append(json.loads(result.stdout)["manifest"])
    rows = [[json.loads(line) for line in Path(path).read_text().splitlines()] for path in outs]
    assert [r["caption"] for r in rows[0]] == [r["caption"] for r in rows[1]]
    assert [r["events"] for r in rows[0]] == [r["events"] for r in rows[1]]
    assert_one_line_error(
        run_cli("data", "foley-world", "--out", str(tmp_path / "c"), "--count", "0"), "--count"
    )


def test_watermark_then_detect(tmp_path, sample_video):
    marked = tmp_path / "marked.mp4"
    result = run_cli("watermark", str(sample_video), "-o", str(marked), "--payload", "0xCAFE0042")
    assert result.returncode == 0, result.stderr
    found = json.loads(run_cli("detect", str(marked), "--json").stdout)
    assert found["detected"] is True and found["p_value"] < 1e-4
    assert found["payload"].lower() == "cafe0042"
    tags = json.loads(run_cli("probe", str(marked), "--json").stdout)["tags"]
    assert tags["watermark_payload"].lower() == "cafe0042" and "watermark_key_id" in tags
    assert json.loads(run_cli("detect", str(sample_video), "--json").stdout)["detected"] is False
    assert (
        json.loads(run_cli("detect", str(marked), "--key", "not-the-key", "--json").stdout)["detected"]
        is False
    )
    assert_one_line_error(run_cli("detect", str(tmp_path / "none.wav")), "none.wav")
    assert_one_line_error(run_cli("watermark", str(marked), "-o", str(marked)), "input")


def test_reconstruct_and_sync_offset_with_bundled_models(tmp_path, sample_video):
    import soundfile

    for via in ("vocoder", "codec"):
        out = tmp_path / f"{via}.wav"
        result = run_cli("reconstruct", str(sample_video), "-o", str(out), "--via", via)
        assert result.returncode == 0, result.stderr
        info = soundfile.info(str(out))
        assert info.samplerate == 24_000 and abs(info.duration - 8.0) < 0.1  # the AAC stream runs 64 ms long
    offset = json.loads(run_cli("sync-offset", str(sample_video), "--json").stdout)
    assert abs(offset["offset_s"]) < 0.1 and 0 <= offset["confidence"] <= 1
    assert_one_line_error(run_cli("reconstruct", str(sample_video), "-o", str(sample_video)), "input")


def test_eval_scores_ground_truth_and_writes_a_report(tmp_path):
    manifest_dir = tmp_path / "fw"
    args = ["data", "foley-world", "--out", str(manifest_dir), "--count", "2", "--seed", "1", "--size", "96"]
    assert run_cli(*args, "--duration", "3", "--workers", "1", "--no-progress").returncode == 0
    report = tmp_path / "report.html"
    result = run_cli(
        "eval", "--manifest", str(manifest_dir / "manifest.jsonl"), "--metrics", "onset,quality",
        "--report", str(report), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["clips"] == 2 and 0 <= summary["onset_f1"] <= 1
    assert report.exists() and "<audio" in report.read_text()
    assert_one_line_error(run_cli("eval", "--manifest", str(tmp_path / "none.jsonl")), "none.jsonl")
