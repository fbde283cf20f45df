"""The bundled default checkpoints: where they live, how to load them, how a trained run becomes one.

Layout, at the repository root (override the folder with ``$V2A_CHECKPOINTS``)::

    checkpoints/vocoder/config.json, model.safetensors   # kind "vocoder", see v2a.audio.vocoder
    checkpoints/codec/config.json, model.safetensors     # kind "codec", see v2a.audio.codec
    checkpoints/generator/config.json, model.safetensors # kind "generator", see v2a.model.dit

Bundled weights are stored in float16 (half the size in git) and loaded into float32 networks. They are
made from a training run's ``release/`` folder by :func:`export_bundle`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from v2a.audio.codec import Codec
from v2a.audio.spec import DEFAULT_SPEC, AudioSpec
from v2a.audio.vocoder import Vocoder
from v2a.errors import InputError, ModelUnavailableError
from v2a.model.checkpoint import (
    CODEC_SUBDIR,
    CONFIG_FILE,
    HEAD_SUBDIR,
    WEIGHTS_FILE,
    CheckpointPart,
    load_checkpoint,
    save_checkpoint,
)

ENV_VAR = "V2A_CHECKPOINTS"
REPO_CHECKPOINTS = Path(__file__).resolve().parents[3] / "checkpoints"
KINDS = ("vocoder", "codec", "generator")


def checkpoints_dir() -> Path:
    """The folder of bundled checkpoints: ``$V2A_CHECKPOINTS`` when set, else ``checkpoints/`` in the repo."""
    return Path(os.environ.get(ENV_VAR) or REPO_CHECKPOINTS)


def bundle_path(kind: str) -> Path:
    """Where the bundled checkpoint of ``kind`` (``vocoder``, ``codec`` or ``generator``) lives.

    Raises:
        InputError: unknown kind.
    """
    if kind not in KINDS:
        raise InputError(f"unknown bundled checkpoint kind {kind!r}; known: {list(KINDS)}")
    return checkpoints_dir() / kind


def _existing(kind: str) -> Path:
    path = bundle_path(kind)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise ModelUnavailableError(
            f"the bundled {kind} checkpoint is missing: expected {path}/{CONFIG_FILE} and {WEIGHTS_FILE} "
            f"(train one with `v2a train {kind}` and copy its release there with "
            f"v2a.audio.bundled.export_bundle(RUN_DIR, {kind!r}))"
        )
    return path


def default_vocoder(*, spec: AudioSpec = DEFAULT_SPEC, device: str = "cpu") -> Vocoder:
    """The bundled vocoder, in eval mode.

    Raises:
        ModelUnavailableError: the bundle is not there.
        InputError: it is there but unreadable, or made for another spec.
    """
    return load_vocoder(None, spec=spec, device=device)


def default_codec(*, spec: AudioSpec = DEFAULT_SPEC, device: str = "cpu") -> Codec:
    """The bundled latent codec, in eval mode.

    Raises:
        ModelUnavailableError: the bundle is not there.
        InputError: it is there but unreadable, or made for another spec.
    """
    return load_codec(None, spec=spec, device=device)


def load_vocoder(
    path: str | os.PathLike | None = None, *, spec: AudioSpec = DEFAULT_SPEC, device: str = "cpu"
) -> Vocoder:
    """A vocoder checkpoint folder, or the bundled vocoder for None or ``"bundled"``, in eval mode.

    Raises:
        ModelUnavailableError: the bundled vocoder is asked for and is not there.
        InputError: the checkpoint is unreadable, not a vocoder, or made for another spec.
    """
    return Vocoder.from_checkpoint(_source("vocoder", path), spec=spec, device=device)


def load_codec(
    path: str | os.PathLike | None = None, *, spec: AudioSpec = DEFAULT_SPEC, device: str = "cpu"
) -> Codec:
    """A codec checkpoint folder, or the bundled codec for None or ``"bundled"``, in eval mode.

    Raises:
        ModelUnavailableError: the bundled codec is asked for and is not there.
        InputError: the checkpoint is unreadable, not a codec, or made for another spec.
    """
    return Codec.from_checkpoint(_source("codec", path), spec=spec, device=device)


def generator_codec(
    generator: str | os.PathLike, *, spec: AudioSpec = DEFAULT_SPEC, device: str = "cpu"
) -> Codec:
    """The codec a generator release models: the one in its ``codec/`` subfolder, else the bundled codec.

    Raises:
        ModelUnavailableError: the release has no codec of its own and the bundled codec is not there.
        InputError: the codec is unreadable or made for another spec.
    """
    own = Path(generator) / CODEC_SUBDIR
    return load_codec(own if (own / CONFIG_FILE).is_file() else None, spec=spec, device=device)


def _source(kind: str, path: str | os.PathLike | None) -> Path:
    """The checkpoint folder to load: ``path``, or the bundled one of ``kind`` for None or ``"bundled"``."""
    return _existing(kind) if path is None or str(path) == "bundled" else Path(path)


def export_bundle(
    run_dir: str | os.PathLike,
    kind: str,
    *,
    dest: str | os.PathLike | None = None,
    meta: Mapping[str, Any] | None = None,
    validate: Callable[[Path], object] | None = None,
) -> Path:
    """Copy a run's release checkpoint into the bundle folder with float16 weights.

    The checkpoint is first loaded into its network (strictly), so a broken or mismatched release is never
    bundled. Its meta data is kept and extended with ``dtype``, ``exported_from`` and ``meta``.

    Args:
        run_dir: a training run folder (its ``release/`` is used) or a release folder itself.
        kind: ``vocoder``, ``codec`` or ``generator``.
        dest: target folder; None means :func:`bundle_path` of ``kind``.
        meta: extra facts to record (e.g. the training command and its figures).
        validate: loads the release strictly (raising on failure); None: the vocoder's or codec's loader
            (a generator needs ``v2a.model.dit.load_generator``, which this module must not import).

    Returns:
        The written checkpoint folder.

    Raises:
        InputError: unknown kind, or no loadable release of that kind in ``run_dir``.
    """
    default = bundle_path(kind)  # checks the kind
    target = Path(dest) if dest is not None else default
    source = Path(run_dir)
    if (source / "release" / CONFIG_FILE).is_file():
        source = source / "release"
    if validate is None:
        if kind == "generator":
            raise InputError("exporting a generator needs validate=v2a.model.dit.load_generator")
        loader = Vocoder if kind == "vocoder" else Codec
        loader.from_checkpoint(source, spec=None)  # refuses anything that would not load as a bundle
    else:
        validate(source)
    ckpt = load_checkpoint(source, kind=kind)
    info = {**ckpt.meta, "dtype": "float16", "exported_from": str(source), **(meta or {})}
    parts = {}
    if (source / CODEC_SUBDIR / CONFIG_FILE).is_file():
        Codec.from_checkpoint(source / CODEC_SUBDIR, spec=None)  # refuses a codec that would not load
    # the parts a generator release carries (its own codec, its semantic head) travel with it
    for subdir, part_kind in ((CODEC_SUBDIR, "codec"), (HEAD_SUBDIR, "semantic-head")):
        if (source / subdir / CONFIG_FILE).is_file():
            own = load_checkpoint(source / subdir, kind=part_kind)
            own_info = {**own.meta, "dtype": "float16"}
            parts[subdir] = CheckpointPart(_half(own.state_dict, own.path), part_kind, own.config, own_info)
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        target, _half(ckpt.state_dict, source), kind=kind, config=ckpt.config, meta=info, parts=parts or None
    )


def _half(state: Mapping[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """The state dict with float tensors in float16; InputError if any of them overflows."""
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    overflow = [k for k, v in half.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if overflow:
        raise InputError(f"{source}: weights {overflow[:3]} exceed the float16 range; cannot bundle them")
    return half


def bundle_size_bytes(path: str | os.PathLike) -> int:
    """Bytes of a checkpoint folder's files, its codec subfolder included (what committing it costs)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
