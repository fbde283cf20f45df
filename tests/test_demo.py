"""`make demo` runs v2a.demo on the bundled sample with the bundled generator: 2 marked variants + a page."""

from __future__ import annotations

import numpy as np

from v2a.demo import run_demo
from v2a.io.audio import load_audio
from v2a.io.video import probe
from v2a.watermark.files import GENERATOR


def test_demo_generates_two_watermarked_variants_and_a_listening_page(tmp_path, sample_video):
    out = tmp_path / "demo"
    summary = run_demo(out, sample_video)
    names = {p.name for p in out.iterdir()}
    expected = {"index.html", "summary.json", "spectrograms.png"}
    expected |= {f"bounce.{seed}.{ext}" for seed in (0, 1) for ext in ("mp4", "wav")}
    assert expected <= names
    for seed in (0, 1):
        info = probe(out / f"bounce.{seed}.mp4")
        assert info.has_audio and abs(info.duration_s - 8.0) < 0.05
        assert info.tags.get("generator") == GENERATOR and "watermark_key_id" in info.tags
    assert all(mark["detected"] for mark in summary["watermark"])
    a, _ = load_audio(out / "bounce.0.wav")
    b, _ = load_audio(out / "bounce.1.wav")
    assert np.abs(a).max() > 0.01  # not silence
    assert np.abs(a - b).mean() > 0.1 * np.abs(a).mean()  # two seeds, two different soundtracks
    page = (out / "index.html").read_text()
    assert "bounce.0.mp4" in page and "bounce.1.mp4" in page and "spectrograms.png" in page
