"""Tags in audio files: written by save_audio(metadata=...), read back by probe_audio and `v2a probe`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from v2a.errors import InputError
from v2a.io.audio import load_audio, save_audio
from v2a.io.audio_tags import probe_audio

SR = 24_000
TAGS = {"generator": "Foley (v2a)", "watermark_key_id": "0799c996", "model_id": "foley-small"}


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    t = np.arange(SR) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


@pytest.mark.parametrize("ext", ["wav", "flac", "m4a", "mp3", "mka", "ogg", "aiff"])
def test_tags_round_trip(tmp_path, stereo, ext):
    out = save_audio(tmp_path / f"tagged.{ext}", stereo, SR, metadata=TAGS)
    info = probe_audio(out)
    assert info.tags == TAGS, ext
    assert info.audio_channels == 2 and info.duration_s == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_tags_leave_the_samples_and_other_readers_alone(tmp_path, stereo, ext):
    plain = save_audio(tmp_path / f"plain.{ext}", stereo, SR)
    tagged = save_audio(tmp_path / f"tagged.{ext}", stereo, SR, metadata=TAGS)
    assert probe_audio(plain).tags == {}
    assert np.array_equal(load_audio(plain, mono=False)[0], load_audio(tagged, mono=False)[0])
    with sf.SoundFile(tagged) as f:  # libsndfile still reads the file (and a WAV's tags as its comment)
        assert f.frames == SR and (ext == "flac" or "watermark_key_id=0799c996" in f.comment)


def test_flac_holds_one_vorbis_comment_per_tag(tmp_path, stereo):
    out = save_audio(tmp_path / "tagged.flac", stereo, SR, metadata=TAGS)
    raw = out.read_bytes()
    for key, value in TAGS.items():
        assert f"{key.upper()}={value}".encode() in raw


def test_bad_tag_names_are_refused(tmp_path, stereo):
    for bad in ({"a=b": "x"}, {"": "x"}, {"two words": "x"}, {"key": "two\nlines"}):
        with pytest.raises(InputError, match="tag"):
            save_audio(tmp_path / "bad.wav", stereo, SR, metadata=bad)
    assert not (tmp_path / "bad.wav").exists()


def test_formats_without_tags_warn_and_still_write(tmp_path, stereo):
    with pytest.warns(RuntimeWarning, match="cannot hold tags"):
        out = save_audio(tmp_path / "tagged.au", stereo, SR, metadata=TAGS)
    assert load_audio(out)[1] == SR


def test_cli_probe_shows_audio_file_tags(tmp_path, stereo):
    out = save_audio(tmp_path / "tagged.wav", stereo, SR, metadata=TAGS)
    result = subprocess.run(
        [sys.executable, "-m", "v2a.cli", "probe", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tags"] == TAGS and data["audio_rate"] == SR and data["container"] == "wav"
