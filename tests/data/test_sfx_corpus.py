"""The real SFX corpus builder: container readers, clip clean-up, sound fonts, and whole builds.

Whole builds run on Debian packages the tests assemble themselves with ``dpkg-deb --build`` (offline), and
once on the real ``minetest-data`` package, downloaded with apt into ``.deb-cache/`` at the repo root and
reused across runs: the one test here that uses the network (the Debian registry).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data import archives, clips, sources
from v2a.data.sfx_corpus import build_sfx_corpus, read_manifest
from v2a.data.soundfont import SoundFont
from v2a.data.sources import SourceSpec, find_source, list_sources, parse_dep5
from v2a.data.taxonomy import check_label
from v2a.errors import InputError, OutputError
from v2a.io.audio import load_audio, rms_db

SR = DEFAULT_SPEC.sample_rate
REPO = Path(__file__).resolve().parents[2]
ROW_KEYS = {"path", "label", "tags", "package", "license", "duration_s", "rms_db", "kind", "source", "split"}
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")


def _tone(freq: float, seconds: float, sr: int = 22050, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t) * np.hanning(t.size) ** 0.1).astype(np.float32)


def _bark(seed: int, sr: int = 22050) -> np.ndarray:
    """A short decaying 'sound event' of random partials and noise, distinct per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(sr // 2) / sr
    wav = sum(
        np.sin(2 * np.pi * rng.uniform(150, 4000) * t) * np.exp(-t * rng.uniform(3, 30)) for _ in range(3)
    )
    wav = wav + 0.3 * rng.standard_normal(t.size) * np.exp(-t * rng.uniform(5, 40))
    return (0.25 * wav).astype(np.float32)


def _wav_bytes(wav: np.ndarray, sr: int = 22050, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- containers


def test_wad_reader_decodes_dmx_lumps_and_skips_the_rest(tmp_path: Path) -> None:
    tone = _tone(440.0, 0.3, sr=11025)
    wad = archives.make_wad(
        [
            ("DSPISTOL", archives.make_dmx(tone, 11025)),
            ("MAP01", b"\x00" * 64),  # not a sound
            ("DSDOROPN", archives.make_dmx(_tone(220.0, 0.2, sr=11025), 11025)),
        ]
    )
    path = tmp_path / "test.wad"
    path.write_bytes(wad)
    members = list(archives.iter_members(path))
    assert [m.name for m in members] == ["DSPISTOL", "DSDOROPN"]
    wav, rate = load_audio(members[0].data)
    assert rate == 11025
    assert wav.size == tone.size  # the 16 padding samples on each side are gone
    assert np.max(np.abs(wav - tone)) < 2.0 / 128  # 8-bit quantisation error only
    assert [m.name for m in archives.iter_members(path, include=archives.re.compile("DOR"))] == ["DSDOROPN"]


def test_wad_reader_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wad"
    bad.write_bytes(b"NOTAWAD" + b"\x00" * 20)
    with pytest.raises(InputError, match="not a Doom WAD"):
        list(archives.iter_members(bad))
    truncated = tmp_path / "trunc.wad"
    truncated.write_bytes(b"PWAD" + struct.pack("<ii", 5, 4000) + b"\x00" * 10)
    with pytest.raises(InputError, match="corrupt WAD"):
        list(archives.iter_members(truncated))
    with pytest.raises(ValueError, match="DMX"):
        archives.dmx_to_wav(b"\x01\x00\x11\x2b")


def test_opensfx_catalogue_reader(tmp_path: Path) -> None:
    notes = [
        b'"Cow". Original "moo.wav" by X. License: Creative Commons Zero 1.0.\x00',
        b'"Ship horn". By Y. License: Creative Commons Attribution 3.0 Unported.\x00',
    ]
    wavs = [_wav_bytes(_tone(300.0, 0.2)), _wav_bytes(_tone(150.0, 0.3))]
    table_size = 8 * len(notes)
    body, table, pos = b"", b"", table_size
    for note, wav in zip(notes, wavs, strict=True):
        entry = bytes([len(note)]) + note + wav
        table += struct.pack("<II", pos | 0x80000000, len(wav))
        body += entry
        pos += len(entry)
    path = tmp_path / "opensfx.cat"
    path.write_bytes(table + body)
    members = list(archives.iter_members(path))
    assert [m.name for m in members] == ["000_cow.wav", "001_ship_horn.wav"]
    assert archives.cat_license(members[0].note) == "Creative Commons Zero 1.0"
    assert archives.cat_title(members[1].note) == "Ship horn"
    assert load_audio(members[1].data)[0].size == round(0.3 * 22050)
    assert archives.member_names(path) == [(m.name, m.note) for m in members]
    path.write_bytes(table + body[:100])
    with pytest.raises(InputError, match="corrupt sound catalogue"):
        list(archives.iter_members(path))


def test_corrupt_zip_container_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "pak0.pk3"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(InputError, match="corrupt zip archive"):
        archives.member_names(path)


# ---------------------------------------------------------------- sound font


def _make_sf2(path: Path, sample: np.ndarray, rate: int, root_key: int) -> None:
    """A minimal SoundFont: one looped sample, one instrument, presets 0:0 (piano) and 0:40 (violin)."""

    def chunk(cid: bytes, data: bytes) -> bytes:
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def lst(kind: bytes, *chunks: bytes) -> bytes:
        return chunk(b"LIST", kind + b"".join(chunks))

    pcm = (
        np.round(sample * 32767).astype("<i2").tobytes() + b"\0" * 92
    )  # 46 zero samples after, as the spec asks
    n = sample.size
    shdr = struct.pack("<20sIIIIIBbHH", b"tone", 0, n, n // 4, n - 100, rate, root_key, 0, 0, 1)
    shdr += struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    igen = struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, 0) + struct.pack("<HH", 0, 0)
    ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 2, 0)
    inst = struct.pack("<20sH", b"inst", 0) + struct.pack("<20sH", b"EOI", 1)
    pgen = struct.pack("<HH", 41, 0) * 2 + struct.pack("<HH", 0, 0)
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0) + struct.pack("<HH", 2, 0)
    phdr = struct.pack("<20sHHHIII", b"Piano", 0, 0, 0, 0, 0, 0)
    phdr += struct.pack("<20sHHHIII", b"Violin", 40, 0, 1, 0, 0, 0)
    phdr += struct.pack("<20sHHHIII", b"EOP", 0, 0, 2, 0, 0, 0)
    empty_mod = b"\0" * 10
    pdta = lst(
        b"pdta",
        chunk(b"phdr", phdr),
        chunk(b"pbag", pbag),
        chunk(b"pmod", empty_mod),
        chunk(b"pgen", pgen),
        chunk(b"inst", inst),
        chunk(b"ibag", ibag),
        chunk(b"imod", empty_mod),
        chunk(b"igen", igen),
        chunk(b"shdr", shdr),
    )
    body = (
        b"sfbk"
        + lst(b"INFO", chunk(b"ifil", struct.pack("<HH", 2, 1)))
        + lst(b"sdta", chunk(b"smpl", pcm))
        + pdta
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _peak_hz(wav: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wav * np.hanning(wav.size)))
    return float(np.fft.rfftfreq(wav.size, 1 / sr)[np.argmax(spec)])


def test_soundfont_renders_notes_at_the_right_pitch(tmp_path: Path) -> None:
    rate = 22050
    period = 50  # 441 Hz, an exact number of samples per cycle so the loop is seamless
    sample = (0.5 * np.sin(2 * np.pi * np.arange(rate // 2) / period)).astype(np.float32)
    path = tmp_path / "tiny.sf2"
    _make_sf2(path, sample, rate, root_key=69)
    font = SoundFont(path)
    assert [(p.name, p.bank, p.program, p.family) for p in font.presets] == [
        ("Piano", 0, 0, "piano"),
        ("Violin", 0, 40, "strings"),
    ]
    piano = font.preset(0, 0)
    note = font.render_note(piano, 81, length_s=1.5, sr=SR)  # an octave up, longer than the sample: loops
    assert note.size >= 1.5 * SR
    assert abs(_peak_hz(note[SR // 4 : SR // 4 + 8192], SR) - 882.0) < 6.0
    phrase = font.render_phrase(piano, seed=3, sr=SR, duration_s=3.0)
    assert phrase.size >= 3.0 * SR
    assert np.max(np.abs(phrase)) == pytest.approx(10 ** (-3 / 20), rel=1e-3)
    assert np.array_equal(phrase, font.render_phrase(piano, seed=3, sr=SR, duration_s=3.0))
    (tmp_path / "junk.sf2").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(InputError, match="not a SoundFont"):
        SoundFont(tmp_path / "junk.sf2")


# ---------------------------------------------------------------- clip clean-up


def test_trim_and_split_cut_at_silence() -> None:
    sr = 8000
    quiet = np.zeros(sr // 2, dtype=np.float32)
    event = _tone(500.0, 1.0, sr=sr)
    trimmed = clips.trim_silence(np.concatenate([quiet, event, quiet]), sr)
    assert event.size <= trimmed.size <= event.size + round(0.1 * sr)
    assert clips.trim_silence(np.zeros(100, dtype=np.float32), sr).size == 0
    # 6 s of tone, 0.5 s gap, 6 s of tone: the cut falls inside the gap
    long = np.concatenate([_tone(300.0, 6.0, sr=sr), quiet, _tone(300.0, 6.0, sr=sr)])
    spans = clips.split_points(long, sr, max_s=10.0, min_s=4.0)
    assert len(spans) == 2 and spans[0][0] == 0 and spans[-1][1] == long.size
    assert 6.0 * sr <= spans[0][1] <= 6.5 * sr
    assert all(b - a <= 10 * sr for a, b in spans)


def test_find_duplicates_flags_copies_not_different_sounds() -> None:
    rng = np.random.default_rng(0)
    base = _bark(1, sr=SR)
    copy = 0.5 * base + 1e-4 * rng.standard_normal(base.size).astype(np.float32)  # quieter, re-noised copy
    other = _tone(700.0, 0.5, sr=SR)
    vectors = np.stack([clips.fingerprint(w, SR) for w in (base, other, copy)])
    durations = np.array([0.5, 0.5, 0.5])
    assert clips.find_duplicates(vectors, durations).tolist() == [2]
    assert clips.find_duplicates(vectors, np.array([0.5, 0.5, 2.0])).tolist() == []  # too different in length


# ---------------------------------------------------------------- whole builds on packages made here


def _make_deb(root: Path, name: str, files: dict[str, bytes], out_dir: Path) -> Path:
    """Build ``name_1.0_all.deb`` holding ``files`` (paths relative to /) with dpkg-deb."""
    tree = root / name
    (tree / "DEBIAN").mkdir(parents=True)
    fields = {"Package": name, "Version": "1.0", "Architecture": "all", "Maintainer": "t <t@example.org>"}
    control = "".join(f"{k}: {v}\n" for k, v in fields.items()) + "Description: test\n"
    (tree / "DEBIAN" / "control").write_text(control)
    for rel, data in files.items():
        target = tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"{name}_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


COPYRIGHT = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: someone
License: GPL-2+

Files: sounds/dog_*
Copyright: someone else
License: CC0-1.0
"""


@pytest.fixture
def fake_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two packages built here (plain sounds; Tux Paint-style stamps) in a cache folder, as sources."""
    cache = tmp_path / "cache"
    base = "usr/share/games/fakesfx/sounds/"
    bark = _bark(7)
    rain = np.concatenate([_bark(s) * 0.3 for s in range(50)])  # 25 s of drizzle, to be split
    files = {
        base + "dog_bark.wav": _wav_bytes(bark),
        base + "dog_bark_copy.ogg": _wav_bytes(0.7 * bark, fmt="OGG"),  # near-duplicate of dog_bark
        base + "glass_break.wav": _wav_bytes(_bark(11)),
        base + "rain_loop.wav": _wav_bytes(rain),
        base + "wind_silent.wav": _wav_bytes(np.zeros(22050, dtype=np.float32)),
        base + "door_open.wav": b"RIFF\x10\x00\x00\x00WAVEjunkjunk",  # undecodable
        base + "sound042.wav": _wav_bytes(_bark(13)),  # no label
        "usr/share/doc/fakesfx-data/copyright": COPYRIGHT,
    }
    _make_deb(tmp_path / "build", "fakesfx-data", files, cache / "debs")
    stamps = "usr/share/tuxpaint/stamps/animals/"
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 100, 50)).save(png, format="PNG")
    stamp_files = {
        stamps + "cow.ogg": _wav_bytes(_bark(21), fmt="OGG"),
        stamps + "cow.png": png.getvalue(),
        stamps + "cow.txt": b"A cow.\nfr.utf8=Une vache.\n",
        stamps + "cow_desc.ogg": _wav_bytes(_tone(200.0, 0.8), fmt="OGG"),
        stamps + "cow_desc_fr.ogg": _wav_bytes(_tone(900.0, 1.4), fmt="OGG"),
    }
    _make_deb(tmp_path / "build", "fakestamps", stamp_files, cache / "debs")
    specs = (
        SourceSpec("fakesfx-data", include=r"/sounds/.*\.(wav|ogg)$", max_segments=2),
        SourceSpec("fakestamps", include=r"/stamps/.*\.ogg$", handler="tuxpaint"),
    )
    monkeypatch.setattr(sources, "SOURCES", specs)
    return cache


@needs_dpkg
def test_build_from_packages_made_here(fake_sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    summary = build_sfx_corpus(out, cache_dir=fake_sources, workers=1, progress=False)
    rows = read_manifest(summary.manifest)
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source"].rsplit("/", 1)[-1], []).append(row)
    # the near-duplicate copy, the silent file, the undecodable and the unlabelled file are gone
    assert sorted(by_source) == [
        "cow.ogg",
        "cow_desc.ogg",
        "cow_desc_fr.ogg",
        "dog_bark.wav",
        "glass_break.wav",
        "rain_loop.wav",
    ]
    assert summary.dropped["duplicate"] == 1
    assert summary.dropped["silent"] == 1
    assert summary.dropped["undecodable"] == 1
    assert summary.dropped["unlabelled"] == 1
    assert summary.dropped["over_max_segments"] >= 1  # 25 s of rain -> at least 3 segments, 2 kept
    rain = by_source["rain_loop.wav"]
    assert [r["segment"] for r in rain] == [0, 1] and len({r["split"] for r in rain}) == 1
    assert all(r["duration_s"] <= 10.0 for r in rain)
    assert by_source["dog_bark.wav"][0]["label"] == "animal/dog"
    assert by_source["dog_bark.wav"][0]["license"] == "CC0-1.0"  # per-file DEP-5 stanza
    assert by_source["glass_break.wav"][0]["license"] == "GPL-2+"
    assert by_source["rain_loop.wav"][0]["kind"] == "ambience"
    cow = by_source["cow.ogg"][0]
    assert cow["label"] == "animal/cow" and (out / cow["image"]).read_bytes()[:4] == b"\x89PNG"
    assert by_source["cow_desc_fr.ogg"][0]["transcript"] == "Une vache."
    assert by_source["cow_desc.ogg"][0]["transcript"] == "A cow."
    assert by_source["cow_desc.ogg"][0]["kind"] == "speech"
    card = summary.card.read_text()
    assert f"**{summary.clips} clips**" in card and "| fakesfx-data | 1.0 | debian |" in card
    assert json.loads((out / "corpus.json").read_text())["clips"] == len(rows)
    assert sorted(p.name for p in (out / "audio").rglob("*.flac")) == sorted(
        Path(r["path"]).name for r in rows
    )

    # a second build into the same folder replaces the first and gives the same manifest
    again = build_sfx_corpus(out, cache_dir=fake_sources, workers=2, progress=False)
    assert read_manifest(again.manifest) == rows


@needs_dpkg
def test_bad_sources_raise_clear_errors(
    fake_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="unknown SFX source package 'no-such-sfx'; known: fakesfx-data"):
        build_sfx_corpus(tmp_path / "a", packages=["no-such-sfx"], cache_dir=fake_sources, progress=False)
    # a corrupt archive in the cache
    deb = fake_sources / "debs" / "fakestamps_1.0_all.deb"
    deb.write_bytes(b"!<arch>\ngarbage")
    with pytest.raises(InputError, match=r"corrupt Debian package .*fakestamps"):
        build_sfx_corpus(tmp_path / "b", packages=["fakestamps"], cache_dir=fake_sources, progress=False)
    # a download that fails: apt-get answers like it does for a name it does not know
    deb.unlink()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "apt-get").write_text(
        "#!/bin/sh\necho 'E: Unable to locate package fakestamps' >&2\nexit 100\n"
    )
    (fake_bin / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    with pytest.raises(InputError, match="cannot download Debian package fakestamps: E: Unable to locate"):
        build_sfx_corpus(tmp_path / "c", packages=["fakestamps"], cache_dir=fake_sources, progress=False)
    # an output folder holding other things is refused before any work
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not part of a corpus"):
        build_sfx_corpus(busy, packages=["fakesfx-data"], cache_dir=fake_sources, progress=False)


def test_source_table_is_consistent() -> None:
    default, full = list_sources(), list_sources(full=True)
    assert len(default) >= 25 and set(s.name for s in default) < set(s.name for s in full)
    assert find_source("pypi:arcade==3.3.3").registry == "pypi"
    assert find_source("arcade").name == "arcade"
    for spec in full:
        sources.re.compile(spec.include)
    lic = parse_dep5(COPYRIGHT.decode())
    assert lic.summary == "GPL-2+"
    assert lic.for_path("usr/share/games/x/sounds/dog_1.wav") == "CC0-1.0"
    assert lic.for_path("usr/share/games/x/sounds/cat.wav") == "GPL-2+"


# ---------------------------------------------------------------- one real package (network: Debian)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not available")
def test_build_real_minetest_package(tmp_path: Path) -> None:
    cache = REPO / ".deb-cache"  # git-ignored, reused across runs
    out = tmp_path / "minetest"
    summary = build_sfx_corpus(out, packages=["minetest-data"], cache_dir=cache, workers=2, progress=False)
    rows = read_manifest(summary.manifest)
    assert len(rows) >= 80 and len(summary.labels) >= 15
    assert summary.packages[0].version and summary.packages[0].registry == "debian"
    assert {"footstep/gravel", "glass/break", "door/open", "explosion/blast", "fire/burning"} <= set(
        summary.labels
    )
    for row in rows[:: max(1, len(rows) // 25)]:
        assert set(row) >= ROW_KEYS
        assert row["augmented"] is False
        check_label(row["label"])
        info = sf.info(out / row["path"])
        assert (info.samplerate, info.channels, info.format, info.subtype) == (SR, 1, "FLAC", "PCM_16")
        wav, _ = load_audio(out / row["path"])
        assert wav.size / SR == pytest.approx(row["duration_s"], abs=1e-3)
        assert rms_db(wav) == pytest.approx(row["rms_db"], abs=0.05)
        assert 0.1 <= row["duration_s"] <= 10.0
        key = hashlib.sha1(f"minetest-data/{row['source']}".encode()).hexdigest()
        assert row["split"] == ("test" if int(key[:8], 16) % 1000 < 50 else "train")
    licenses = {r["license"] for r in rows}
    assert {"CC-BY-SA-3.0", "CC-BY-3.0"} <= licenses  # per-file stanzas of the copyright file
    assert (out / "licenses" / "minetest-data.txt").exists()
    digests = [clips.pcm_digest(load_audio(out / r["path"])[0]) for r in rows]
    assert len(set(digests)) == len(digests)  # no exact duplicates survive


@needs_dpkg
def test_soundfont_package_becomes_labelled_music(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rate, period = 22050, 50
    sample = (0.5 * np.sin(2 * np.pi * np.arange(rate // 2) / period)).astype(np.float32)
    font = tmp_path / "tiny.sf2"
    _make_sf2(font, sample, rate, root_key=69)
    cache = tmp_path / "cache"
    _make_deb(
        tmp_path / "build", "fakefont", {"usr/share/sounds/sf2/tiny.sf2": font.read_bytes()}, cache / "debs"
    )
    spec = SourceSpec("fakefont", include=r"\.sf2$", handler="soundfont")
    monkeypatch.setattr(sources, "SOURCES", (spec,))
    summary = build_sfx_corpus(tmp_path / "out", cache_dir=cache, workers=1, progress=False)
    rows = read_manifest(summary.manifest)
    assert summary.labels == {"music/piano": 2, "music/strings": 2}
    assert {r["source"].rsplit("#", 1)[1] for r in rows} == {"0:0:0", "0:0:1", "0:40:0", "0:40:1"}
    assert all(r["kind"] == "music" and 3.0 < r["duration_s"] <= 10.0 for r in rows)
