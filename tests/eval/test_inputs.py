"""Matching generated files to manifest clips, sidecars and length fitting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from v2a.data.manifest import ClipRow
from v2a.errors import InputError
from v2a.eval.inputs import find_generations, fit_length


def _row(clip_id: str, video: str, **extra) -> ClipRow:
    return ClipRow(id=clip_id, video=video, audio=None, duration_s=2.0, fps=25.0, extra=extra)


def test_files_go_to_the_longest_matching_stem(tmp_path):
    rows = [_row("a", "/v/clip1.mp4"), _row("b", "/v/clip10.mp4"), _row("c", "/v/clip1_x.mp4")]
    for name in ("clip1.wav", "clip1_seed2.wav", "clip10-s1.flac", "clip1_x.wav", "clip1_x.2.wav",
                 "clip100.wav", "other.wav", "clip1.txt"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    found = find_generations(tmp_path, rows)
    assert [g.name for g in found["a"]] == ["clip1.wav", "clip1_seed2.wav"]
    assert [g.name for g in found["b"]] == ["clip10-s1.flac"]
    assert [g.name for g in found["c"]] == ["clip1_x.2.wav", "clip1_x.wav"]


def test_sidecars_and_row_prompts(tmp_path):
    rows = [_row("a", "/v/walk.mp4", prompt="footsteps")]
    (tmp_path / "walk_0.wav").write_bytes(b"")
    (tmp_path / "walk_1.wav").write_bytes(b"")
    (tmp_path / "walk_1.json").write_text(json.dumps({"prompt": "rain", "negative_prompt": "music", "seed": 1,
                                                      "cost": {"stages": []}}))  # fmt: skip
    plain, side = find_generations(tmp_path, rows)["a"]
    assert (plain.prompt, plain.negative_prompt, plain.seed) == ("footsteps", "", None)
    assert (side.prompt, side.negative_prompt, side.seed, side.cost) == ("rain", "music", 1, {"stages": []})
    (tmp_path / "walk_1.json").write_text("{not json")
    with pytest.raises(InputError, match=r"walk_1\.json is not valid JSON"):
        find_generations(tmp_path, rows)
    (tmp_path / "walk_1.json").write_text(json.dumps({"seed": "one"}))
    with pytest.raises(InputError, match="seed must be an integer"):
        find_generations(tmp_path, rows)


def test_missing_folder_and_length_fitting(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        find_generations(tmp_path / "nope", [])
    assert fit_length(np.ones(5), 3).tolist() == [1, 1, 1]
    assert fit_length(np.ones(2), 4).tolist() == [1, 1, 0, 0]
