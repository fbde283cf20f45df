"""Watermark robustness, calibration, transparency and speed on held-out real audio.

Marked set: 10 s tracks assembled from the SFX corpus's held-out (split=test) clips, one kind per track
(sfx and speech: clips in sequence with 0.05-0.4 s gaps; music and ambience: clips back to back), each
marked with a random 32-bit payload and attacked by every attack of ``v2a.watermark.attacks``. For each
attack: detection rate at p < 1e-4 (the detector's threshold, whose false-positive rate is checked below),
payload bit accuracy (of the decoder's best guess, CRC or not) and the median -log10 p (the margin).
"Mix under" puts each track 6 dB below a track of the next kind (sfx under speech, speech under music,
music under ambience, ambience under sfx), the i-th track of a kind under the i-th of the other kind, so
every interfering track is used (not one per kind).

Unmarked set: 3 s windows (hop 2 s) of tracks assembled the same way from the corpus's train split, plus
white noise, pink noise, silence-with-dither and tones; the measured false-positive rate at p < 1e-4 (and
at 1e-3 and 1e-2, to show calibration) is reported.

Transparency: SNR of every marked track, PESQ (wide band, 16 kHz) on the speech tracks, and on every track
PEAQ's noise-to-mask ratio and disturbed frames (``v2a.eval.masking``), beside the same figures for the
clean track through MP3 at 128 and 64 kb/s for scale. Speed: embedding
and detection of a 10 s track, best of 5, in times real time. Results go to
``benchmarks/results/watermark_robustness.json`` and the table to ``watermark_robustness.md``.

Usage: ``python benchmarks/watermark_robustness.py [--corpus data/sfx] [--scale 1.0] [--null-windows 10200]
[--workers 2]`` (``--scale 0.2`` runs a fifth of the tracks and null windows: a quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from v2a.eval.masking import MaskingReport, noise_to_mask
from v2a.io.audio import resample
from v2a.watermark import detect, embed, subbass
from v2a.watermark.attacks import standard_attacks

RESULTS = Path(__file__).resolve().parent / "results" / "watermark_robustness.json"
SR = 24_000
TRACK_S = 10.0
KINDS = {"sfx": 64, "speech": 64, "music": 54, "ambience": 18}  # tracks per kind (ambience has 7 test clips)
ALPHA = 1e-4
MASKING_ANCHORS = ("mp3_128k", "mp3_64k")  # codecs whose noise-to-mask figures give the watermark's a scale


def load_rows(corpus: Path, split: str) -> dict[str, list[dict]]:
    """Manifest rows of ``split`` by kind."""
    rows: dict[str, list[dict]] = {}
    for line in (corpus / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == split:
            rows.setdefault(row["kind"], []).append(row)
    return rows


def assemble(
    corpus: Path, pool: list[dict], kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """A 10 s track of clips of one kind (gaps between sfx and speech clips); and the clip paths used."""
    parts, used, total = [], [], 0
    while total < TRACK_S * SR:
        row = pool[int(rng.integers(len(pool)))]
        wav, rate = sf.read(corpus / row["path"], dtype="float32", always_2d=True)
        wav = wav.mean(axis=1)
        if rate != SR:
            wav = resample(wav, rate, SR)
        if kind in ("sfx", "speech"):
            wav = np.concatenate([wav, np.zeros(int(rng.uniform(0.05, 0.4) * SR), np.float32)])
        parts.append(wav)
        used.append(row["path"])
        total += wav.size
    return np.concatenate(parts)[: int(TRACK_S * SR)], used


def marked_jobs(
    corpus: Path, scale: float, rng: np.random.Generator
) -> tuple[list[tuple[int, str, np.ndarray, np.ndarray]], set[str]]:
    """The held-out tracks to mark, as (index, kind, track, track to mix it under); and the clips used.

    The i-th track of a kind is mixed under the i-th track of the next kind (see the module docstring).
    """
    rows = load_rows(corpus, "test")
    tracks, sources = [], set()
    for kind, count in KINDS.items():
        for _ in range(max(1, round(count * scale))):
            track, used = assemble(corpus, rows[kind], kind, rng)
            sources.update(used)
            tracks.append((kind, track))
    kinds = list(KINDS)
    jobs = []
    for index, (kind, track) in enumerate(tracks):
        others = [t for k, t in tracks if k == kinds[(kinds.index(kind) + 1) % len(kinds)]]
        rank = sum(k == kind for k, _ in tracks[:index])
        jobs.append((index, kind, track, others[rank % len(others)]))
    return jobs, sources


def run_track(
    job: tuple[int, str, np.ndarray, np.ndarray],
    *,
    strength: float = 1.0,
    names: tuple[str, ...] | None = None,
) -> dict:
    """Mark one track, attack it, detect; returns per-attack results and transparency.

    Args:
        job: (index, kind, track, track to mix it under), from ``marked_jobs``.
        strength: the mark's strength (``embed``).
        names: the attacks to run, in this order (None: every attack of ``standard_attacks``).
    """
    index, kind, clean, other = job
    rng = np.random.default_rng(1000 + index)
    payload = int(rng.integers(0, 1 << 32))
    marked = embed(clean, SR, payload=payload, strength=strength)
    out = {"kind": kind, "snr_db": _snr(clean, marked), "attacks": {}}
    if kind == "speech":
        out["pesq"] = _pesq(clean, marked)
    attacks = standard_attacks()
    out["masking"] = {"watermark": _masking(clean, marked, SR)}
    for name in MASKING_ANCHORS:
        coded, rate = attacks[name](clean, SR, np.random.default_rng(index))
        out["masking"][name] = _masking(clean, resample(coded, rate, SR), SR)  # resample copies at SR
    for name in names or tuple(attacks):
        attacked, rate = attacks[name](marked, SR, rng, other=other)
        found = detect(attacked, rate, alpha=ALPHA)
        errors = bin(int.from_bytes(found.decoded, "big") ^ payload).count("1") if found.decoded else 32
        out["attacks"][name] = {
            "detected": found.detected,
            "p_value": found.p_value,
            "bit_accuracy": 1 - errors / 32,
            "payload_exact": found.payload == payload.to_bytes(4, "big"),
        }
    return out


def run_null(windows: list[np.ndarray]) -> list[float]:
    """p-values of unmarked windows under the default key."""
    return [detect(w, SR, alpha=ALPHA).p_value for w in windows]


def null_windows(corpus: Path, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` unmarked 3 s windows: train-split tracks of every kind, plus noise, dither and tones."""
    rows = load_rows(corpus, "train")
    windows: list[np.ndarray] = []
    synthetic = _synthetic_windows(rng)
    kinds = sorted(rows)
    while len(windows) < count - len(synthetic):
        kind = kinds[len(windows) % len(kinds)]
        track, _ = assemble(corpus, rows[kind], kind, rng)
        windows.extend(track[s : s + 3 * SR] for s in range(0, track.size - 3 * SR + 1, 2 * SR))
    return windows[: count - len(synthetic)] + synthetic


def _synthetic_windows(rng: np.random.Generator) -> list[np.ndarray]:
    n = 3 * SR
    out = []
    for i in range(50):
        white = rng.standard_normal(n) * 10 ** rng.uniform(-3, -0.5)
        pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.arange(n // 2 + 1) + 1.0), n)
        dither = rng.standard_normal(n) * 1e-5
        t = np.arange(n) / SR
        tone = 0.3 * np.sin(2 * np.pi * (200 + 30 * i) * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))
        out.extend(
            np.asarray(w, np.float32) for w in (white, pink / np.max(np.abs(pink)) * 0.3, dither, tone)
        )
    return out


def speed(clean: np.ndarray) -> dict:
    """Embedding and detection speed on a 10 s track, best of 5 runs."""
    marked = embed(clean, SR)
    result = {}
    for name, fn in (("embed", lambda: embed(clean, SR)), ("detect", lambda: detect(marked, SR))):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        result[f"{name}_x_realtime"] = round(TRACK_S / min(times), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx"))
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the tracks and null windows to run"
    )
    parser.add_argument("--null-windows", type=int, default=10_200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = np.random.default_rng(0)
    jobs, sources = marked_jobs(args.corpus, args.scale, rng)
    nulls = null_windows(args.corpus, max(100, round(args.null_windows * args.scale)), rng)
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        tracks = list(pool.map(run_track, jobs, chunksize=2))
        chunks = [nulls[i : i + 200] for i in range(0, len(nulls), 200)]
        p_null = np.concatenate([np.array(p) for p in pool.map(run_null, chunks)])
    speeds = speed(jobs[0][2])
    report = summarise(tracks, p_null, len(sources), speeds, time.time() - started)
    print_table(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {RESULTS} and {RESULTS.with_suffix('.md').name}")


def summarise(tracks: list[dict], p_null: np.ndarray, n_sources: int, speeds: dict, seconds: float) -> dict:
    attacks = {}
    for name in tracks[0]["attacks"]:
        res = [t["attacks"][name] for t in tracks]
        by_kind = {
            kind: round(
                float(np.mean([t["attacks"][name]["detected"] for t in tracks if t["kind"] == kind])), 3
            )
            for kind in KINDS
        }
        attacks[name] = {
            "detection_rate": round(float(np.mean([r["detected"] for r in res])), 4),
            "bit_accuracy": round(float(np.mean([r["bit_accuracy"] for r in res])), 4),
            "payload_exact": round(float(np.mean([r["payload_exact"] for r in res])), 4),
            "median_log10_p": round(float(np.median([-np.log10(max(r["p_value"], 1e-300)) for r in res])), 1),
            "detection_by_kind": by_kind,
        }
    pesq = [t["pesq"] for t in tracks if "pesq" in t]
    masking = {
        source: {
            kind: {
                figure: round(float(np.mean([t["masking"][source][figure] for t in group])), 3)
                for figure in ("nmr_db", "disturbed_frames")
            }
            for kind, group in [("all", tracks)] + [(k, [t for t in tracks if t["kind"] == k]) for k in KINDS]
        }
        for source in tracks[0]["masking"]
    }
    return {
        "tracks": {kind: sum(t["kind"] == kind for t in tracks) for kind in KINDS},
        "distinct_held_out_clips": n_sources,
        "track_seconds": TRACK_S,
        "alpha": ALPHA,
        "attacks": attacks,
        "unmarked_windows": int(p_null.size),
        "false_positive_rate": {
            str(a): {"count": int(np.sum(p_null < a)), "rate": float(np.mean(p_null < a))}
            for a in (1e-4, 1e-3, 1e-2)
        },
        "snr_db": {
            "mean": round(float(np.mean([t["snr_db"] for t in tracks])), 2),
            "min": round(float(np.min([t["snr_db"] for t in tracks])), 2),
        },
        "pesq_wb_speech": {"mean": round(float(np.mean(pesq)), 3), "min": round(float(np.min(pesq)), 3)}
        if pesq
        else None,
        "noise_to_mask": masking,
        "speed": speeds,
        "wall_seconds": round(seconds, 1),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
    }


def print_table(report: dict) -> None:
    print(
        f"{'attack':16s} {'detect@1e-4':>11s} {'bit acc':>8s} {'exact':>6s} {'-log10p':>7s}   by kind (detection)"
    )
    for name, r in report["attacks"].items():
        kinds = " ".join(f"{k}:{v:.2f}" for k, v in r["detection_by_kind"].items())
        print(
            f"{name:16s} {r['detection_rate']:11.3f} {r['bit_accuracy']:8.3f} {r['payload_exact']:6.2f} "
            f"{r['median_log10_p']:7.1f}   {kinds}"
        )
    fpr = report["false_positive_rate"]
    print(
        f"unmarked windows: {report['unmarked_windows']}, false positives at 1e-4: {fpr['0.0001']['count']}, "
        f"1e-3: {fpr['0.001']['count']}, 1e-2: {fpr['0.01']['count']}"
    )
    print(f"SNR {report['snr_db']}, PESQ {report['pesq_wb_speech']}, speed {report['speed']}")
    for source, kinds in report["noise_to_mask"].items():
        print(
            f"noise-to-mask, {source}: "
            + ", ".join(f"{k} {v['nmr_db']:.1f} dB / {v['disturbed_frames']:.3f}" for k, v in kinds.items())
        )


def markdown(report: dict) -> str:
    """The results as a Markdown table with the calibration, transparency and speed lines under it."""
    tracks = ", ".join(f"{n} {k}" for k, n in report["tracks"].items())
    lines = [
        f"Watermark robustness: {sum(report['tracks'].values())} held-out 10 s tracks ({tracks}; "
        f"{report['distinct_held_out_clips']} distinct test clips), detection at p < {report['alpha']:g}",
        "",
        "| attack | detection | bit accuracy | payload exact | median -log10 p | detection by kind |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in report["attacks"].items():
        kinds = " ".join(f"{k} {v:.2f}" for k, v in r["detection_by_kind"].items())
        lines.append(
            f"| {name} | {r['detection_rate']:.3f} | {r['bit_accuracy']:.3f} | {r['payload_exact']:.3f} "
            f"| {r['median_log10_p']:.1f} | {kinds} |"
        )
    fpr = report["false_positive_rate"]
    snr, pesq, speed = report["snr_db"], report["pesq_wb_speech"], report["speed"]
    lines += [
        "",
        f"Unmarked windows (3 s): {report['unmarked_windows']}; false positives at p < 1e-4: "
        f"{fpr['0.0001']['count']}, at 1e-3: {fpr['0.001']['count']}, at 1e-2: {fpr['0.01']['count']}.",
        f"SNR of the mark: mean {snr['mean']} dB, min {snr['min']} dB. "
        + (f"PESQ (wide band) on speech: mean {pesq['mean']}, min {pesq['min']}. " if pesq else "")
        + f"Speed on one core: embed {speed['embed_x_realtime']}x, detect {speed['detect_x_realtime']}x real time.",
        "",
        "Audibility by PEAQ's ear model (`v2a.eval.masking`, its bands extended from 80 down to 10 Hz so the "
        "sub-bass layer is judged too): mean noise-to-mask ratio (dB; below 0 the change "
        "lies under the masking threshold on average) / share of disturbed frames (some band more than 1.5 dB "
        "over its threshold), against the clean track; MP3 rows code the clean track, for scale.",
        "",
        "| change | " + " | ".join(report["noise_to_mask"]["watermark"]) + " |",
        "| --- |" + " ---: |" * len(report["noise_to_mask"]["watermark"]),
    ]
    for source, kinds in report["noise_to_mask"].items():
        cells = " | ".join(f"{v['nmr_db']:.1f} / {v['disturbed_frames']:.3f}" for v in kinds.values())
        lines.append(f"| {source} | {cells} |")
    lines.append("")
    return "\n".join(lines)


def _snr(clean: np.ndarray, marked: np.ndarray) -> float:
    return float(
        10
        * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((marked - clean).astype(np.float64) ** 2))
    )


def masking(clean: np.ndarray, changed: np.ndarray, sr: int) -> MaskingReport:
    """Noise-to-mask figures with the ear model's bands extended below 80 Hz, so the sub-bass layer counts."""
    return noise_to_mask(clean, changed, sr, f_low=subbass.MASK_F_LOW)


def _masking(clean: np.ndarray, changed: np.ndarray, sr: int) -> dict[str, float]:
    report = masking(clean, changed, sr)
    return {"nmr_db": report.nmr_db, "disturbed_frames": report.disturbed_frames}


def _pesq(clean: np.ndarray, marked: np.ndarray) -> float:
    from pesq import pesq  # benchmark-only dependency

    return float(pesq(16_000, resample(clean, SR, 16_000), resample(marked, SR, 16_000), "wb"))


if __name__ == "__main__":
    main()
