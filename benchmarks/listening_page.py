"""Listening page: held-out recordings next to their reconstructions (Griffin-Lim, vocoder, codec -> vocoder).

Writes ``index.html`` with an audio player per version and a log-mel spectrogram PNG per clip (original on
top, each reconstruction below it on the same colour scale), plus each reconstruction's mel L1 on non-silent
frames and multi-resolution STFT distance. Clips: ``--per-group`` from each of impacts, other effects,
ambience, speech and music of the SFX corpus's test split (the same pick as benchmarks/audio_quality.py).

Usage::

    python benchmarks/listening_page.py --corpus data/sfx/manifest.jsonl \
        [--vocoder checkpoints/vocoder] [--codec checkpoints/codec] [--out out/listening]

The output folder is git-ignored; open ``OUT/index.html`` in a browser.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import numpy as np
import torch

from audio_quality import METHODS, Clip, clip_scores, held_out_clips, reconstructions
from v2a.audio.bundled import bundle_path
from v2a.audio.codec import Codec
from v2a.audio.mel import log_mel
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.audio.vocoder import Vocoder
from v2a.io.atomic import atomic_output
from v2a.io.audio import save_audio
from v2a.model.checkpoint import load_checkpoint
from v2a.train.losses import MultiResolutionSTFTLoss, stft_resolutions

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "out" / "listening"
GROUPS = ("impacts", "sfx_other", "ambience", "speech", "music")
TITLES = {
    "original": "original",
    "griffinlim": "Griffin-Lim (32 it.)",
    "vocoder": "vocoder",
    "codec": "codec → vocoder",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 16px; margin: 28px 0 6px; }
.meta { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { padding: 4px 10px; text-align: left; font-size: 13px; border-bottom: 1px solid #eee; }
audio { width: 260px; height: 32px; }
img { width: 100%; max-width: 1100px; border: 1px solid #ddd; }
"""


def spectrogram_png(mels: dict[str, torch.Tensor], path: Path, spec: AudioSpec = DEFAULT_SPEC) -> None:
    """One panel per version, stacked, on the original's colour scale (time in s, mel bands up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = float(np.log(spec.log_floor))
    top = float(mels["original"].max())
    seconds = mels["original"].shape[-1] / spec.mel_fps
    fig, axes = plt.subplots(len(mels), 1, figsize=(11, 1.7 * len(mels)), sharex=True)
    for ax, (name, mel) in zip(axes, mels.items(), strict=True):
        ax.imshow(
            mel.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=max(floor, top - 10), vmax=top,
            extent=(0, seconds, 0, mel.shape[0]),
        )  # fmt: skip
        ax.set_ylabel(TITLES[name], fontsize=8)
        ax.set_yticks([])
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def write_page(
    clips: list[Clip],
    vocoder: Vocoder,
    codec: Codec,
    out: Path,
    *,
    describe: str,
    spec: AudioSpec = DEFAULT_SPEC,
) -> Path:
    """Render every clip (audio files, spectrogram, scores) and the ``index.html`` that shows them."""
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "spectrograms").mkdir(exist_ok=True)
    stft = MultiResolutionSTFTLoss(stft_resolutions(spec))
    sections = []
    for i, clip in enumerate(clips):
        outputs = reconstructions(clip, vocoder, codec, spec)
        scores = clip_scores(clip, outputs, codec, stft, spec)
        versions = {"original": clip.wav, **outputs}
        stem = f"{i:02d}_{clip.group}"
        for name, wav in versions.items():
            save_audio(out / "audio" / f"{stem}_{name}.wav", wav, spec.sample_rate, subtype="PCM_16")
        mels = {name: log_mel(torch.from_numpy(wav), spec) for name, wav in versions.items()}
        spectrogram_png(mels, out / "spectrograms" / f"{stem}.png", spec)
        sections.append(_section(clip, stem, scores, len(clip.wav) / spec.sample_rate))
    page = (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>Foley: listening page</title>"
        f"<style>{STYLE}</style></head><body>\n<h1>What the audio representation keeps</h1>\n"
        f"<p class='meta'>{html.escape(describe)}</p>\n"
        "<p class='meta'>Held-out recordings (corpus test split). Scores against the original: mel L1 on "
        "non-silent frames (lower is better) and multi-resolution STFT distance (lower is better).</p>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    index = out / "index.html"
    with atomic_output(index) as tmp:
        tmp.write_text(page)
    return index


def _section(clip: Clip, stem: str, scores: dict[str, dict[str, float]], seconds: float) -> str:
    rows = []
    for name in ("original", *METHODS):
        player = f"<audio controls preload='metadata' src='audio/{stem}_{name}.wav'></audio>"
        row = scores.get(name, {})
        numbers = (
            f"<td>{row.get('mel_l1_active', float('nan')):.3f}</td><td>{row['mrstft']:.3f}</td>"
            if row
            else "<td>–</td><td>–</td>"
        )
        rows.append(f"<tr><td>{TITLES[name]}</td><td>{player}</td>{numbers}</tr>")
    codec_only = scores["codec_mel"].get("mel_l1_active", scores["codec_mel"]["mel_l1"])
    return (
        f"<h2>{html.escape(clip.group)}: {html.escape(clip.label)}</h2>\n"
        f"<p class='meta'>{html.escape(clip.path)} · {seconds:.1f} s · codec mel L1 alone "
        f"(before the vocoder): {codec_only:.3f}</p>\n"
        "<table><tr><th>version</th><th>listen</th><th>mel L1 (active)</th><th>MR-STFT</th></tr>\n"
        + "\n".join(rows)
        + f"\n</table>\n<img src='spectrograms/{stem}.png' alt='log-mel spectrograms of {stem}'>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/sfx/manifest.jsonl"))
    parser.add_argument("--vocoder", type=Path, default=bundle_path("vocoder"))
    parser.add_argument("--codec", type=Path, default=bundle_path("codec"))
    parser.add_argument("--per-group", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    vocoder = Vocoder.from_checkpoint(args.vocoder)
    codec = Codec.from_checkpoint(args.codec)
    clips = held_out_clips(
        args.corpus, per_group=args.per_group, max_seconds=args.max_seconds, groups=GROUPS, min_seconds=1.0
    )
    steps = {
        name: load_checkpoint(path).meta.get("step")
        for name, path in (("vocoder", args.vocoder), ("codec", args.codec))
    }
    describe = (
        f"vocoder {args.vocoder} (step {steps['vocoder']}), codec {args.codec} (step {steps['codec']}), "
        f"{len(clips)} clips"
    )
    index = write_page(clips, vocoder, codec, args.out, describe=describe)
    print(f"wrote {index}")


if __name__ == "__main__":
    main()
