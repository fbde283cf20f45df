from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from v2a.data.manifest import ClipRow, iter_manifest, read_manifest, write_manifest
from v2a.errors import InputError


def _row(folder: Path, name: str, **changes) -> ClipRow:
    fields = dict(
        id=name,
        video=str(folder / "clips" / f"{name}.mp4"),
        audio=str(folder / "clips" / f"{name}.flac"),
        duration_s=8.0,
        fps=25,
        caption="glass breaks",
        labels=["glass"],
        events=[{"start_s": 1.25, "label": "impact", "end_s": 1.5, "material": "glass"}],
    )
    fields.update(changes)
    return ClipRow(**fields)


def test_round_trip_keeps_fields_extras_and_stores_relative_paths(tmp_path):
    rows = [
        _row(tmp_path, "a", extra={"scene_seed": 7, "camera": {"pan": 0.5}}),
        _row(tmp_path, "b", audio=None, split="test", transcript="hello there", source="gen:v1", start_s=3),
        _row(tmp_path, "c", video="/elsewhere/c.mp4"),
    ]
    path = write_manifest(tmp_path / "manifest.jsonl", rows)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["video"] == "clips/a.mp4" and lines[0]["audio"] == "clips/a.flac"
    assert lines[0]["scene_seed"] == 7 and lines[0]["camera"] == {"pan": 0.5}  # extras are top-level keys
    assert lines[1]["audio"] is None
    assert lines[2]["video"] == "/elsewhere/c.mp4"  # outside the folder: stays absolute
    back = read_manifest(path)
    assert back == rows
    assert back[0].extra == {"scene_seed": 7, "camera": {"pan": 0.5}}
    assert back[0].events[0]["material"] == "glass" and back[0].labels == ("glass",)
    assert isinstance(back[0].fps, float)


def test_relative_paths_follow_the_manifest_when_the_folder_moves(tmp_path):
    (tmp_path / "ds").mkdir()
    row = _row(tmp_path, "x", video="clips/x.mp4", audio="clips/../clips/x.flac")
    write_manifest(tmp_path / "ds" / "m.jsonl", [row])
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "ds", moved)
    (back,) = read_manifest(moved / "m.jsonl")
    assert back.video == str(moved / "clips" / "x.mp4")
    assert back.audio == str(moved / "clips" / "x.flac")


def test_from_dict_tolerates_extra_keys_and_missing_optional_ones():
    row = ClipRow.from_dict(
        {"id": "k1", "video": "/v.mp4", "audio": "/a.flac", "duration_s": 2, "fps": 30, "new_key": [1, 2]}
    )
    assert (
        row.split == "train" and row.caption == "" and row.events == () and row.extra == {"new_key": [1, 2]}
    )
    assert row.to_dict()["new_key"] == [1, 2]
    assert list(row.to_dict())[:5] == ["id", "video", "audio", "duration_s", "fps"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fps": None}, "lacks the key"),
        ({"duration_s": 0}, "duration_s must be a finite number > 0"),
        ({"duration_s": float("nan")}, "duration_s must be a finite number"),
        ({"fps": True}, "fps must be a finite number"),
        ({"split": "dev"}, "split must be one of train, val, test"),
        ({"id": "has.dot"}, "A-Z a-z 0-9 _ -"),
        ({"video": ""}, "video must be a non-empty path"),
        ({"labels": [1, 2]}, "labels must be a list of strings"),
        ({"events": [{"start_s": -1, "label": "x"}]}, "event 0: start_s must be a number >= 0"),
        ({"events": [{"start_s": 9.5, "label": "x"}]}, "past the clip end"),
        ({"events": [{"start_s": 1, "end_s": 0.5, "label": "x"}]}, "end_s must be a number >= start_s"),
        ({"events": [{"start_s": 1}]}, "label must be a string"),
        ({"start_s": -2}, "start_s must be a finite number >= 0"),
    ],
)
def test_invalid_rows_are_refused_with_a_clear_message(change, message):
    data = {"id": "k", "video": "v.mp4", "audio": "a.flac", "duration_s": 8.0, "fps": 25.0}
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InputError, match=message):
        ClipRow.from_dict(data)


def test_read_errors_name_the_file_and_line(tmp_path):
    good = json.dumps({"id": "a", "video": "a.mp4", "audio": None, "duration_s": 1, "fps": 25})
    path = tmp_path / "m.jsonl"
    path.write_text(good + "\n\n{not json\n")
    with pytest.raises(InputError, match=r"m\.jsonl line 3: not valid JSON"):
        read_manifest(path)
    path.write_text(good + "\n" + json.dumps({"id": "b", "video": "b.mp4", "audio": None, "fps": 25}) + "\n")
    with pytest.raises(InputError, match=r"line 2: clip row 'b' lacks the key\(s\) duration_s"):
        list(iter_manifest(path))
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(InputError, match="clip id 'a' appears more than once"):
        read_manifest(path)
    with pytest.raises(InputError, match="does not exist"):
        read_manifest(tmp_path / "nope.jsonl")


def test_failed_write_leaves_the_old_manifest_intact(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [_row(tmp_path, "a")])
    before = path.read_bytes()
    with pytest.raises(InputError, match="appears more than once"):
        write_manifest(path, [_row(tmp_path, "b"), _row(tmp_path, "b")])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temporary file left behind


def test_rows_are_immutable_and_replace_revalidates(tmp_path):
    row = _row(tmp_path, "a")
    with pytest.raises(AttributeError):
        row.fps = 30.0  # type: ignore[misc]
    assert row.replace(split="val").split == "val"
    with pytest.raises(InputError, match="split must be one of"):
        row.replace(split="holdout")
