"""Synthetic training audio for the training tests: tones and decaying noise bursts, written as files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 24_000


def synth_clip(kind: str, seed: int) -> np.ndarray:
    """A 0.3-0.8 s clip at 24 kHz: a harmonic tone or a decaying noise burst, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * rng.uniform(0.3, 0.8))) / RATE
    if kind == "tone":
        wav = sum(np.sin(2 * np.pi * rng.uniform(150, 1500) * (k + 1) * t) / (k + 1) for k in range(3))
    else:  # decaying noise burst, like an impact
        wav = rng.standard_normal(len(t)) * np.exp(-t / rng.uniform(0.05, 0.3))
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def write_corpus(root: Path) -> Path:
    """Six clips under ``root/audio`` (one at 16 kHz) and ``root/manifest.jsonl``: four train, two val."""
    (root / "audio").mkdir(parents=True)
    rows = []
    for i in range(6):
        name = f"audio/{'tone' if i % 2 else 'burst'}_{i}.flac"
        sf.write(root / name, synth_clip("tone" if i % 2 else "burst", i), RATE if i != 3 else 16_000)
        rows.append({"path": name, "split": "train" if i < 4 else "val", "label": "x"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"
