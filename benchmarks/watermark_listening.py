"""Listening page: 10 held-out tracks, each unmarked and marked, to check by ear that the mark is inaudible.

Writes ``OUT/index.html`` and 16-bit WAV files (git-ignored ``out/`` by default): for each track the
original, the marked version (in random A/B order, revealed under a fold so the test can be blind) and
the difference amplified by 20 dB, which shows what to listen for, and under the fold PEAQ's noise-to-mask
ratio and disturbed frames for the pair (``v2a.eval.masking``: what the ear model expects a listener to
hear, next to what MP3 at 64 kb/s scores on the same track). Tracks are assembled like the
robustness benchmark's (3 sfx, 3 speech, 2 music, 2 ambience from the corpus's test split).

Usage: ``python benchmarks/watermark_listening.py [--corpus data/sfx] [--out out/watermark_listening]``
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import numpy as np

from v2a.io.audio import resample, save_audio
from v2a.watermark import detect, embed
from v2a.watermark.attacks import standard_attacks
from watermark_robustness import SR, assemble, load_rows, masking

PICKS = {"sfx": 3, "speech": 3, "music": 2, "ambience": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx"))
    parser.add_argument("--out", type=Path, default=Path("out/watermark_listening"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    rows = load_rows(args.corpus, "test")
    items = []
    for kind, count in PICKS.items():
        for i in range(count):
            clean, used = assemble(args.corpus, rows[kind], kind, rng)
            marked = embed(clean, SR)
            snr = 10 * np.log10(
                np.sum(clean.astype(np.float64) ** 2) / np.sum((marked - clean).astype(np.float64) ** 2)
            )
            found = detect(marked, SR)
            coded, rate = standard_attacks()["mp3_64k"](clean, SR, rng)
            masks = (masking(clean, marked, SR), masking(clean, resample(coded, rate, SR), SR))
            name = f"{kind}{i + 1}"
            order = ("clean", "marked") if rng.random() < 0.5 else ("marked", "clean")
            waves = {"clean": clean, "marked": marked}
            for slot, which in zip("AB", order, strict=True):
                save_audio(args.out / f"{name}_{slot}.wav", waves[which], SR, subtype="PCM_16")
            diff = np.clip((marked - clean) * 10.0, -1, 1)
            save_audio(args.out / f"{name}_diff.wav", diff, SR, subtype="PCM_16")
            items.append((name, kind, used, snr, order, found.p_value, masks))
    (args.out / "index.html").write_text(_page(items))
    print(f"wrote {args.out / 'index.html'} ({len(items)} pairs)")


def _page(items: list[tuple]) -> str:
    rows = []
    for name, kind, used, snr, order, p_value, (mark, mp3) in items:
        sources = html.escape(", ".join(Path(u).name for u in used[:3]) + (" ..." if len(used) > 3 else ""))
        rows.append(
            f"<tr><td>{name}<br><small>{kind}</small></td>"
            f'<td><audio controls preload="none" src="{name}_A.wav"></audio></td>'
            f'<td><audio controls preload="none" src="{name}_B.wav"></audio></td>'
            f'<td><audio controls preload="none" src="{name}_diff.wav"></audio></td>'
            f"<td><details><summary>reveal</summary>A = {order[0]}, B = {order[1]}<br>SNR {snr:.1f} dB, "
            f"detector p = {p_value:.1e}<br>noise-to-mask {mark.nmr_db:.1f} dB, disturbed frames "
            f"{mark.disturbed_frames:.2f} (MP3 64 kb/s: {mp3.nmr_db:.1f} dB, {mp3.disturbed_frames:.2f})"
            f"</details></td><td><small>{sources}</small></td></tr>"
        )
    return (
        "<!doctype html><meta charset='utf-8'><title>Foley watermark listening test</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.4em;border-bottom:1px solid #ddd}</style>"
        "<h1>Foley watermark: marked vs unmarked</h1>"
        "<p>Each row: the same 10 s track unmarked and marked, in random order (A/B). Listen on headphones "
        "and guess which one carries the mark before revealing. The third player is the difference, "
        "amplified by 20 dB: what the mark sounds like on its own.</p>"
        "<table><tr><th>track</th><th>A</th><th>B</th><th>difference +20 dB</th><th>answer</th>"
        "<th>held-out clips</th></tr>" + "".join(rows) + "</table>"
    )


if __name__ == "__main__":
    main()
