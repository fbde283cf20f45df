"""Training shards: a manifest packed into WebDataset tar files that stream to one or many workers.

A shard folder holds:

- ``shards.json``: the index (format, audio rate, per split the shard files with their clip counts, bytes
  and seconds, and the features added so far).
- ``<split>-000000.tar``, ...: main shards, about ``shard_size_mb`` each. Per clip, in WebDataset layout:
  ``<id>.json`` (the manifest row, its ``video``/``audio`` naming the members below), ``<id>.flac`` (the
  target sound, mono FLAC at the index's rate) and ``<id>.<ext>`` (the video file's bytes as encoded, e.g.
  ``mp4``; the consumer decodes them, so shards stay small).
- ``<split>-000000.<feature>.tar``, ...: sidecar shards written by ``add_features``, one per main shard, with
  ``<id>.<feature>.npy`` for the same clips in the same order. Features can be added, recomputed or deleted
  without rewriting the main shards.

``ShardDataset`` reads a split: shards are dealt out to DDP ranks and DataLoader workers, samples are mixed in
a shuffle buffer, and the sound is decoded to float32 only when a sample leaves the buffer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm
from webdataset.tariterators import tarfile_samples
from webdataset.writer import TarWriter

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import ClipRow, read_manifest
from v2a.errors import InputError, OutputError
from v2a.io.atomic import atomic_output
from v2a.io.audio import load_audio

INDEX_NAME = "shards.json"
FORMAT = "v2a-shards/1"
Sample = dict[str, Any]
FeatureFn = Callable[[list[Sample]], Sequence[np.ndarray]]

_TAR_OVERHEAD = 1024  # bytes per member: a 512-byte header and padding to 512 on average
_FEATURE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_RESERVED = {"json", "flac", "npy", "tar"}


@dataclass(frozen=True)
class ShardInfo:
    """One main shard file.

    Attributes:
        file: its name in the shard folder.
        count: clips in it.
        bytes: its size.
        seconds: total duration of its clips.
    """

    file: str
    count: int
    bytes: int
    seconds: float


def write_shards(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    shard_size_mb: float = 256.0,
    sample_rate: int = DEFAULT_SPEC.sample_rate,
    seed: int | None = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Pack a manifest's clips into shards, one set per split, and write the index.

    Args:
        manifest: the JSON Lines manifest (``v2a.data.manifest``).
        out_dir: the shard folder (created if needed).
        shard_size_mb: a shard is closed before it would pass this size (a single larger clip gets its own).
        sample_rate: rate of the stored sound; FLAC files at this rate in mono are copied byte for byte,
            anything else is decoded, resampled and encoded as 16-bit FLAC.
        seed: order of the clips within a split is shuffled with this seed, so each shard mixes many sources
            (None: manifest order).
        overwrite: replace shards made before in ``out_dir``.
        progress: show a progress bar on stderr.

    Returns:
        The index, as written to ``out_dir/shards.json``.

    Raises:
        InputError: the manifest is invalid or empty, or a clip's file is missing or unreadable.
        OutputError: ``out_dir`` is a file, or holds shards and ``overwrite`` is False.
    """
    if not shard_size_mb > 0:
        raise InputError(f"shard size must be > 0 MB, got {shard_size_mb}")
    rows = read_manifest(manifest)
    if not rows:
        raise InputError(f"manifest {manifest} has no rows")
    for row in rows:
        for path in (row.video, row.audio):
            if path is not None and not Path(path).is_file():
                raise InputError(f"manifest {manifest}: clip {row.id!r} needs {path}, which does not exist")
    out = _prepare_dir(Path(out_dir), overwrite)
    by_split: dict[str, list[ClipRow]] = {}
    for row in rows:
        by_split.setdefault(row.split, []).append(row)
    index: dict[str, Any] = {"format": FORMAT, "sample_rate": sample_rate, "splits": {}, "features": {}}
    max_bytes = int(shard_size_mb * 2**20)
    with tqdm(total=len(rows), unit="clip", desc="shard", disable=not progress) as bar:
        for split in sorted(by_split):
            split_rows = by_split[split]
            if seed is not None:
                random.Random(f"{seed}:{split}").shuffle(split_rows)
            with _ShardSink(out, split, max_bytes) as sink:
                for row in split_rows:
                    sink.add(_pack(row, sample_rate), row.duration_s)
                    bar.update()
                index["splits"][split] = [vars(info) for info in sink.close()]
    _write_index(out, index)
    return index


def _prepare_dir(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a folder")
    if (out / INDEX_NAME).exists():
        if not overwrite:
            raise OutputError(f"{out} already holds shards; pass --overwrite to replace them")
        old = load_index(out)
        for split in old["splits"]:  # only files the old index names are removed
            for shard in shard_files(old, split):
                for name in [shard, *(sidecar_name(shard, f) for f in old["features"])]:
                    (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _pack(row: ClipRow, sample_rate: int) -> Sample:
    """The tar members of one clip: json, flac, and the video bytes under their extension."""
    key = row.id
    ext = Path(row.video).suffix.lower().lstrip(".")
    if not ext or ext in _RESERVED or not ext.isalnum():
        raise InputError(f"clip {key!r}: video {row.video} needs a plain extension such as .mp4")
    sample: Sample = {"__key__": key, ext: Path(row.video).read_bytes()}
    meta = row.to_dict()
    meta["video"] = f"{key}.{ext}"
    meta["audio"] = None
    if row.audio is not None:
        sample["flac"] = _flac_bytes(row.audio, sample_rate)
        meta["audio"] = f"{key}.flac"
    sample["json"] = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    return sample


def _flac_bytes(path: str, sample_rate: int) -> bytes:
    """The file itself when it is mono FLAC at ``sample_rate``, else a 16-bit mono FLAC encoding of it."""
    try:
        info = sf.info(path)
        if info.format == "FLAC" and info.samplerate == sample_rate and info.channels == 1:
            return Path(path).read_bytes()
    except (sf.LibsndfileError, RuntimeError):
        pass  # not a libsndfile format (e.g. audio inside a video file): decode with FFmpeg below
    wav, _ = load_audio(path, sr=sample_rate, mono=True)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


class _ShardSink:
    """Streams samples into ``<split>-NNNNNN.tar`` files of at most ``max_bytes`` each.

    Each shard is written to a temporary name and renamed when complete; on an error the shard being
    written is deleted (use as a context manager).
    """

    def __init__(self, out: Path, split: str, max_bytes: int):
        self.out, self.split, self.max_bytes = out, split, max_bytes
        self.done: list[ShardInfo] = []
        self._open: contextlib.ExitStack | None = None
        self._writer: TarWriter | None = None
        self._count, self._bytes, self._seconds = 0, 0, 0.0

    def __enter__(self) -> _ShardSink:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open is not None:
            self._open.__exit__(*exc)  # an error reaches atomic_output, which deletes the partial shard
            self._open = None

    def add(self, sample: Sample, seconds: float) -> None:
        size = sum(len(v) + _TAR_OVERHEAD for k, v in sample.items() if not k.startswith("_"))
        if self._count and self._bytes + size > self.max_bytes:
            self._finish()
        if self._writer is None:
            self._open = contextlib.ExitStack()
            tmp = self._open.enter_context(atomic_output(self.out / self._name()))
            self._writer = self._open.enter_context(_tar_writer(self._open.enter_context(tmp.open("wb"))))
        self._writer.write(sample)
        self._count, self._bytes, self._seconds = self._count + 1, self._bytes + size, self._seconds + seconds

    def close(self) -> list[ShardInfo]:
        """Finish the last shard; returns all shards written."""
        if self._count:
            self._finish()
        return self.done

    def _name(self) -> str:
        return f"{self.split}-{len(self.done):06d}.tar"

    def _finish(self) -> None:
        assert self._open is not None
        name = self._name()
        self._open.close()
        self._open, self._writer = None, None
        size = (self.out / name).stat().st_size
        self.done.append(ShardInfo(name, self._count, size, round(self._seconds, 3)))
        self._count, self._bytes, self._seconds = 0, 0, 0.0


def _tar_writer(f: io.BufferedWriter) -> TarWriter:
    # encoder=False: members are stored as the bytes given; mtime=0 makes equal input give equal shards
    return TarWriter(f, encoder=False, mtime=0, user="v2a", group="v2a", mode=0o444)


def load_index(shard_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``shards.json``.

    Raises:
        InputError: the folder or its index is missing, or the index is not a v2a shard index.
    """
    path = Path(shard_dir) / INDEX_NAME
    if not path.is_file():
        raise InputError(f"{shard_dir} holds no {INDEX_NAME}; make shards with `v2a data shard`")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise InputError(f"{path} is not a {FORMAT} index")
    return index


def _write_index(out: Path, index: dict[str, Any]) -> None:
    with atomic_output(out / INDEX_NAME) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


def shard_files(index: dict[str, Any], split: str) -> list[str]:
    """Names of the main shards of ``split``.

    Raises:
        InputError: the index has no such split.
    """
    if split not in index["splits"]:
        raise InputError(
            f"the shards have no split {split!r}; they have {', '.join(sorted(index['splits']))}"
        )
    return [shard["file"] for shard in index["splits"][split]]


def sidecar_name(shard: str, feature: str) -> str:
    """File name of the sidecar shard of ``feature`` for the main shard ``shard``."""
    return f"{shard.removesuffix('.tar')}.{feature}.tar"


def add_features(
    shard_dir: str | os.PathLike,
    name: str,
    fn: FeatureFn,
    *,
    batch_size: int = 16,
    overwrite: bool = False,
    progress: bool = True,
) -> None:
    """Compute a feature for every clip of every split and store it in sidecar shards.

    Args:
        shard_dir: a shard folder made by ``write_shards``.
        name: feature name (``[a-z][a-z0-9_]*``, e.g. ``"semantic"``); stored as ``<id>.<name>.npy``.
        fn: takes a list of decoded samples (as ``ShardDataset`` yields them, in shard order) and returns one
            array per sample; it decides the batching of its model. Arrays are stored with ``np.save``.
        batch_size: samples per call of ``fn``.
        overwrite: recompute a feature that exists.
        progress: show a progress bar on stderr.

    Raises:
        InputError: a bad name, a missing index, or ``fn`` returned the wrong number of arrays.
        OutputError: the feature exists and ``overwrite`` is False.
    """
    folder = Path(shard_dir)
    index = load_index(folder)
    if not _FEATURE_NAME.fullmatch(name) or name in _RESERVED:
        raise InputError(
            f"feature name {name!r} must match [a-z][a-z0-9_]* (at most 32) and not be {_RESERVED}"
        )
    if name in index["features"] and not overwrite:
        raise OutputError(f"{folder} already has the feature {name!r}; pass overwrite=True to recompute it")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    total = sum(shard["count"] for shards in index["splits"].values() for shard in shards)
    first: np.ndarray | None = None
    with tqdm(total=total, unit="clip", desc=f"feature {name}", disable=not progress) as bar:
        for split in sorted(index["splits"]):
            for shard in shard_files(index, split):
                target = folder / sidecar_name(shard, name)
                with atomic_output(target) as tmp, tmp.open("wb") as f, _tar_writer(f) as writer:
                    for batch in _batches(_read_shard(folder / shard, index["sample_rate"], ()), batch_size):
                        batch = [_decoded(sample) for sample in batch]
                        arrays = [np.asarray(a) for a in fn(batch)]
                        if len(arrays) != len(batch):
                            raise InputError(
                                f"feature {name!r}: fn returned {len(arrays)} arrays for {len(batch)} clips"
                            )
                        for sample, array in zip(batch, arrays, strict=True):
                            writer.write({"__key__": sample["key"], f"{name}.npy": _npy_bytes(array)})
                        first = arrays[0] if first is None else first
                        bar.update(len(batch))
    index["features"][name] = {
        "dtype": str(first.dtype) if first is not None else None,
        "shape": list(first.shape) if first is not None else None,  # of the first clip; may vary with length
    }
    _write_index(folder, index)


def _batches(samples: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _npy_bytes(array: np.ndarray) -> bytes:
    if array.dtype == object:
        raise InputError("feature arrays must have a numeric dtype, not object")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class ShardDataset(IterableDataset):
    """Stream one split of a shard folder, split over DDP ranks and DataLoader workers.

    Each of the ``world_size * num_workers`` readers takes every n-th shard of the (epoch-shuffled) shard
    list, so one pass yields every clip exactly once overall. With fewer shards than readers, every reader
    reads all shards and keeps every n-th clip instead. Readers get different numbers of clips; a DDP
    training loop should use ``repeat=True`` and stop after a number of steps.

    A sample is a dict: ``key`` (clip id), ``meta`` (the manifest row), ``audio`` ((S,) float32, or the FLAC
    bytes when ``decode_audio`` is False, or None), ``sample_rate``, ``video`` (the encoded file's bytes),
    ``video_ext`` (e.g. ``"mp4"``) and ``features`` (name -> array).

    Args:
        shard_dir: a shard folder made by ``write_shards``.
        split: which split to read.
        features: sidecar features to attach (see ``add_features``).
        shuffle_buffer: clips held for mixing (0 or 1: shard order and clip order are kept).
        seed: seed of the shard order and the buffer; with ``set_epoch`` every epoch mixes differently, and
            all ranks agree on the shard order.
        rank: DDP rank (None: from torch.distributed when initialised, else ``$RANK``, else 0).
        world_size: DDP world size (None: likewise, else ``$WORLD_SIZE``, else 1).
        repeat: start over with the next epoch after each pass, forever.
        decode_audio: decode the FLAC to float32.

    Raises:
        InputError: the folder has no index, no such split, or no such feature.
    """

    def __init__(
        self,
        shard_dir: str | os.PathLike,
        split: str = "train",
        *,
        features: Sequence[str] = (),
        shuffle_buffer: int = 1000,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        repeat: bool = False,
        decode_audio: bool = True,
    ):
        super().__init__()
        self.folder = Path(shard_dir)
        index = load_index(self.folder)
        self.shards = shard_files(index, split)
        self.num_samples = sum(shard["count"] for shard in index["splits"][split])
        missing = [name for name in features if name not in index["features"]]
        if missing:
            known = ", ".join(sorted(index["features"])) or "none"
            raise InputError(f"{self.folder} has no feature {missing[0]!r} (it has: {known})")
        self.features = tuple(features)
        self.sample_rate = int(index["sample_rate"])
        self.shuffle_buffer, self.seed, self.repeat, self.decode_audio = (
            shuffle_buffer,
            seed,
            repeat,
            decode_audio,
        )
        self.rank, self.world_size = _ddp_position(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shard order and mixing the next iteration uses."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Sample]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        slot, slots = self.rank * num_workers + worker_id, self.world_size * num_workers
        epoch = self.epoch
        while True:
            samples = self._raw_samples(epoch, slot, slots)
            if self.shuffle_buffer > 1:
                samples = _shuffled(
                    samples, self.shuffle_buffer, random.Random(f"{self.seed}:{epoch}:{slot}")
                )
            for sample in samples:
                yield _decoded(sample, audio=self.decode_audio)
            if not self.repeat:
                return
            epoch += 1

    def _raw_samples(self, epoch: int, slot: int, slots: int) -> Iterator[Sample]:
        shards = list(self.shards)
        if self.shuffle_buffer > 1:
            random.Random(f"{self.seed}:{epoch}").shuffle(shards)  # the same order on every rank and worker
        if len(shards) >= slots:
            for shard in shards[slot::slots]:
                yield from _read_shard(self.folder / shard, self.sample_rate, self.features)
            return
        count = 0
        for shard in shards:
            for sample in _read_shard(self.folder / shard, self.sample_rate, self.features):
                if count % slots == slot:
                    yield sample
                count += 1


def _ddp_position(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        default_rank, default_world = dist.get_rank(), dist.get_world_size()
    else:
        default_rank, default_world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise InputError(f"rank must be in 0..world_size-1, got rank={rank} world_size={world_size}")
    return rank, world_size


def _read_shard(path: Path, sample_rate: int, features: Sequence[str]) -> Iterator[Sample]:
    """The clips of one main shard with their sidecar features, still encoded (FLAC and npy bytes)."""
    main = _tar_samples(path)
    sides = [_tar_samples(path.parent / sidecar_name(path.name, name)) for name in features]
    for raw in main:
        key = raw["__key__"]
        meta = json.loads(raw["json"])
        ext = meta["video"].split(".", 1)[1]
        sample: Sample = {
            "key": key,
            "meta": meta,
            "audio": raw.get("flac"),
            "sample_rate": sample_rate,
            "video": raw[ext],
            "video_ext": ext,
            "features": {},
        }
        for name, side in zip(features, sides, strict=True):
            extra = next(side, None)
            if extra is None or extra["__key__"] != key:
                found = "its end" if extra is None else repr(extra["__key__"])
                raise InputError(
                    f"{sidecar_name(path.name, name)} does not match {path.name}: {key!r} vs {found}"
                )
            sample["features"][name] = extra[f"{name}.npy"]
        yield sample


def _decoded(sample: Sample, *, audio: bool = True) -> Sample:
    """The sample with its features (and, if ``audio``, its sound) decoded from bytes."""
    key = sample["key"]
    if audio and isinstance(sample["audio"], bytes):
        sample["audio"] = decode_flac(sample["audio"], key)
    sample["features"] = {name: _load_npy(data, key) for name, data in sample["features"].items()}
    return sample


def _tar_samples(path: Path) -> Iterator[Sample]:
    """The samples of one tar file, grouped by key by webdataset; a damaged file raises InputError."""
    if not path.is_file():
        raise InputError(f"shard {path} is missing")
    try:
        yield from tarfile_samples([{"url": str(path)}])
    except (tarfile.TarError, OSError, ValueError, EOFError) as err:
        raise InputError(f"shard {path} is damaged ({err})") from None


def decode_flac(data: bytes, key: str = "?") -> np.ndarray:
    """(S,) float32 mono waveform from FLAC bytes (channels are averaged)."""
    try:
        wav, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # (S, C)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise InputError(f"clip {key!r}: damaged FLAC in a shard ({err})") from None
    return np.ascontiguousarray(wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0])


def _load_npy(data: bytes, key: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as err:
        raise InputError(f"clip {key!r}: damaged feature array in a shard ({err})") from None


def _shuffled(samples: Iterator[Sample], size: int, rng: random.Random) -> Iterator[Sample]:
    """Mix a stream through a buffer of ``size`` items: each arrival swaps out a random held item."""
    buffer: list[Sample] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        i = rng.randrange(size)
        buffer[i], sample = sample, buffer[i]
        yield sample
    rng.shuffle(buffer)
    yield from buffer
