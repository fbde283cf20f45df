"""The HTML report: one section per clip with a playable video, audio players, spectrograms and metrics."""

from __future__ import annotations

import re

import numpy as np
import pytest
from eval_clips import SR, shift, write_clip_manifest
from PIL import Image

from v2a.data.onsets import detect_onsets
from v2a.errors import InputError
from v2a.eval.report import write_report
from v2a.eval.runner import EvalOptions, evaluate_manifest
from v2a.io.audio import load_audio, save_audio
from v2a.io.video import probe


def test_report_links_every_file_it_writes(clips, tmp_path):
    manifest = write_clip_manifest(clips[0].video.parent / "report_manifest.jsonl", clips[:2])
    generated = tmp_path / "gen"
    generated.mkdir()
    for clip in clips[:2]:
        save_audio(generated / f"{clip.id}.wav", shift(clip.wav, 0.1), SR)
    result = evaluate_manifest(
        manifest, audio_dir=generated, options=EvalOptions(metrics=("onset", "quality"))
    )
    out = write_report(result, tmp_path / "out.html", title="test <report>")
    page = out.read_text()
    assert "test &lt;report&gt;" in page and page.count("<section>") == 2
    links = re.findall(r'(?:src|poster)="([^"]+)"', page)
    assert len(links) == 2 * 5  # per clip: video, its poster, generated player, reference player, spectrogram
    for link in links:
        assert (tmp_path / link).is_file(), link
    assert "onset_acc" in page and "clips" in page
    assert "Sound class per category" not in page  # no class metric scored, so no per-category table

    video = tmp_path / "out_files" / "000.mp4"
    info = probe(video)
    assert info.has_audio and info.duration_s == pytest.approx(clips[0].duration_s, abs=0.05)
    muxed, _ = load_audio(video, sr=SR)
    first = detect_onsets(muxed, SR)[0]
    assert first == pytest.approx(clips[0].landings[0] + 0.1, abs=0.02)  # the generated track, in sync
    image = Image.open(tmp_path / "out_files" / "000.png")
    assert image.size[0] >= 600 and image.size[1] >= 250  # two stacked panels
    assert np.asarray(image.convert("L")).std() > 10  # not a blank picture


def test_report_of_ground_truth_and_bad_paths(clips, tmp_path):
    manifest = write_clip_manifest(clips[0].video.parent / "gt_manifest.jsonl", clips[:1])
    result = evaluate_manifest(manifest, options=EvalOptions(metrics=("quality",)))
    page = write_report(result, tmp_path / "gt.html").read_text()
    assert (
        "ground truth" in page and len(re.findall(r'src="([^"]+)"', page)) == 3
    )  # video, player, spectrogram
    with pytest.raises(InputError, match=r"\.html"):
        write_report(result, tmp_path / "gt.txt")
    classed = evaluate_manifest(manifest, options=EvalOptions(metrics=("class",)))
    page = write_report(classed, tmp_path / "class.html").read_text()
    section = page.split("Sound class per category", 1)[1].split("<section>", 1)[0]
    assert "<td>impact</td><td>1</td>" in section
