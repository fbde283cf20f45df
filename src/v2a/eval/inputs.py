"""What ``v2a eval`` scores: the generated files of each manifest clip, their sidecars, and the audio.

Generated files live in one folder and are matched to clips by the video's file stem: ``DIR/<stem>.wav``
or ``DIR/<stem><sep>...wav`` with ``<sep>`` one of ``. _ -`` (e.g. ``walk.wav``, ``walk_seed1.wav``,
``walk-neg.flac``); a file that fits several stems goes to the longest. Each file may have a JSON
sidecar with the same name and ``.json`` instead of the audio suffix::

    {"prompt": "rain on a tin roof", "negative_prompt": "music", "seed": 3,
     "cost": {"stages": [{"name": "sample", "seconds": 2.1, "audio_s": 8.0, "peak_rss_mb": 900.0, ...}]}}

All keys are optional; without a sidecar the clip's ``prompt`` / ``negative_prompt`` manifest keys (if any)
apply. Every waveform is mono at the AudioSpec rate and cut or padded to the clip's duration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import ClipRow
from v2a.errors import InputError
from v2a.io.audio import load_audio, load_video_audio

AUDIO_SUFFIXES = (".wav", ".flac")
# files that are only audio: a reference given as such a file is read as it is, never on a video timeline
AUDIO_FILE_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff"}
)
_SEPARATORS = "._-"


@dataclass(frozen=True)
class Generation:
    """One track to score for a clip.

    Attributes:
        path: the audio file; None means the clip's own reference audio (ground truth).
        prompt: positive prompt it was made with ("" for none).
        negative_prompt: negative prompt ("" for none).
        seed: seed, when known.
        cost: the generator's ``CostMeter.to_dict()`` record, when known.
    """

    path: Path | None
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    cost: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """File name, or ``"reference"``."""
        return self.path.name if self.path is not None else "reference"


def find_generations(audio_dir: str | os.PathLike, rows: Iterable[ClipRow]) -> dict[str, list[Generation]]:
    """Match the audio files of ``audio_dir`` to clips (see the module docstring).

    Args:
        audio_dir: folder of generated files.
        rows: the manifest rows.

    Returns:
        Clip id -> its generations, sorted by file name (clips without files are absent).

    Raises:
        InputError: the folder is missing or a sidecar is not valid JSON.
    """
    folder = Path(audio_dir)
    if not folder.is_dir():
        problem = "does not exist" if not folder.exists() else "is not a folder"
        raise InputError(f"audio folder {folder} {problem}")
    rows = list(rows)
    by_stem: dict[str, list[ClipRow]] = {}
    for row in rows:
        by_stem.setdefault(Path(row.video).stem, []).append(row)
    stems = sorted(by_stem, key=len, reverse=True)
    found: dict[str, list[Generation]] = {}
    for file in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        base = file.name[: -len(file.suffix)]
        stem = next(
            (s for s in stems if base == s or (base.startswith(s) and base[len(s)] in _SEPARATORS)), None
        )
        if stem is None:
            continue
        for row in by_stem[stem]:
            found.setdefault(row.id, []).append(read_sidecar(file, row))
    return found


def read_sidecar(file: Path, row: ClipRow) -> Generation:
    """The generation of ``file`` with the settings from its JSON sidecar (or the row's prompt keys)."""
    sidecar = file.with_suffix(".json")
    data: dict[str, Any] = {}
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"sidecar {sidecar} is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise InputError(f"sidecar {sidecar} must hold a JSON object")
    prompt = data.get("prompt", row.extra.get("prompt", ""))
    negative = data.get("negative_prompt", row.extra.get("negative_prompt", ""))
    seed = data.get("seed")
    cost = data.get("cost")
    if not isinstance(prompt, str) or not isinstance(negative, str):
        raise InputError(f"{sidecar}: prompt and negative_prompt must be strings")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError(f"{sidecar}: seed must be an integer, got {seed!r}")
    if cost is not None and not (isinstance(cost, dict) and isinstance(cost.get("stages", []), list)):
        raise InputError(f"{sidecar}: cost must be an object with a list of stages")
    return Generation(file, prompt or "", negative or "", seed, cost)


def fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad a (S,) waveform to ``n`` samples."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.size >= n:
        return wav[:n]
    return np.concatenate([wav, np.zeros(n - wav.size, np.float32)])


def load_reference(row: ClipRow, sr: int = DEFAULT_SPEC.sample_rate) -> np.ndarray | None:
    """The clip's reference audio, mono at ``sr``, ``duration_s`` long (None when the row has no audio).

    A reference that is the video file itself is read as its soundtrack on the video timeline; an audio
    file (also one standing in for the video of an audio-only clip) is read from its first sample.
    """
    if row.audio is None:
        return None
    return load_track(row.audio, row.video, row.duration_s, sr)


def load_track(audio: str, video: str, duration_s: float, sr: int = DEFAULT_SPEC.sample_rate) -> np.ndarray:
    """``audio`` as a mono ``duration_s`` track at ``sr`` (see ``load_reference`` for the timeline)."""
    n = round(duration_s * sr)
    if Path(audio) == Path(video) and Path(audio).suffix.lower() not in AUDIO_FILE_SUFFIXES:
        return fit_length(load_video_audio(video, sr=sr, duration_s=duration_s), n)
    wav, _ = load_audio(audio, sr=sr)
    return fit_length(wav, n)


def load_generation(gen: Generation, row: ClipRow, sr: int = DEFAULT_SPEC.sample_rate) -> np.ndarray:
    """A generated track, mono at ``sr``, cut or padded to the clip's duration."""
    assert gen.path is not None, "the reference has no file of its own"
    wav, _ = load_audio(gen.path, sr=sr)
    return fit_length(wav, round(row.duration_s * sr))
