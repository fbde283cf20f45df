"""Run fixed PyTorch networks with ONNX Runtime: export once to a disk cache, then load a session.

Eager PyTorch convolutions are slow on small CPUs (EfficientNet-Lite0 runs about 20x faster under ONNX
Runtime on a 2-core VM), so frozen conv nets (the image encoder, a trained vocoder) are exported with
``torch.onnx.export`` and run by ``OrtModel``. The export is keyed by a hash of the weights, the module
class, the input/output layout and the torch/onnx versions, so a changed network or library never reuses a
stale graph. Files are written atomically: concurrent processes may export the same key safely.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from v2a.errors import ModelUnavailableError
from v2a.io.atomic import atomic_output

CACHE_ENV = "V2A_CACHE_DIR"
OPSET = 17


def cache_root() -> Path:
    """The folder of v2a's derived files: ``$V2A_CACHE_DIR``, else ``$XDG_CACHE_HOME/v2a``, else ``~/.cache/v2a``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "v2a"


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise ModelUnavailableError(
            "fast CPU inference needs ONNX Runtime: pip install onnxruntime"
        ) from None
    return onnxruntime


def module_fingerprint(module: nn.Module, *extra: object) -> str:
    """A hex digest of the module's class, state dict (names, shapes, dtypes, values) and ``extra``."""
    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    for item in extra:
        digest.update(repr(item).encode())
    return digest.hexdigest()


def export_onnx(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    *,
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Export ``module`` (in eval mode) to ONNX once and return the cached file.

    Args:
        module: the network; its ``forward`` takes the ``example`` tensors and returns tensors.
        example: inputs that fix the traced graph (their values do not matter, their dtypes do).
        name: prefix of the cached file name (e.g. ``"efficientnet_lite0"``).
        input_names: names of the graph inputs, one per example tensor.
        output_names: names of the graph outputs.
        dynamic_axes: per input/output name, the axes whose size may vary (e.g. ``{"images": {0: "B"}}``).
        cache_dir: folder of the exported graphs (None: ``cache_root() / "onnx"``).

    Returns:
        Path of ``<name>-<key>.onnx`` in the cache folder.

    Raises:
        ModelUnavailableError: the ``onnx`` package is missing (torch needs it to export).
    """
    try:
        import onnx
    except ImportError:
        raise ModelUnavailableError("exporting to ONNX needs the onnx package: pip install onnx") from None
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "onnx"
    layout = (
        [(tuple(t.shape), str(t.dtype)) for t in example],
        list(input_names),
        list(output_names),
        {k: dict(v) for k, v in (dynamic_axes or {}).items()},
    )
    key = module_fingerprint(module, layout, OPSET, torch.__version__, onnx.__version__)[:24]
    path = folder / f"{name}-{key}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer/constant-folding notes about shapes fixed by design
            torch.onnx.export(
                module,
                tuple(example),
                buffer,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()},
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, stable for plain conv nets
            )
    finally:
        for m, training in modes.items():  # each submodule back to its own mode
            m.training = training
    with atomic_output(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


class OrtModel:
    """An ONNX Runtime session with numpy in, numpy out.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        device: ``"cpu"`` or ``"cuda"`` (the CUDA provider must be installed; ``onnxruntime-gpu``).

    Raises:
        ModelUnavailableError: ONNX Runtime is missing, the file is unreadable, or the device has no provider.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, device: str = "cpu"):
        ort = _ort()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT warns about unused initialisers otherwise
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}.get(device)
        if provider is None or provider not in ort.get_available_providers():
            raise ModelUnavailableError(
                f"ONNX Runtime has no provider for device {device!r} (available: "
                f"{', '.join(ort.get_available_providers())})"
            )
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=[provider])
        except Exception as err:  # ORT raises its own exception classes from C++ (Fail, InvalidGraph, ...)
            raise ModelUnavailableError(
                f"ONNX Runtime cannot load {path} ({str(err).splitlines()[0]})"
            ) from None
        self.path = Path(path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run the graph on positional inputs (in ``input_names`` order); returns the outputs in order."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path.name} takes {len(self.input_names)} inputs, got {len(inputs)}")
        feeds = {name: np.ascontiguousarray(x) for name, x in zip(self.input_names, inputs, strict=True)}
        return self.session.run(self.output_names, feeds)


def onnx_versions() -> dict[str, str]:
    """Versions of the ONNX packages in use (for benchmark records); empty strings where missing."""
    versions = {}
    for package in ("onnx", "onnxruntime"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = ""
    return versions
