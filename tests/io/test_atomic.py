from __future__ import annotations

import os
import stat

import pytest

from v2a.errors import OutputError
from v2a.io.atomic import atomic_output, check_output_path


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temp file left behind

    with atomic_output(target) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & 0o044, f"output should be readable by others like a normal file, got {oct(mode)}"


def test_check_output_path_refuses_inputs_dirs_and_existing(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="over the input"):
        check_output_path(src, inputs=[src])
    with pytest.raises(OutputError, match="over the input"):
        check_output_path(tmp_path / "." / "in.mp4", inputs=[src])
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="over the input"):
        check_output_path(link, inputs=[src])
    with pytest.raises(OutputError, match="directory"):
        check_output_path(tmp_path, inputs=[src])
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "o.mp4")
    other = tmp_path / "other.mp4"
    other.write_bytes(b"y")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output_path(other, inputs=[src], overwrite=False)
    assert check_output_path(other, inputs=[src], overwrite=True) == other
