"""A tiny SFX corpus made by the tests: synthesised recordings in train and test splits, one with a picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image, ImageDraw

from v2a.data import procedural_audio as pa
from v2a.data.foley_world.speech import speak

SR = 24_000


def _write(root: Path, rel: str, wave: np.ndarray) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    lead = np.zeros(int(0.05 * SR), np.float32)  # recordings start with a little silence, as real ones do
    sf.write(path, np.concatenate([lead, wave]).astype(np.float32), SR, subtype="PCM_16")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """Corpus folder with manifest.jsonl: every label has distinct train and test files."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    image = Image.new("RGBA", (60, 50), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([5, 5, 55, 45], fill=(150, 100, 60, 255))
    image.save(root / "dog.png")
    for split in ("train", "test"):
        sounds = {
            "impact/wood": lambda: pa.impact("wood", rng=rng),
            "impact/metal": lambda: pa.impact("metal", rng=rng),
            "footstep/gravel": lambda: pa.footstep("gravel", rng=rng),
            "footstep/grass": lambda: pa.footstep("grass", rng=rng),
            "door/open": lambda: pa.door("open", rng=rng),
            "door/close": lambda: pa.door("close", rng=rng),
            "glass/break": lambda: pa.glass_break(rng=rng),
            "engine/car": lambda: pa.engine(2.0, rpm=2000.0, rng=rng),
            "weather/rain": lambda: pa.noise_texture("rain", 2.0, rng=rng),
            "animal/bird": lambda: pa.noise_texture("water", 1.5, rng=rng),
            "animal/dog": lambda: pa.impact("plastic", size_m=0.3, rng=rng),
        }
        for label, make in sounds.items():
            for take in range(2):
                rel = f"{split}/{label.replace('/', '_')}_{take}.flac"
                _write(root, rel, make())
                row = {"path": rel, "label": label, "tags": [label.split("/")[1]], "package": "test",
                       "license": "CC0-1.0", "duration_s": 1.0, "kind": "sfx", "split": split}  # fmt: skip
                if label == "animal/dog":
                    row["image"] = "dog.png"
                rows.append(row)
        said = f"this is the {split} split"
        _write(root, f"{split}/speech.flac", speak(said, sample_rate=SR))
        rows.append({"path": f"{split}/speech.flac", "label": "speech/voice", "tags": [], "package": "test",
                     "license": "GPL-3.0+", "duration_s": 1.5, "kind": "speech", "split": split,
                     "transcript": said})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
