"""Watermarking and checking files: audio files, videos (stream copied, tags added), unreadable inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from v2a.errors import InputError, OutputError
from v2a.io.audio import save_audio
from v2a.io.audio_tags import probe_audio
from v2a.io.video import probe
from v2a.io.writer import write_video
from v2a.watermark import DEFAULT_KEY, detect_file, key_id, provenance_tags, watermark_file

from .conftest import SR

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bounce.mp4"
PAYLOAD = 0x0A0B0C0D


def test_a_detected_mark_whose_payload_fails_its_crc_reports_a_best_guess(tmp_path, rain):
    """Loud white noise (5x the track's level): the mark is still found, the payload no longer passes its CRC."""
    marked = watermark_file(
        save_audio(tmp_path / "rain.wav", rain, SR), tmp_path / "marked.wav", payload=PAYLOAD
    )
    wav, _ = sf.read(marked, dtype="float32")
    noise = np.random.default_rng(7).standard_normal(wav.size).astype(np.float32)
    noisy = save_audio(tmp_path / "noisy.wav", (wav + 5.0 * np.std(rain) * noise) / 8.0, SR)
    found = detect_file(noisy)
    assert found.detected and found.payload is None and found.payload_fields is None
    assert found.to_dict()["payload_guess"] == found.payload_guess.hex()
    errors = bin(int.from_bytes(found.payload_guess, "big") ^ PAYLOAD).count("1")
    assert errors < 16  # the systematic code's per-bit guess beats a coin
    cli = subprocess.run(
        [sys.executable, "-m", "v2a.cli", "detect", str(noisy)], capture_output=True, text=True, check=True
    )
    assert "watermark FOUND" in cli.stdout and f"best guess {found.payload_guess.hex()}" in cli.stdout
    assert detect_file(marked).to_dict()["payload_guess"] is None  # a readable payload needs no guess


def test_audio_file_round_trip(tmp_path, rain):
    src = save_audio(tmp_path / "rain.wav", rain, SR)
    for name in ("marked.flac", "marked.mp3", "marked.m4a"):
        out = watermark_file(src, tmp_path / name, payload=PAYLOAD)
        found = detect_file(out)
        assert found.detected and found.payload == PAYLOAD.to_bytes(4, "big"), name
    assert not detect_file(src).detected
    assert not detect_file(tmp_path / "marked.flac", key="another key").detected


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_audio_outputs_carry_provenance_tags(tmp_path, rain, ext):
    src = save_audio(tmp_path / "rain.wav", rain, SR)
    out = watermark_file(src, tmp_path / f"marked.{ext}", payload=PAYLOAD, model_id="foley-small")
    tags = probe_audio(out).tags
    assert tags == provenance_tags(payload=PAYLOAD, model_id="foley-small")
    assert tags["watermark_key_id"] == key_id(DEFAULT_KEY) and DEFAULT_KEY not in str(tags)
    assert tags["watermark_payload"] == "0a0b0c0d"
    assert detect_file(out).payload == PAYLOAD.to_bytes(4, "big")  # the tags leave the audio readable
    assert probe_audio(src).tags == {}


def test_video_keeps_its_stream_gets_tags_and_a_marked_track(tmp_path):
    out = watermark_file(EXAMPLE, tmp_path / "marked.mp4", payload=PAYLOAD, model_id="foley-small")
    tags = probe(out).tags
    assert tags["generator"].startswith("Foley") and tags["model_id"] == "foley-small"
    assert tags["watermark_key_id"] == key_id(DEFAULT_KEY) and DEFAULT_KEY not in str(tags)
    assert _video_packets(out) == _video_packets(EXAMPLE)  # copied bit-exactly
    found = detect_file(out)
    assert found.detected and found.payload == PAYLOAD.to_bytes(4, "big")
    assert found.to_dict()["payload"] == "0a0b0c0d"
    assert set(found.to_dict()) >= {"detected", "p_value", "payload", "segments"}
    assert not detect_file(EXAMPLE).detected


def test_unreadable_and_unsuitable_inputs_raise_one_clear_error(tmp_path, rain):
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 100)
    with pytest.raises(InputError, match=r"notes\.txt"):
        detect_file(text)
    with pytest.raises(InputError, match="does not exist"):
        detect_file(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        watermark_file(empty, tmp_path / "out.wav")
    silent_video = write_video(tmp_path / "silent.mp4", np.zeros((10, 32, 32, 3), np.uint8), fps=10)
    with pytest.raises(InputError, match="no audio"):
        watermark_file(silent_video, tmp_path / "out.mp4")
    src = save_audio(tmp_path / "in.wav", rain, SR)
    with pytest.raises(OutputError, match="over the input"):
        watermark_file(src, src, overwrite=True)
    watermark_file(src, tmp_path / "once.wav")
    with pytest.raises(OutputError, match="exists"):
        watermark_file(src, tmp_path / "once.wav")
    low = save_audio(tmp_path / "low.wav", rain[::6], 4000)
    with pytest.raises(InputError, match="too low"):
        detect_file(low)


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
