"""Evaluation benchmark on held-out real recordings: the SFX corpus test split against known corruptions.

The corpus test split (recordings never used for training; at most ``--per-label`` clips per label, chosen
by seed) is the ground truth. Each corruption is a "system" scored the same way, so the table shows how
far each metric moves for a known defect:

- ``shifted +0.5 s``: the recording starts half a second late;
- ``shuffled``: another test clip's recording, of another label (real sound, wrong content);
- ``low-pass 1 kHz``: dull but right in content and timing;
- ``noise -20 dBFS``: white noise; ``silence``: all zeros;
- ``baseline: random train sfx``: a random corpus sound effect from the train split.

These clips have no video or event times, so the audio-only metric groups run (embedding, class,
quality; ``ref_lag_s`` measures timing against the reference). Usage::

    python benchmarks/eval_real_sfx.py --corpus data/sfx [--per-label 4] [--seed 0]

Writes ``benchmarks/results/real_sfx.json`` and ``real_sfx.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt

from eval_common import score_systems, write_results
from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import ClipRow, write_manifest
from v2a.data.sfx_corpus import read_manifest as read_corpus
from v2a.eval.runner import EvalOptions
from v2a.io.audio import load_audio, save_audio

SR = DEFAULT_SPEC.sample_rate


def select_test_rows(corpus: Path, per_label: int, seed: int) -> list[dict]:
    """At most ``per_label`` test-split rows per label, a seeded random choice, in a fixed order."""
    rows = [r for r in read_corpus(corpus / "manifest.jsonl") if r.get("split") == "test"]
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    chosen = []
    for label in sorted(by_label):
        group = by_label[label]
        picks = rng.choice(len(group), size=min(per_label, len(group)), replace=False)
        chosen.extend(group[i] for i in sorted(picks))
    return chosen


def clip_rows(corpus: Path, rows: list[dict]) -> list[ClipRow]:
    """Manifest rows for audio-only clips: the recording stands in for the video (no video metric runs)."""
    out = []
    for i, row in enumerate(rows):
        audio = str((corpus / row["path"]).absolute())
        out.append(
            ClipRow(id=f"sfx-{i:04d}", video=audio, audio=audio, duration_s=float(row["duration_s"]), fps=25.0,
                    split="test", caption=row.get("label", ""), labels=(row["label"],), source=row["path"])
        )  # fmt: skip
    return out


def corruptions(
    rows: list[ClipRow], corpus: Path, seed: int
) -> dict[str, Callable[[int, np.ndarray], np.ndarray]]:
    """Name -> function (clip index, reference waveform) -> corrupted waveform of the same length."""
    rng = np.random.default_rng(seed)
    train = [
        r
        for r in read_corpus(corpus / "manifest.jsonl")
        if r.get("split") == "train" and r.get("kind") == "sfx"
    ]
    lowpass = butter(4, 1000, btype="lowpass", fs=SR, output="sos")

    def shifted(i, wav):
        n = round(0.5 * SR)
        return np.r_[np.zeros(n, np.float32), wav][: wav.size]

    def shuffled(i, wav):  # rows are sorted by label: half the list away is another label
        other, _ = load_audio(rows[(i + len(rows) // 2) % len(rows)].audio, sr=SR)
        return np.pad(other, (0, max(0, wav.size - other.size)))[: wav.size]

    def random_train(i, wav):
        pick = train[int(rng.integers(len(train)))]
        other, _ = load_audio(corpus / pick["path"], sr=SR)
        return np.pad(other, (0, max(0, wav.size - other.size)))[: wav.size]

    return {
        "shifted +0.5 s": shifted,
        "shuffled": shuffled,
        "low-pass 1 kHz": lambda i, wav: sosfilt(lowpass, wav).astype(np.float32),
        "noise -20 dBFS": lambda i, wav: (0.1 * rng.standard_normal(wav.size)).astype(np.float32),
        "silence": lambda i, wav: np.zeros_like(wav),
        "baseline: random train sfx": random_train,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx"))
    parser.add_argument("--per-label", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="real_sfx", help="results file name")
    args = parser.parse_args()

    selected = select_test_rows(args.corpus, args.per_label, args.seed)
    rows = clip_rows(args.corpus, selected)
    options = EvalOptions(metrics=("lag", "embedding", "class", "quality"))
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(Path(tmp) / "manifest.jsonl", rows)
        systems: dict[str, Path | None] = {"ground truth": None}
        refs = [load_audio(r.audio, sr=SR)[0] for r in rows]
        for k, (name, corrupt) in enumerate(corruptions(rows, args.corpus, args.seed).items()):
            folder = Path(tmp) / f"system{k}"
            folder.mkdir()
            for i, (row, wav) in enumerate(zip(rows, refs, strict=True)):
                save_audio(folder / f"{Path(row.video).stem}.wav", np.clip(corrupt(i, wav), -1, 1), SR)
            systems[name] = folder
        summaries, notes, seconds, _ = score_systems(manifest, systems, options)
    title = (f"Held-out real recordings: SFX corpus test split, {len(rows)} clips (<= {args.per_label} per label, "
             f"seed {args.seed}), ground truth vs corruptions, scored by `v2a eval`")  # fmt: skip
    info = {"title": title, "corpus": str(args.corpus), "clips": len(rows), "seconds": round(seconds, 1)}
    json_path, md_path = write_results(args.name, summaries, notes, info)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
