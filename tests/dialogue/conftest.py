"""Fixtures of the dialogue tests: a Foley-world talking head (rendered once per session) and the real
Megamind.avi clip from Debian's ``opencv-doc`` package (downloaded once into ``.deb-cache/``)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from v2a.data.foley_world.build import render_clip, write_clip
from v2a.data.foley_world.config import FoleyConfig
from v2a.errors import InputError
from v2a.io.audio import resample

REPO = Path(__file__).resolve().parents[2]
SR = 24_000
MEGAMIND = "usr/share/doc/opencv-doc/examples/data/Megamind.avi"


@dataclass(frozen=True)
class TalkingHead:
    """A 5 s, 25 fps clip of one drawn face saying one line, silent before and after.

    Attributes:
        video: the mp4.
        audio: (S,) the clip's mono sound (the line, at SR).
        transcript: what is said.
        speech: (start_s, end_s) of the line.
        mouth: (T,) the drawn mouth opening 0..1 per frame (the ground truth).
        fps: 25.
    """

    video: Path
    audio: np.ndarray
    transcript: str
    speech: tuple[float, float]
    mouth: np.ndarray
    fps: float


@pytest.fixture(scope="session")
def talking_head(tmp_path_factory: pytest.TempPathFactory) -> TalkingHead:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Foley-world speakers need it; make install adds it)")
    config = FoleyConfig(kinds=("speaker",), duration_s=5.0, fps=25.0, cuts=False, artefacts=False)
    clip = render_clip(0, 0, config)  # "We painted the old door yesterday!" from 1.0 to 2.8 s
    out = tmp_path_factory.mktemp("talking-head")
    (out / "clips").mkdir()
    row = write_clip(clip, out)
    (event,) = [e for e in clip.events if e["label"].startswith("speech")]
    assert event["t"] >= 0.5 and event["end"] <= 4.5, (
        f"the fixture clip needs silence around its line: {event}"
    )
    (speaker,) = [e for shot in clip.scene.shots for e in shot.entities if e.kind == "speaker"]
    mouth = np.where(np.isnan(speaker.track.x), 0.0, speaker.track.variant / 5.0)
    return TalkingHead(
        out / row["video"], clip.audio, clip.transcript, (event["t"], event["end"]), mouth, clip.fps
    )


@pytest.fixture(scope="session")
def megamind(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The real clip and its speech track at SR (mono); skipped when the package cannot be fetched."""
    from v2a.data.sources import fetch

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed: cannot unpack Debian's opencv-doc for Megamind.avi")
    try:
        deb = fetch("opencv-doc", REPO / ".deb-cache")  # 96 MB, git-ignored, reused across runs
    except InputError as err:
        pytest.skip(f"cannot fetch the real clip (Debian opencv-doc): {err}")
    out = tmp_path_factory.mktemp("megamind")
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out), f"./{MEGAMIND}"], input=tar, check=True)
    path = out / MEGAMIND
    return path, _decode_audio(path)


def _decode_audio(path: Path) -> np.ndarray:
    """Mono audio at SR, skipping undecodable packets (the clip's first AC-3 packet is damaged, which
    ``v2a.io.audio.load_audio`` refuses)."""
    pcm, rate = [], 48_000
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                data = frame.to_ndarray()  # planar (C, S) or packed (1, S * C)
                pcm.append(
                    data.mean(axis=0)
                    if frame.format.is_planar
                    else data.reshape(frame.samples, -1).mean(axis=1)
                )
    return resample(np.concatenate(pcm).astype(np.float32), rate, SR)
