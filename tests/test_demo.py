"""`make demo` runs v2a.demo on the bundled sample: it must produce the muxed video and the report."""

from __future__ import annotations

import json

from v2a.demo import run_demo
from v2a.io.video import probe


def test_demo_writes_muxed_video_report_and_names_missing_stages(tmp_path, sample_video):
    summary = run_demo(tmp_path / "demo", sample_video)
    out = tmp_path / "demo"
    assert {"index.html", "summary.json", "frames_8fps.jpg", "bounce.reference.mp4"} <= {
        p.name for p in out.iterdir()
    }
    assert summary["frames"]["8fps"] == [64, 224, 224, 3] and summary["frames"]["25fps"] == [200, 224, 224, 3]
    info = probe(out / "bounce.reference.mp4")
    assert info.has_audio and abs(info.duration_s - 8.0) < 0.05
    assert any(
        "generator" in stage for stage in json.loads((out / "summary.json").read_text())["not_built_yet"]
    )
