"""Video (or image, or nothing) + prompts in, synchronized and watermarked soundtracks out.

``generate`` is the Python API behind ``v2a generate``, with the parameter names of diffusers' audio
pipelines::

    from v2a import generate
    result = generate("clip.mp4", prompt="glass shatters", negative_prompt="music",
                      num_waveforms_per_prompt=2, seed=0, out_dir="out")
    result.waveforms        # (2, S) float32 at result.sample_rate
    result.paths            # [{"mp4": "out/clip.0.mp4", "wav": "out/clip.0.wav"}, ...]

Stages (each timed in ``result.timings``): the encoders read the video once (semantic frames at 8 fps,
sync features at 25 fps) and the prompts; the generator samples every variant in one batch per window
(``v2a.longform``: any length); the codec decodes latents to a log-mel and the vocoder to a waveform; the
watermark is embedded; the tracks are muxed into the video (its stream copied) and/or written as audio.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from v2a.audio.bundled import bundle_path, default_vocoder, generator_codec
from v2a.audio.codec import Codec
from v2a.audio.vocoder import Vocoder
from v2a.dialogue import dialogue_track, mix_dialogue, parse_transcript
from v2a.encoders.semantic import SemanticEncoder, fit_image
from v2a.encoders.semantic_head import SemanticHead, generator_head, semantic_tokens, token_dim
from v2a.encoders.sync import SyncEncoder
from v2a.encoders.text import TextEncoder
from v2a.errors import InputError, ModelUnavailableError
from v2a.io.atomic import check_output_path
from v2a.io.audio import save_audio
from v2a.io.mux import mux
from v2a.io.video import probe
from v2a.longform import DEFAULT_CONTEXT_S, DEFAULT_WINDOW_S, generate_long
from v2a.model.checkpoint import CODEC_SUBDIR, HEAD_SUBDIR, load_checkpoint
from v2a.model.dit import (
    CHECKPOINT_KIND,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    AudioDiT,
    default_guidance,
    load_generator,
)
from v2a.model.flow import SAMPLERS
from v2a.model.inputs import ClipFeatures
from v2a.watermark import embed, provenance_tags
from v2a.watermark.files import GENERATOR
from v2a.watermark.keys import DEFAULT_KEY

log = logging.getLogger(__name__)

FORMATS = ("mp4", "wav", "flac")
DEFAULT_DURATION_S = 8.0  # of text-only and image generations
MAX_DURATION_S = 3600.0
HEADROOM = 0.89  # peak of a normalised track (-1 dBFS)


def default_generator_path() -> Path:
    """Where the bundled default generator lives."""
    return bundle_path("generator")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable choice is an InputError."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps"):
        raise InputError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but this torch has no usable CUDA GPU")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps was asked for, but MPS is not available here")
    return torch.device(device)


@dataclass
class GenerationResult:
    """What one ``generate`` call made.

    Attributes:
        waveforms: (N, S) float32 tracks (watermarked unless turned off), one per variant.
        sample_rate: their rate in Hz.
        seeds: the seed of each variant.
        paths: per variant, format -> written file ({} when nothing was written).
        start_s: where the generated span starts on the video timeline.
        duration_s: its length.
        watermarked: whether the mark was embedded.
        timings: seconds per stage (``encode``, ``sample``, ``decode``, ``dialogue`` when a transcript is
            given, ``watermark``, ``write``, ``total``).
        guidance_scale: the video guidance scale used (the default depends on whether a prompt was given).
    """

    waveforms: np.ndarray
    sample_rate: int
    seeds: list[int]
    paths: list[dict[str, str]] = field(default_factory=list)
    start_s: float = 0.0
    duration_s: float = 0.0
    watermarked: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    guidance_scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``v2a generate --json`` (no samples)."""
        return {
            "sample_rate": self.sample_rate,
            "seeds": self.seeds,
            "paths": self.paths,
            "start_s": round(self.start_s, 4),
            "duration_s": round(self.duration_s, 4),
            "watermarked": self.watermarked,
            "guidance_scale": self.guidance_scale,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class FoleyPipeline:
    """The loaded models: generator, codec, vocoder and the three encoders (loaded on first use).

    Args:
        generator: the generator network.
        codec: the latent codec it was trained with.
        vocoder: mel -> waveform.
        model_id: name written into provenance tags.
        semantic_head: the learned head whose vectors join the visual tokens (None: the bridge alone).

    Raises:
        InputError: the generator reads visual tokens of another width than the head (or its absence) gives.
    """

    def __init__(
        self,
        generator: AudioDiT,
        codec: Codec,
        vocoder: Vocoder,
        *,
        model_id: str = "foley-tiny",
        semantic_head: SemanticHead | None = None,
    ):
        if generator.cfg.semantic_dim != token_dim(semantic_head):
            raise InputError(
                f"the generator reads {generator.cfg.semantic_dim}-channel visual tokens but "
                f"{'its semantic head gives' if semantic_head else 'without a semantic head there are'} "
                f"{token_dim(semantic_head)}: save the head it was trained with in its {HEAD_SUBDIR}/ folder"
            )
        self.net, self.codec, self.vocoder, self.model_id = generator, codec, vocoder, model_id
        self.semantic_head = semantic_head
        self.device = generator.latent_mean.device
        self.window_s = DEFAULT_WINDOW_S  # generation window: the longest window the model was trained on

    @classmethod
    def from_pretrained(
        cls, checkpoint: str | os.PathLike | None = None, *, device: str = "auto"
    ) -> FoleyPipeline:
        """Load a generator checkpoint (None: the bundled default) with its codec and the bundled vocoder.

        The codec is the one saved inside the checkpoint (``codec/``) when it has one, else the bundled codec;
        the semantic head is the one in ``semantic_head/`` when the generator was trained with one.

        Raises:
            ModelUnavailableError: no checkpoint at the default place.
            InputError: a checkpoint that is malformed, of another kind, or that does not fit its codec.
        """
        dev = resolve_device(device)
        path = Path(checkpoint) if checkpoint is not None else default_generator_path()
        if checkpoint is None and not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"the bundled generator is missing at {path}; train one with `v2a train generator` "
                "or pass --checkpoint"
            )
        net = load_generator(path, device=dev)
        meta = load_checkpoint(path, kind=CHECKPOINT_KIND).meta
        model_id = f"foley-{path.name}" if checkpoint is not None else "foley-tiny"
        codec = generator_codec(path, device=str(dev))
        if codec.config.latent_dim != net.cfg.latent_dim:
            raise InputError(
                f"generator {path} models {net.cfg.latent_dim} latent channels but its codec has "
                f"{codec.config.latent_dim}: save the codec it was trained with in {path / CODEC_SUBDIR}"
            )
        pipe = cls(
            net,
            codec,
            default_vocoder(device=str(dev)),
            model_id=model_id,
            semantic_head=generator_head(path),
        )
        pipe.window_s = float(meta.get("window_s", DEFAULT_WINDOW_S))
        return pipe

    # ---- encoders (loaded lazily: a text-only call never loads the image encoders) ----

    @functools.cached_property
    def text_encoder(self) -> TextEncoder:
        return TextEncoder(device="cuda" if self.device.type == "cuda" else "cpu")

    @functools.cached_property
    def semantic_encoder(self) -> SemanticEncoder:
        return SemanticEncoder(
            device="cuda" if self.device.type == "cuda" else "cpu", text_encoder=self.text_encoder
        )

    @functools.cached_property
    def sync_encoder(self) -> SyncEncoder:
        return SyncEncoder.from_checkpoint(device="cuda" if self.device.type == "cuda" else "cpu")

    @property
    def sample_rate(self) -> int:
        return self.vocoder.spec.sample_rate

    # ---- features ----

    def video_features(self, video: str | os.PathLike, start_s: float, duration_s: float) -> ClipFeatures:
        """Semantic (8 fps) and sync (25 fps) features of a window of a video, times from the window start."""
        semantic = self.semantic_encoder.encode_video(video, start_s=start_s, duration_s=duration_s)
        # read only the window, plus enough before it that its first frames see their motion context
        margin_s = (self.sync_encoder.config.receptive_frames + 2) / self.sync_encoder.config.fps
        lead_s = min(start_s, margin_s)
        sync = self.sync_encoder.encode_video(
            video, start_s=start_s - lead_s, duration_s=duration_s + lead_s + margin_s
        )
        keep = (sync.times_s >= start_s - 1e-6) & (sync.times_s < start_s + duration_s - 1e-6)
        if not keep.any():
            keep[int(np.argmin(np.abs(sync.times_s - start_s)))] = True
        return ClipFeatures(
            duration_s=duration_s,
            semantic=semantic_tokens(semantic, self.semantic_head),
            semantic_times=semantic.times_s - start_s,
            sync=sync.features[keep],
            sync_times=sync.times_s[keep] - start_s,
        )

    def image_features(self, image: str | os.PathLike | np.ndarray, duration_s: float) -> ClipFeatures:
        """Features of a still picture held for ``duration_s``: its semantics, and the sync track of no motion."""
        frame = _load_image(image)
        semantic = self.semantic_encoder.encode_frames(fit_image(frame)[None])
        n_sem = max(1, math.ceil(duration_s * 8 - 1e-6))
        n_sync = max(1, math.ceil(duration_s * self.sync_encoder.config.fps - 1e-6))
        small = fit_image(frame, 128)
        sync = self.sync_encoder.encode_video(np.repeat(small[None], n_sync, axis=0))
        return ClipFeatures(
            duration_s=duration_s,
            semantic=np.repeat(semantic_tokens(semantic, self.semantic_head), n_sem, axis=0),
            semantic_times=np.arange(n_sem) / 8.0,
            sync=sync.features,
            sync_times=sync.times_s,
        )

    # ---- generation ----

    def __call__(
        self,
        video: str | os.PathLike | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        *,
        image: str | os.PathLike | np.ndarray | None = None,
        transcript: str | None = None,
        num_inference_steps: int = DEFAULT_STEPS,
        guidance_scale: float | None = None,
        text_guidance_scale: float | None = None,
        num_waveforms_per_prompt: int = 1,
        seed: int | Sequence[int] | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        duration: float | None = None,
        start: float = 0.0,
        method: str = DEFAULT_SAMPLER,
        out_dir: str | os.PathLike | None = None,
        output_format: str = "mp4",
        watermark: bool = True,
        watermark_key: str | bytes = DEFAULT_KEY,
        window_s: float | None = None,
        context_s: float = DEFAULT_CONTEXT_S,
        overwrite: bool = False,
        progress: bool = True,
    ) -> GenerationResult:
        """Generate ``num_waveforms_per_prompt`` soundtracks (see :func:`generate` for the arguments)."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        N = _check_count(num_waveforms_per_prompt)
        seeds, gens = _seeds(seed, generator, N)
        _check_sampling(num_inference_steps, guidance_scale, text_guidance_scale, method, output_format)
        if video is not None and image is not None:
            raise InputError("give a video or an image, not both")
        dialogue = transcript is not None and bool(transcript.strip())
        if dialogue:
            parse_transcript(transcript)  # a malformed SRT/VTT fails before any generation
        stem = (
            Path(video).stem
            if video is not None
            else (Path(image).stem if isinstance(image, str | os.PathLike) else "foley")
        )

        if out_dir is not None:  # refuse bad outputs before any work is done, and before any file is written
            _check_outputs(Path(out_dir), stem, seeds, output_format, video, overwrite)
        t0 = time.perf_counter()
        if video is not None:
            info = probe(video)
            start_s, duration_s = _span(info.duration_s, start, duration)
            clip = self.video_features(video, start_s, duration_s)
        else:
            if start:
                raise InputError("--start needs a video")
            start_s, duration_s = 0.0, _duration(duration)
            clip = self.image_features(image, duration_s) if image is not None else ClipFeatures(duration_s)
        texts = self.text_encoder.encode([prompt, negative_prompt])
        text = _row(texts, 0)
        negative = _row(texts, 1)
        timings["encode"] = time.perf_counter() - t0
        if guidance_scale is None:  # 5 with a prompt, 7 for the picture alone
            guidance_scale = default_guidance(text is not None)

        t0 = time.perf_counter()
        with tqdm(total=1, desc="generate", unit="window", disable=not progress, leave=False) as bar:

            def on_window(i: int, n: int) -> None:
                bar.total = n
                bar.update(1)

            latents = generate_long(
                self.net, clip, prompt=text, negative_prompt=negative, generators=gens,
                window_s=window_s or self.window_s, context_s=context_s, on_window=on_window,
                num_inference_steps=num_inference_steps, method=method,
                guidance_scale=guidance_scale,
                text_guidance_scale=text_guidance_scale,  # None follows guidance_scale (AudioDiT.generate)
            )  # fmt: skip
        timings["sample"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        num_samples = round(duration_s * self.sample_rate)
        mel_frames = self.vocoder.spec.num_frames(num_samples)
        mel = self.codec.decode(
            latents, num_frames=min(mel_frames, latents.shape[-1] * self.codec.config.downsample)
        )
        wavs = self.vocoder.decode(mel).float().cpu().numpy()
        wavs = np.stack([_fit_length(_normalise(w), num_samples) for w in wavs])
        timings["decode"] = time.perf_counter() - t0

        if (
            dialogue
        ):  # the lines spoken over the sound, timed to the visible mouths, the sound ducked under them
            t0 = time.perf_counter()
            speech = dialogue_track(
                video, transcript, start_s=start_s, duration_s=duration_s, sample_rate=self.sample_rate
            )
            wavs = mix_dialogue(wavs, speech, self.sample_rate)
            timings["dialogue"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if watermark:
            wavs = np.stack([embed(w, self.sample_rate, key=watermark_key) for w in wavs])
        else:
            log.warning(
                "watermarking is OFF (explicit choice): these tracks carry no mark of being generated"
            )
        timings["watermark"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        paths: list[dict[str, str]] = []
        if out_dir is not None:
            tags = (
                provenance_tags(key=watermark_key, model_id=self.model_id)
                if watermark
                else {"generator": GENERATOR}
            )
            paths = _write(
                wavs, self.sample_rate, seeds, out_dir=Path(out_dir), stem=stem, video=video,
                output_format=output_format, start_s=start_s, tags=tags, overwrite=overwrite,
            )  # fmt: skip
        timings["write"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        return GenerationResult(
            wavs, self.sample_rate, seeds, paths, start_s, duration_s, watermark, timings, guidance_scale
        )


@functools.lru_cache(maxsize=2)
def load_pipeline(checkpoint: str | None = None, device: str = "auto") -> FoleyPipeline:
    """A loaded pipeline, cached per (checkpoint, device) for repeated calls."""
    return FoleyPipeline.from_pretrained(checkpoint, device=device)


def generate(
    video: str | os.PathLike | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    **kwargs: Any,
) -> GenerationResult:
    """Generate soundtracks for a video, an image (``image=``) or a prompt alone.

    Args:
        video: the video file (None: text-only, or ``image``).
        prompt: what should be heard (optional: the picture alone is enough).
        negative_prompt: what should not be heard (the unconditional branch of guidance carries it).
        checkpoint: generator checkpoint folder (None: the bundled default).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        **kwargs: ``image``, ``transcript`` (the words spoken: plain text, one line per utterance, timed to
            the visible mouths, or SRT/WebVTT spoken at its cue times; synthesised and mixed over the
            sound, which is ducked under it), ``num_inference_steps`` (4), ``guidance_scale`` (video; 5 with
            a prompt, 7 without), ``text_guidance_scale`` (default = ``guidance_scale``),
            ``num_waveforms_per_prompt`` (1),
            ``seed`` (int or one per variant) or ``generator`` (torch.Generator(s)), ``duration``, ``start``,
            ``method`` (midpoint, or euler/heun), ``out_dir`` (None: write nothing), ``output_format``
            (mp4/wav/flac), ``watermark`` (True), ``watermark_key``, ``window_s``, ``context_s``,
            ``overwrite``, ``progress``.

    Returns:
        The waveforms, sample rate, seeds, written paths and stage timings.
    """
    pipe = load_pipeline(None if checkpoint is None else str(checkpoint), device)
    return pipe(video, prompt, negative_prompt, **kwargs)


# ---- helpers ----


def _check_count(n: int) -> int:
    if not isinstance(n, int) or not 1 <= n <= 64:
        raise InputError(f"num_waveforms_per_prompt must be 1-64, got {n!r}")
    return n


def _seeds(
    seed: int | Sequence[int] | None, generator: torch.Generator | Sequence[torch.Generator] | None, n: int
) -> tuple[list[int], list[torch.Generator]]:
    """Per-variant seeds and CPU generators: seed s gives variants s, s+1, ...; explicit lists must have n."""
    if generator is not None:
        gens = [generator] if isinstance(generator, torch.Generator) else list(generator)
        if len(gens) != n:
            raise InputError(f"need one generator per variant ({n}), got {len(gens)}")
        return [int(g.initial_seed()) for g in gens], gens
    if seed is None:
        seeds = list(range(n))
    elif isinstance(seed, int | np.integer):
        seeds = [int(seed) + i for i in range(n)]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != n:
            raise InputError(f"need one seed per variant ({n}), got {len(seeds)}")
    if any(s < 0 for s in seeds):
        raise InputError(f"seeds must be >= 0, got {seeds}")
    return seeds, [torch.Generator().manual_seed(s) for s in seeds]


def _check_sampling(steps: int, cfg: float, cfg_text: float | None, method: str, fmt: str) -> None:
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise InputError(f"num_inference_steps must be 1-1000, got {steps!r}")
    for name, value in (("guidance_scale", cfg), ("text_guidance_scale", cfg_text)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= 30):
            raise InputError(f"{name} must be in [0, 30], got {value!r}")
    if method not in SAMPLERS:
        raise InputError(f"unknown sampler {method!r}; known: {', '.join(SAMPLERS)}")
    if fmt not in FORMATS:
        raise InputError(f"output format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _duration(duration: float | None) -> float:
    d = DEFAULT_DURATION_S if duration is None else duration
    if not (isinstance(d, int | float) and math.isfinite(d) and 0.1 <= d <= MAX_DURATION_S):
        raise InputError(f"duration must be 0.1-{MAX_DURATION_S:g} s, got {duration!r}")
    return float(d)


def _span(video_s: float, start: float, duration: float | None) -> tuple[float, float]:
    """The generated span [start, start + duration) clipped to the video."""
    if not (isinstance(start, int | float) and math.isfinite(start) and 0 <= start < video_s):
        raise InputError(f"--start must be in [0, {video_s:.3f}) s (the video's length), got {start!r}")
    rest = video_s - start
    d = rest if duration is None else min(_duration(duration), rest)
    if d < 0.1:
        raise InputError(f"only {d:.3f} s of video left after --start {start}; need at least 0.1 s")
    return float(start), float(d)


def _row(texts: Any, i: int) -> Any:
    """Row ``i`` of the text encoder's output as a B = 1 batch, or None for an empty prompt."""
    if bool(texts.is_null[i]):
        return None
    return type(texts)(
        texts.tokens[i : i + 1], texts.mask[i : i + 1], texts.pooled[i : i + 1], texts.is_null[i : i + 1]
    )


def _load_image(image: str | os.PathLike | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a file or an array."""
    if isinstance(image, np.ndarray):
        arr = image
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(image) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise InputError(f"cannot read image {image}: {err}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 8:
        raise InputError(f"an image must be (H, W, 3) RGB of at least 8x8 pixels, got shape {arr.shape}")
    return np.ascontiguousarray(arr.astype(np.uint8))


def _normalise(wav: np.ndarray) -> np.ndarray:
    """Peak at most -1 dBFS (quieter tracks are left as generated)."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav * (HEADROOM / peak) if peak > HEADROOM else wav


def _fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    return wav[:n] if len(wav) >= n else np.pad(wav, (0, n - len(wav)))


def _output_paths(
    out_dir: Path, stem: str, seed: int, output_format: str, has_video: bool
) -> dict[str, Path]:
    """The files one variant is written to, by format."""
    audio_ext = "flac" if output_format == "flac" else "wav"
    paths = {audio_ext: out_dir / f"{stem}.{seed}.{audio_ext}"}
    if output_format == "mp4" and has_video:
        paths["mp4"] = out_dir / f"{stem}.{seed}.mp4"
    return paths


def _check_outputs(
    out_dir: Path, stem: str, seeds: list[int], output_format: str, video: object, overwrite: bool
) -> None:
    if not out_dir.exists():
        return  # it will be created; nothing in it can clash
    if not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} is a file")
    inputs = [video] if isinstance(video, str | os.PathLike) else []
    for seed in seeds:
        for path in _output_paths(out_dir, stem, seed, output_format, video is not None).values():
            check_output_path(path, inputs=inputs, overwrite=overwrite)


def _write(
    wavs: np.ndarray,
    sr: int,
    seeds: list[int],
    *,
    out_dir: Path,
    stem: str,
    video: str | os.PathLike | None,
    output_format: str,
    start_s: float,
    tags: dict[str, str],
    overwrite: bool,
) -> list[dict[str, str]]:
    """Write ``<stem>.<seed>.mp4`` (muxed, the generated span placed at its time) and/or ``.wav``/``.flac``.

    The folder and paths were checked by :func:`_check_outputs` before generation.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for wav, seed in zip(wavs, seeds, strict=True):
        files: dict[str, str] = {}
        for fmt, path in _output_paths(out_dir, stem, seed, output_format, video is not None).items():
            if fmt == "mp4":
                track = (
                    np.concatenate([np.zeros(round(start_s * sr), np.float32), wav]) if start_s > 0 else wav
                )
                files[fmt] = str(mux(video, (track, sr), path, metadata=tags, overwrite=overwrite))
            else:
                files[fmt] = str(save_audio(path, wav, sr, overwrite=overwrite, metadata=tags))
        written.append(files)
    return written
