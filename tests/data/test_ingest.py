from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from media import counter_frame, make_counter_video, marker_corner, read_counter, tone
from v2a.data.ingest import MANIFEST_NAME, REPORT_NAME, IngestConfig, assign_split, clip_size, ingest
from v2a.data.manifest import read_manifest
from v2a.errors import InputError, OutputError
from v2a.io.mux import mux
from v2a.io.video import probe, read_video
from v2a.io.writer import write_video

SR = 24_000
CLICKS_S = (1.5, 9.2)  # click times in the 10 s source


def _clicks(duration_s: float, times: tuple[float, ...]) -> np.ndarray:
    """Low noise (-40 dBFS) with single-sample clicks at ``times``."""
    wav = np.random.default_rng(0).normal(0.0, 0.01, round(duration_s * SR)).astype(np.float32)
    for t in times:
        wav[round(t * SR)] = 0.9
    return wav


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """A folder of sources: 10 s of clicks in mp4/AAC made like a camera file (muxed), a 3 s tone in .mov with
    PCM at 30 fps and 320 x 240, one silent, one without audio, one too short, one broken, one not a video."""
    root = tmp_path_factory.mktemp("footage")
    src = root / "src"
    (src / "dog").mkdir(parents=True)
    (src / "cat").mkdir()
    picture = make_counter_video(root / "clicks_video.mp4", fps=25, num_frames=250)
    mux(picture, (_clicks(10.0, CLICKS_S), SR), src / "dog" / "clicks.mp4", audio_codec="aac")
    make_counter_video(
        src / "cat" / "tone.mov", fps=30, num_frames=90, width=320, height=240, audio=True, codec="libx264"
    )
    _pcm_video(src / "silent.mkv", np.zeros(4 * SR, dtype=np.float32), frames=100)
    make_counter_video(src / "noaudio.mp4", fps=25, num_frames=50)
    _pcm_video(src / "short.mkv", tone(0.4), frames=10)
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (src / "notes.txt").write_text("not a video")
    (src / ".cache").mkdir()
    make_counter_video(src / ".cache" / "hidden.mp4", fps=25, num_frames=50, audio=True)
    return src


def _pcm_video(path: Path, wav: np.ndarray, frames: int) -> Path:
    pictures = [counter_frame(i, 96, 160) for i in range(frames)]
    return write_video(path, pictures, fps=25, audio=wav, audio_codec="pcm_s16le")


CONFIG = IngestConfig(clip_s=4.0, min_clip_s=1.0, size=128, label_from_folder=True, test_fraction=0.0)


@pytest.fixture(scope="module")
def ingested(footage, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "out"
    report = ingest(footage, out, CONFIG, workers=1, progress=False)
    return out, report, read_manifest(out / MANIFEST_NAME)


def test_folder_ingest_keeps_sound_clips_and_reports_every_drop(ingested):
    out, report, rows = ingested
    assert report.sources == 6  # hidden folder and the .txt are skipped
    assert report.clips == 4 and len(rows) == 4
    assert dict(report.dropped_sources) == {"no_audio": 1, "unreadable": 1}
    assert dict(report.dropped_clips) == {"silent": 1, "too_short": 1}
    assert any("broken.mp4" in message for message in report.errors)
    saved = json.loads((out / REPORT_NAME).read_text())
    assert saved["clips"] == 4 and saved["dropped_clips"] == {"silent": 1, "too_short": 1}
    assert saved["splits"] == {"train": 4}
    by_source = {}
    for row in rows:
        by_source.setdefault(Path(row.source).name, []).append(row)
    assert sorted(by_source) == ["clicks.mp4", "tone.mov"]
    clicks = sorted(by_source["clicks.mp4"], key=lambda r: r.start_s)
    assert [(r.start_s, r.duration_s) for r in clicks] == [(0.0, 4.0), (4.0, 4.0), (8.0, 2.0)]
    assert all(r.labels == ("dog",) and r.fps == 25.0 for r in clicks)
    (tone_row,) = by_source["tone.mov"]
    assert tone_row.labels == ("cat",) and tone_row.duration_s == pytest.approx(3.0) and tone_row.fps == 30.0


def test_clip_sound_and_picture_stay_aligned_with_the_source(ingested):
    _, _, rows = ingested
    clicks = sorted((r for r in rows if r.source.endswith("clicks.mp4")), key=lambda r: r.start_s)
    for row in clicks:
        wav, rate = sf.read(row.audio, dtype="float32")
        assert rate == SR and wav.ndim == 1 and len(wav) == round(row.duration_s * SR)
        inside = [t - row.start_s for t in CLICKS_S if row.start_s <= t < row.start_s + row.duration_s]
        if inside:  # the click of the source is at the same time in the clip, to 1 ms
            assert np.argmax(np.abs(wav)) / SR == pytest.approx(inside[0], abs=1e-3)
        else:
            assert np.abs(wav).max() < 0.2
        info = probe(row.video)
        assert not info.has_audio and info.codec == "h264"
        assert info.num_frames == round(row.duration_s * 25)
        frames = read_video(row.video, 25).pop().frames
        first = round(row.start_s * 25)
        assert [read_counter(f) for f in frames[[0, 1, -1]]] == [first, first + 1, first + len(frames) - 1]


def test_stored_video_is_capped_to_the_short_side(ingested):
    _, _, rows = ingested
    (tone_row,) = [r for r in rows if r.source.endswith("tone.mov")]
    info = probe(tone_row.video)
    assert (info.height, info.width) == (128, 170) == clip_size(320, 240, 128)
    clicks = next(r for r in rows if r.source.endswith("clicks.mp4"))
    assert (probe(clicks.video).height, probe(clicks.video).width) == (96, 160)  # smaller than the cap: kept
    assert clip_size(1920, 1080, 256) == (256, 454) and clip_size(1080, 1920, 256) == (454, 256)
    assert clip_size(7, 5, 256) == (4, 6)


def test_variable_rate_rotated_phone_video_is_stored_upright_on_a_regular_grid(tmp_path):
    times = np.cumsum(np.r_[0.0, np.random.default_rng(1).uniform(0.03, 0.05, 199)])  # about 25 fps
    picture = make_counter_video(
        tmp_path / "v.mp4", timestamps_s=list(times), width=320, height=180, rotation=90
    )
    (tmp_path / "src").mkdir()
    mux(picture, (_clicks(times[-1] + 0.04, ()), SR), tmp_path / "src" / "phone.mov", audio_codec="aac")
    config = IngestConfig(clip_s=3.0, min_clip_s=1.0, size=128)
    ingest(tmp_path / "src", tmp_path / "out", config, workers=1, progress=False)
    rows = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert len(rows) == 3 and all(r.fps == 25.0 for r in rows)  # the rounded average rate
    for row in rows:
        info = probe(row.video)
        assert (info.height, info.width) == clip_size(320, 180, 128)
        assert info.fps == 25.0 and info.num_frames == round(row.duration_s * 25)
        frames = read_video(row.video, 25).pop().frames
        on_screen = int(
            np.searchsorted(times, row.start_s + 1e-6) - 1
        )  # source frame shown at the clip start
        assert read_counter(frames[0]) == on_screen and marker_corner(frames[0]) == "top-left"


def test_process_pool_gives_the_same_manifest(footage, ingested, tmp_path):
    _, _, rows = ingested
    report = ingest(footage, tmp_path / "out", CONFIG, workers=2, progress=False)
    pooled = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert report.clips == len(rows)
    assert [(r.id, r.start_s, r.duration_s, r.split) for r in pooled] == [
        (r.id, r.start_s, r.duration_s, r.split) for r in rows
    ]
    for a, b in zip(pooled, rows, strict=True):
        assert np.array_equal(sf.read(a.audio)[0], sf.read(b.audio)[0])


def test_splits_are_deterministic_and_keep_a_source_together(footage, tmp_path):
    assert assign_split("x", 0.0) == "train" and assign_split("x", 1.0) == "test"
    keys = [f"video_{i}.mp4" for i in range(4000)]
    share = sum(assign_split(k, 0.3) == "test" for k in keys) / len(keys)
    assert 0.27 < share < 0.33
    assert [assign_split(k, 0.3) for k in keys] == [assign_split(k, 0.3) for k in keys]
    config = IngestConfig(clip_s=4.0, min_clip_s=1.0, test_fraction=0.5)
    ingest(footage, tmp_path / "out", config, workers=1, progress=False)
    rows = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    for source in {r.source for r in rows}:
        splits = {r.split for r in rows if r.source == source}
        rel = Path(source).relative_to(footage).as_posix()
        assert splits == {assign_split(rel, 0.5)}
    assert all(r.labels == () for r in rows)  # no --label-from-folder


def test_csv_rows_resolve_paths_ids_and_precut_files(footage, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(footage / "dog" / "clicks.mp4", media / "abc-_1.mp4")  # an id with '-' and '_', full video
    shutil.copy(footage / "dog" / "clicks.mp4", media / "xyz_000004.mp4")  # cut already at 4 s
    shutil.copy(footage / "dog" / "clicks.mp4", media / "qq_30000_40000.mp4")  # cut at 30 s, in ms
    csv = tmp_path / "list.csv"
    csv.write_text(
        "# made for the test\n"
        "file_or_id,start_s,label,caption\n"
        "abc-_1,4,dog,a dog in the park\n"
        "xyz,4,dog,test\n"
        "qq,30,bird\n"
        f"{footage / 'cat' / 'tone.mov'},0,cat,tone\n"
        "gone,12,dog\n"
        "abc-_1,4,dog,again\n"
    )
    config = IngestConfig(clip_s=4.0, min_clip_s=1.0, media_dir=str(media), test_fraction=0.0)
    report = ingest(csv, tmp_path / "out", config, workers=1, progress=False)
    assert report.sources == 6 and report.clips == 4
    assert dict(report.dropped_sources) == {"missing_media": 1, "duplicate_row": 1}
    assert any("row 7" in m and "'gone'" in m for m in report.errors)
    rows = {Path(r.source).name: r for r in read_manifest(tmp_path / "out" / MANIFEST_NAME)}
    full = rows["abc-_1.mp4"]
    assert (full.start_s, full.caption, full.labels, full.split) == (
        4.0,
        "a dog in the park",
        ("dog",),
        "train",
    )
    assert full.extra == {"csv_row": 3}
    assert read_counter(read_video(full.video, 25).pop().frames[0]) == 100
    precut = rows["xyz_000004.mp4"]
    assert (precut.start_s, precut.split, precut.caption) == (
        0.0,
        "test",
        "",
    )  # 4th column "test" is the split
    assert read_counter(read_video(precut.video, 25).pop().frames[0]) == 0
    assert rows["qq_30000_40000.mp4"].labels == ("bird",)
    assert rows["tone.mov"].caption == "tone"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.mp4,1,dog\nb.mp4,1\n", r"row 2: expected 3 or 4 columns"),
        ("a.mp4,1,dog\nb.mp4,soon,dog\n", r"row 2: start_s 'soon' is not a number of seconds >= 0"),
        ("a.mp4,-3,dog\n", r"row 1: start_s '-3'"),
        ("a.mp4,1,dog\n,1,dog\n", r"row 2: the file_or_id column is empty"),
        ("a.mp4,1,dog,cap,extra\n", r"row 1: expected 3 or 4 columns .* got 5"),
        ("# only a comment\n\n", r"has no rows"),
        ("id,start,label\nnothing,1,dog\n", r"none of the 1 rows .* points to an existing video"),
    ],
)
def test_bad_csv_is_refused_with_its_row_number(tmp_path, text, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=message):
        ingest(csv, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()  # nothing is created for a bad source


def test_bad_sources_and_outputs_give_clear_errors(footage, ingested, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ingest(tmp_path / "missing", tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        ingest(tmp_path / "missing.csv", tmp_path / "out", progress=False)
    (tmp_path / "list.txt").write_text("a,1,b\n")
    with pytest.raises(InputError, match=r"must be a folder of videos or a \.csv file"):
        ingest(tmp_path / "list.txt", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no videos here")
    with pytest.raises(InputError, match="no video files found"):
        ingest(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="clip_s must be"):
        IngestConfig(clip_s=0)
    with pytest.raises(InputError, match="min_clip_s must be"):
        IngestConfig(clip_s=4, min_clip_s=5)
    out, _, _ = ingested
    with pytest.raises(OutputError, match=r"already holds manifest\.jsonl; pass --overwrite"):
        ingest(footage, out, CONFIG, workers=1, progress=False)


def test_nothing_kept_is_an_error_but_the_report_is_saved(footage, tmp_path):
    src = tmp_path / "quiet"
    src.mkdir()
    shutil.copy(footage / "silent.mkv", src / "silent.mkv")
    shutil.copy(footage / "noaudio.mp4", src / "noaudio.mp4")
    with pytest.raises(InputError, match=r"no clip kept from .*'no_audio': 1, 'silent': 1"):
        ingest(src, tmp_path / "out", CONFIG, workers=1, progress=False)
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert report["clips"] == 0 and report["dropped_sources"] == {"no_audio": 1}
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
