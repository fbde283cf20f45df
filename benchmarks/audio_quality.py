"""Quality of the audio representation on held-out real recordings: vocoder vs Griffin-Lim vs codec -> vocoder.

Clips come from the SFX corpus's ``test`` split (never trained on), grouped as impacts (impact, door,
footstep, glass, explosion), other effects, ambience, speech, music and UI sounds; up to ``--per-group``
clips per group, picked by a hash of their path (the same on every machine), each cut to ``--max-seconds``.
Every clip is reconstructed three ways (``v2a.audio.reconstruct``): Griffin-Lim (32 iterations), the neural
vocoder, and codec -> vocoder. Reported per group and overall:

* ``mrstft``: multi-resolution STFT distance (spectral convergence + log-magnitude L1, 3 resolutions);
* ``mel_l1``: mean |log-mel difference|, all frames, and ``mel_l1_active`` on non-silent frames only
  (frame RMS above -60 dBFS): Griffin-Lim fits the mel exactly in silent frames, which flatters it;
* ratios of each to Griffin-Lim's (below 1 is better than Griffin-Lim);
* on speech: PESQ (ITU-T P.862.2 wide band, at 16 kHz) and STOI;
* the codec alone: mel L1 of its reconstruction, and the spread of its normalised latents on held-out audio;
* CPU real-time factors (best of ``--repeat`` runs on a 10 s clip, ``--threads`` torch threads).

Usage::

    python benchmarks/audio_quality.py --corpus data/sfx/manifest.jsonl \
        [--vocoder checkpoints/vocoder] [--codec checkpoints/codec] [--per-group 24] [--threads 2]

Results go to ``benchmarks/results/audio_quality.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pesq import NoUtterancesError, pesq
from pystoi import stoi

from v2a.audio.bundled import bundle_path
from v2a.audio.codec import Codec
from v2a.audio.griffinlim import griffin_lim
from v2a.audio.mel import log_mel
from v2a.audio.reconstruct import reconstruct_waveform
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.audio.vocoder import Vocoder
from v2a.io.audio import load_audio, resample
from v2a.model.checkpoint import load_checkpoint
from v2a.train.losses import MultiResolutionSTFTLoss, stft_resolutions
from vocoder_speed import time_calls

RESULTS = Path(__file__).resolve().parent / "results" / "audio_quality.json"
METHODS = ("griffinlim", "vocoder", "codec")  # the `via` of each reconstruction
IMPACT_LABELS = {"impact", "door", "footstep", "glass", "explosion"}
GROUPS = ("impacts", "sfx_other", "ambience", "speech", "music", "ui")
ACTIVE_DB = -60.0


@dataclass(frozen=True)
class Clip:
    """A held-out recording: its group, manifest path, label and (S,) waveform at the spec's rate."""

    group: str
    path: str
    label: str
    wav: np.ndarray


def group_of(row: dict) -> str:
    """The benchmark group of a manifest row."""
    if row.get("kind") == "sfx":
        return "impacts" if str(row.get("label", "")).split("/")[0] in IMPACT_LABELS else "sfx_other"
    return str(row.get("kind", "sfx_other"))


def held_out_clips(
    manifest: Path,
    *,
    per_group: int,
    max_seconds: float,
    groups: Sequence[str] = GROUPS,
    spec: AudioSpec = DEFAULT_SPEC,
    min_seconds: float = 0.5,
) -> list[Clip]:
    """Up to ``per_group`` test-split clips of each group, chosen by a hash of the path, cut to ``max_seconds``."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split") == "test" and r.get("duration_s", 0) >= min_seconds]
    clips = []
    for group in groups:
        members = sorted(
            (r for r in rows if group_of(r) == group), key=lambda r: zlib.crc32(r["path"].encode())
        )
        for row in members[:per_group]:
            wav, _ = load_audio(manifest.parent / row["path"], sr=spec.sample_rate, duration_s=max_seconds)
            clips.append(Clip(group, row["path"], row.get("label", ""), wav))
    return clips


def active_frames(
    wav: np.ndarray, spec: AudioSpec = DEFAULT_SPEC, threshold_db: float = ACTIVE_DB
) -> np.ndarray:
    """(T,) bool: mel frames whose analysis window (centred, n_fft long) has RMS above ``threshold_db`` dBFS."""
    padded = np.pad(wav, spec.n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft)[:: spec.hop_length]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10)) > threshold_db


def reconstructions(
    clip: Clip, vocoder: Vocoder, codec: Codec, spec: AudioSpec = DEFAULT_SPEC
) -> dict[str, np.ndarray]:
    """The clip rebuilt by each method, keyed by its ``via`` name; each (S,) like the clip."""
    return {
        via: reconstruct_waveform(clip.wav, via=via, vocoder=vocoder, codec=codec, spec=spec)
        for via in METHODS
    }


def clip_scores(
    clip: Clip,
    outputs: dict[str, np.ndarray],
    codec: Codec,
    stft: MultiResolutionSTFTLoss,
    spec: AudioSpec = DEFAULT_SPEC,
) -> dict[str, dict[str, float]]:
    """Scores of each method's output on one clip, plus the codec's own mel reconstruction (``codec_mel``)."""
    ref = torch.from_numpy(clip.wav)
    mel = log_mel(ref, spec)  # (n_mels, T)
    active = torch.from_numpy(active_frames(clip.wav, spec))
    assert active.shape[0] == mel.shape[-1], f"{active.shape=} {mel.shape=}"
    scores: dict[str, dict[str, float]] = {}
    for via, out in outputs.items():
        row = _mel_scores(log_mel(torch.from_numpy(out), spec), mel, active)
        row["mrstft"] = float(stft(torch.from_numpy(out)[None], ref[None]))
        if clip.group == "speech":
            row.update(_speech_scores(clip.wav, out, spec))
        scores[via] = row
    latent = codec.encode(mel)  # (C, L)
    scores["codec_mel"] = _mel_scores(codec.decode(latent, num_frames=mel.shape[-1]), mel, active)
    scores["codec_mel"]["latent_mean"] = float(latent.mean())
    scores["codec_mel"]["latent_std"] = float(latent.std())
    return scores


def _mel_scores(fake: torch.Tensor, real: torch.Tensor, active: torch.Tensor) -> dict[str, float]:
    diff = (fake - real).abs()  # (n_mels, T)
    row = {"mel_l1": float(diff.mean())}
    if bool(active.any()):
        row["mel_l1_active"] = float(diff[:, active].mean())
    return row


def _speech_scores(ref: np.ndarray, out: np.ndarray, spec: AudioSpec) -> dict[str, float]:
    row = {"stoi": float(stoi(ref, out, spec.sample_rate, extended=False))}
    ref16, out16 = resample(ref, spec.sample_rate, 16_000), resample(out, spec.sample_rate, 16_000)
    with contextlib.suppress(NoUtterancesError):  # PESQ finds no speech in the reference: leave it out
        row["pesq_wb"] = float(pesq(16_000, ref16, out16, "wb"))
    return row


def _mean_rows(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def summarise(per_clip: Sequence[tuple[Clip, dict[str, dict[str, float]]]]) -> dict[str, object]:
    """Means per group and method, overall means (clips weighted equally) and ratios to Griffin-Lim."""
    methods = (*METHODS, "codec_mel")
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for group in dict.fromkeys(c.group for c, _ in per_clip):
        chosen = [s for c, s in per_clip if c.group == group]
        groups[group] = {m: _mean_rows([s[m] for s in chosen]) for m in methods}
    overall = {m: _mean_rows([s[m] for _, s in per_clip]) for m in methods}
    ratios = {
        m: {k: overall[m][k] / overall["griffinlim"][k] for k in ("mrstft", "mel_l1", "mel_l1_active")}
        for m in ("vocoder", "codec")
    }
    return {"groups": groups, "overall": overall, "ratios_to_griffinlim": ratios}


def speed(vocoder: Vocoder, codec: Codec, *, repeat: int, spec: AudioSpec = DEFAULT_SPEC) -> dict[str, float]:
    """Real-time factors (best run) on a 10 s clip of noise: each stage and the codec -> vocoder chain."""
    wav = 0.1 * torch.randn(spec.num_samples(10.0), generator=torch.Generator().manual_seed(0))
    mel = log_mel(wav, spec)
    latent = codec.encode(mel)
    audio_s = (mel.shape[-1] - 1) * spec.hop_length / spec.sample_rate
    calls = {
        "vocoder": lambda: vocoder.decode(mel),
        "codec_encode_decode": lambda: codec.decode(codec.encode(mel)),
        "codec_decode_vocoder": lambda: vocoder.decode(codec.decode(latent, num_frames=mel.shape[-1])),
        "griffinlim_32": lambda: griffin_lim(mel, spec, n_iter=32),
    }
    return {
        f"{name}_realtime_factor": audio_s / time_calls(fn, repeat if "griffin" not in name else 3)[0]
        for name, fn in calls.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx/manifest.jsonl"))
    parser.add_argument("--vocoder", type=Path, default=bundle_path("vocoder"))
    parser.add_argument("--codec", type=Path, default=bundle_path("codec"))
    parser.add_argument("--per-group", type=int, default=24)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="pystoi")
    spec = DEFAULT_SPEC
    vocoder = Vocoder.from_checkpoint(args.vocoder, spec=spec)
    codec = Codec.from_checkpoint(args.codec, spec=spec)
    stft = MultiResolutionSTFTLoss(stft_resolutions(spec))
    start = time.monotonic()
    clips = held_out_clips(args.corpus, per_group=args.per_group, max_seconds=args.max_seconds, spec=spec)
    per_clip = [
        (c, clip_scores(c, reconstructions(c, vocoder, codec, spec), codec, stft, spec)) for c in clips
    ]
    summary = summarise(per_clip)
    rtf = speed(vocoder, codec, repeat=args.repeat, spec=spec)
    result = {
        "benchmark": "audio_quality",
        "spec": spec.name,
        "checkpoints": {
            name: _describe(path) for name, path in (("vocoder", args.vocoder), ("codec", args.codec))
        },
        "clips": {g: sum(c.group == g for c in clips) for g in dict.fromkeys(c.group for c in clips)},
        "audio_seconds": round(sum(len(c.wav) for c in clips) / spec.sample_rate, 1),
        "active_frame_threshold_db": ACTIVE_DB,
        **summary,
        "speed": {"threads": args.threads, **rtf},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "wall_seconds": round(time.monotonic() - start, 1),
    }
    _print(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def _describe(path: Path) -> dict[str, object]:
    ckpt = load_checkpoint(path)
    params = sum(t.numel() for k, t in ckpt.state_dict.items() if not k.startswith("latent_"))
    return {"path": str(path), "step": ckpt.meta.get("step"), "params": params, "config": ckpt.config}


def _print(result: dict) -> None:
    for scope, table in [*result["groups"].items(), ("OVERALL", result["overall"])]:
        print(f"{scope} ({result['clips'].get(scope, sum(result['clips'].values()))} clips)")
        for method, row in table.items():
            print(f"  {method:>11}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    for method, row in result["ratios_to_griffinlim"].items():
        print(f"ratio to Griffin-Lim, {method}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    print("speed: " + "  ".join(f"{k} {v:.1f}" for k, v in result["speed"].items()))


if __name__ == "__main__":
    main()
