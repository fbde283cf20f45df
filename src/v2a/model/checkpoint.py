"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

Two kinds of files, kept apart:

* **Release checkpoint** (what inference loads): a directory with ``config.json`` and ``model.safetensors``.
  ``config.json`` = ``{"format": "foley-checkpoint", "version": 1, "kind": "vocoder", "config": {...},
  "meta": {...}}``; the model is rebuilt from ``config`` and its weights are loaded strictly.
* **Training state** (what a resumed run loads): a directory with ``state.safetensors`` and ``state.json``
  holding any nested dict of tensors and plain values (model and discriminator weights, optimizer and
  scheduler state, EMA, step). Tensors go to safetensors under flat keys; the JSON keeps the structure,
  so tuples and non-string dict keys (optimizer state is keyed by int) come back as they were.

Every directory is written under a temporary name and renamed into place. For training state the previous
``last`` is first renamed ``shadow``, so a crash mid-save always leaves one complete state behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from v2a.errors import InputError, OutputError

FORMAT = "foley-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_JSON = "state.json"
STATE_TENSORS = "state.safetensors"
LAST = "last"
SHADOW = "shadow"
CODEC_SUBDIR = "codec"  # a generator release keeps the codec it models here when that is not the bundled one
# and the semantic head its visual tokens come from, when it was trained with one
HEAD_SUBDIR = "semantic_head"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded release checkpoint.

    Attributes:
        path: the checkpoint directory.
        kind: what network it holds ("vocoder", "codec", "generator", ...).
        config: the network's config fields, to rebuild it.
        state_dict: the weights, on CPU.
        meta: free-form facts (training step, data, versions).
    """

    path: Path
    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def load_into(self, module: nn.Module) -> None:
        """Load the weights strictly; any missing, unexpected or mis-shaped tensor raises InputError."""
        load_state_strict(module, self.state_dict, source=self.path)


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: object) -> None:
    """``module.load_state_dict(state, strict=True)`` with one clear error line naming ``source``."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{label}: {', '.join(keys[:3])}{more}")
        raise InputError(
            f"checkpoint {source} does not fit the {type(module).__name__} network: {'; '.join(parts)}"
        )
    module.load_state_dict(state, strict=True)


@dataclass(frozen=True)
class CheckpointPart:
    """A release checkpoint stored in a subfolder of another, written in the same atomic step.

    Used for the codec a generator was trained with, so the generator carries its own latent space.
    """

    module: nn.Module | Mapping[str, torch.Tensor]
    kind: str
    config: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike,
    module: nn.Module | Mapping[str, torch.Tensor],
    *,
    kind: str,
    config: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    parts: Mapping[str, CheckpointPart] | None = None,
) -> Path:
    """Write a release checkpoint directory atomically (replacing one that is there).

    Args:
        path: the directory to create.
        module: the (unwrapped, uncompiled) network or its state dict.
        kind: network family stored in the config, checked on load.
        config: JSON-able fields that rebuild the network.
        meta: JSON-able extra facts.
        parts: checkpoints written into named subfolders of the directory.

    Returns:
        The checkpoint directory.
    """

    def write(tmp: Path) -> None:
        _write_files(tmp, module, kind, config, meta)
        for name, part in (parts or {}).items():
            (tmp / name).mkdir()
            _write_files(tmp / name, part.module, part.kind, part.config, part.meta)

    out = Path(path)
    _write_dir_atomic(out, write)
    return out


def _write_files(
    folder: Path,
    module: nn.Module | Mapping[str, torch.Tensor],
    kind: str,
    config: Mapping[str, Any],
    meta: Mapping[str, Any] | None,
) -> None:
    state = module.state_dict() if isinstance(module, nn.Module) else dict(module)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind, "config": dict(config)}
    header["meta"] = dict(meta or {})
    save_file(_plain_tensors(state), str(folder / WEIGHTS_FILE), metadata={"format": FORMAT, "kind": kind})
    (folder / CONFIG_FILE).write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path: str | os.PathLike, *, kind: str | None = None) -> Checkpoint:
    """Read a release checkpoint directory (or ``config.json`` / ``model.safetensors`` inside one).

    Args:
        path: the checkpoint.
        kind: the expected network family; None accepts any.

    Raises:
        InputError: missing files, malformed JSON or tensors, or a checkpoint of another kind.
    """
    root = Path(path)
    if root.is_file() and root.name in (CONFIG_FILE, WEIGHTS_FILE):
        root = root.parent
    config_path, weights_path = root / CONFIG_FILE, root / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise InputError(
            f"no checkpoint at {root}: expected a directory with {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    header = _read_json(config_path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{config_path} is not a Foley checkpoint config (format must be {FORMAT!r})")
    if header.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{config_path} has checkpoint version {header.get('version')}; this code reads {FORMAT_VERSION}"
        )
    if kind is not None and header.get("kind") != kind:
        raise InputError(f"{root} holds a {header.get('kind')!r} checkpoint, not a {kind!r}")
    if not isinstance(header.get("config"), dict):
        raise InputError(f"{config_path} has no 'config' object")
    return Checkpoint(
        path=root,
        kind=str(header["kind"]),
        config=header["config"],
        state_dict=_read_tensors(weights_path),
        meta=header.get("meta") or {},
    )


def save_train_state(run_dir: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Save resumable training state to ``run_dir/last`` (the previous one becomes ``run_dir/shadow``).

    Args:
        run_dir: the run's folder (created if missing).
        state: nested dicts/lists/tuples of tensors, numbers, strings, bools and None.

    Returns:
        The ``last`` directory.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, tensors, prefix="")

    def write(tmp: Path) -> None:
        save_file(_plain_tensors(tensors), str(tmp / STATE_TENSORS))
        # the JSON goes last: a directory with it is complete
        (tmp / STATE_JSON).write_text(json.dumps({"format": FORMAT, "state": skeleton}) + "\n")

    last, shadow = run / LAST, run / SHADOW
    tmp = _make_temp_dir(run, ".last.")
    try:
        write(tmp)
        _fix_modes(tmp)
        if last.exists():
            if shadow.exists():
                shutil.rmtree(shadow)
            os.replace(last, shadow)
        os.replace(tmp, last)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return last


def find_train_state(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete training state in ``run_dir`` (``last``, else ``shadow``), or None."""
    for name in (LAST, SHADOW):
        candidate = Path(run_dir) / name
        if (candidate / STATE_JSON).is_file() and (candidate / STATE_TENSORS).is_file():
            return candidate
    return None


def load_train_state(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training-state directory written by :func:`save_train_state`.

    Raises:
        InputError: missing or malformed files.
    """
    root = Path(path)
    header = _read_json(root / STATE_JSON)
    if not isinstance(header, dict) or header.get("format") != FORMAT or "state" not in header:
        raise InputError(f"{root / STATE_JSON} is not a Foley training state")
    tensors = _read_tensors(root / STATE_TENSORS, device=device)
    return _decode(header["state"], tensors, source=root)


# ---- nested state <-> (JSON skeleton, flat tensors) ----


def _encode(obj: Any, tensors: dict[str, torch.Tensor], *, prefix: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"{len(tensors)}:{prefix}"  # the counter keeps keys unique whatever the nesting
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, prefix=f"{prefix}.{k}" if prefix else k) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            items.append(
                [_encode(k, tensors, prefix=f"{prefix}.k{i}"), _encode(v, tensors, prefix=f"{prefix}.{k}")]
            )
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, prefix=f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, prefix=f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(
        f"training state at {prefix!r} holds a {type(obj).__name__}, which is not saved without pickle"
    )


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor], *, source: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, source=source) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        key = obj["__tensor__"]
        if key not in tensors:
            raise InputError(f"training state {source} is incomplete: tensor {key!r} is missing")
        return tensors[key]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, source=source) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {
            _decode(k, tensors, source=source): _decode(v, tensors, source=source)
            for k, v in obj["__items__"]
        }
    return {k: _decode(v, tensors, source=source) for k, v in obj.items()}


# ---- file helpers ----


def _plain_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views that share storage; a contiguous CPU copy of each tensor is always accepted
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"missing checkpoint file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _read_tensors(path: Path, *, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"missing checkpoint file {path}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable safetensors file: {exc}") from None


def _make_temp_dir(parent: Path, prefix: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual directory mode
    return tmp


def _fix_modes(folder: Path) -> None:
    """Give a checkpoint's files and subfolders the usual modes (safetensors writes 0600; checkpoints are shared)."""
    mask = _umask()
    for entry in folder.rglob("*"):
        os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_dir_atomic(out: Path, write: Callable[[Path], None]) -> None:
    if not out.parent.is_dir():
        raise OutputError(f"checkpoint folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise OutputError(f"checkpoint path {out} exists and is not a directory")
    tmp = _make_temp_dir(out.parent, f".{out.name}.")
    old = out.parent / f".{out.name}.old"
    try:
        write(tmp)
        _fix_modes(tmp)
        if out.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
        os.replace(tmp, out)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def check_audio_spec(
    what: str, path: str | os.PathLike, made_for: str, in_use: str | None, *, remedy: str | None = None
) -> None:
    """Refuse a ``what`` checkpoint (vocoder, codec, ...) made for another AudioSpec than the one in use.

    Args:
        what: the model kind, for the message.
        path: the checkpoint, for the message.
        made_for: the spec name stored in the checkpoint's config.
        in_use: the caller's spec name; None accepts any.
        remedy: what the user should do instead (default: train or pick one for the spec in use).

    Raises:
        InputError: the names differ.
    """
    if in_use is not None and made_for != in_use:
        raise InputError(
            f"{what} checkpoint {path} was made for audio spec {made_for!r}, "
            f"but {in_use!r} is in use; {remedy or f'train or pick a {what} for {in_use!r}'}"
        )
