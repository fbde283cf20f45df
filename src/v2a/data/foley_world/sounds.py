"""Where a scene's sounds come from: real corpus recordings of the clip's split, else procedural synthesis.

``SoundBank`` reads the SFX corpus manifest (``{path, label, split, image, ...}`` rows, 24 kHz mono FLAC)
and only ever hands out rows of one split, so test clips never hear a training recording and vice versa.
A sound that a scene needs but the corpus lacks is synthesised by the caller's procedural generator. Every
sound says where it came from (``origin``, ``file``) and which augmentations changed it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from v2a.errors import InputError
from v2a.io.audio import resample

MANIFEST = "manifest.jsonl"
_NOT_FOR_SCENES = {"music", "ui"}  # corpus kinds that no visible thing in a scene makes


@dataclass(frozen=True)
class Sound:
    """A mono waveform ready to place on a timeline.

    Attributes:
        wave: (S,) float32; for event sounds the onset is at sample 0.
        origin: corpus, procedural or tts.
        file: corpus path (relative to the corpus folder) when it is a recording.
        augmented: augmentations applied, e.g. ``("pitch:1.12", "lowpass:3000")``.
        license: licence of the recording.
        voice: the synthetic voice of TTS speech (e.g. ``espeak-ng:en-gb+f3``).
    """

    wave: np.ndarray
    origin: str
    file: str | None = None
    augmented: tuple[str, ...] = ()
    license: str | None = None
    voice: str | None = None


class SoundBank:
    """Corpus recordings of one split, by label.

    Args:
        corpus_dir: folder with ``manifest.jsonl`` (None: no corpus, everything procedural).
        split: train or test: only rows of this split are used.
        sample_rate: rate of the returned waveforms.

    Raises:
        InputError: the corpus folder has no readable manifest.
    """

    def __init__(self, corpus_dir: str | Path | None, split: str, sample_rate: int = 24_000):
        self.dir = Path(corpus_dir) if corpus_dir is not None else None
        self.split = split
        self.sample_rate = sample_rate
        self.by_label: dict[str, list[dict]] = {}
        self._speech: list[dict] = []
        if self.dir is None:
            return
        for row in read_manifest(self.dir):
            if row.get("split") != split or row.get("kind") in _NOT_FOR_SCENES:
                continue
            self.by_label.setdefault(row["label"], []).append(row)
        self._speech = [r for r in self.by_label.get("speech/voice", []) if r.get("transcript")]

    def has(self, label: str) -> bool:
        """Whether the corpus has a recording of ``label`` in this split."""
        return bool(self.by_label.get(label))

    def labels(self, prefix: str = "") -> list[str]:
        """Labels with recordings, optionally only those starting with ``prefix``."""
        return sorted(label for label in self.by_label if label.startswith(prefix))

    def stamp_rows(self) -> list[dict]:
        """Rows that come with a picture of their source (tuxpaint stamps), speech excluded."""
        return [
            r for rows in self.by_label.values() for r in rows if r.get("image") and r.get("kind") != "speech"
        ]

    def speech_rows(self) -> list[dict]:
        """Recorded speech with a transcript (spoken descriptions, prompts), for talking characters."""
        return self._speech

    def row_sound(
        self, row: dict, rng: np.random.Generator, *, augment: float = 0.0, max_s: float | None = None
    ) -> Sound:
        """The recording of one corpus row, trimmed to its onset, maybe augmented."""
        wave = trim_onset(self._load(row["path"]), self.sample_rate)
        if max_s is not None and wave.size > max_s * self.sample_rate:
            wave = fade_out(wave[: int(max_s * self.sample_rate)], self.sample_rate)
        steps: list[str] = []
        if rng.random() < augment:
            wave, steps = self._augment(wave, row, rng)
        return Sound(wave, "corpus", row["path"], tuple(steps), row.get("license"))

    def get(
        self,
        label: str,
        rng: np.random.Generator,
        *,
        procedural: Callable[[], np.ndarray] | None = None,
        prefer_procedural: float = 0.0,
        augment: float = 0.3,
        max_s: float | None = None,
    ) -> Sound | None:
        """A sound for ``label``: a corpus recording, or the procedural one (also chosen at random with
        probability ``prefer_procedural`` to widen the palette). None when neither exists."""
        rows = self.by_label.get(label, [])
        use_corpus = bool(rows) and (procedural is None or rng.random() >= prefer_procedural)
        if use_corpus:
            return self.row_sound(rows[int(rng.integers(len(rows)))], rng, augment=augment, max_s=max_s)
        if procedural is None:
            return None
        return Sound(np.asarray(procedural(), dtype=np.float32), "procedural")

    def _load(self, rel: str) -> np.ndarray:
        assert self.dir is not None
        return _load_mono(str(self.dir / rel), self.sample_rate)

    def _augment(self, wave: np.ndarray, row: dict, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """Pitch/speed change, band filtering and layering with a second take of the same label."""
        sr = self.sample_rate
        steps = []
        if rng.random() < 0.6:
            ratio = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
            wave = resample(wave, round(sr * ratio), sr)  # played faster/slower: pitch and speed together
            steps.append(f"pitch:{ratio:.2f}")
        if rng.random() < 0.4:
            kind = "lowpass" if rng.random() < 0.6 else "highpass"
            freq = float(rng.uniform(1500, 6000) if kind == "lowpass" else rng.uniform(150, 800))
            wave = sosfilt(butter(2, freq, btype=kind, fs=sr, output="sos"), wave).astype(np.float32)
            steps.append(f"{kind}:{freq:.0f}")
        others = [r for r in self.by_label.get(row["label"], []) if r["path"] != row["path"]]
        if others and rng.random() < 0.3:
            other = trim_onset(self._load(others[int(rng.integers(len(others)))]["path"]), sr)[: wave.size]
            wave = wave.copy()
            wave[: other.size] += 0.6 * other * (np.abs(wave).max() / (np.abs(other).max() + 1e-9))
            steps.append("layer")
        return wave.astype(np.float32), steps


def read_manifest(corpus_dir: Path) -> list[dict]:
    """Rows of ``corpus_dir/manifest.jsonl``."""
    path = corpus_dir / MANIFEST
    if not path.is_file():
        raise InputError(f"corpus folder {corpus_dir} has no {MANIFEST}")
    rows = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path} line {n} is not valid JSON") from None
            if not isinstance(row, dict) or "path" not in row or "label" not in row:
                raise InputError(f"{path} line {n} lacks the path or label field")
            rows.append(row)
    return rows


@functools.lru_cache(maxsize=256)
def _load_mono(path: str, sample_rate: int) -> np.ndarray:
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise InputError(f"cannot read corpus sound {path}: {err}") from None
    wave = data.mean(axis=1)
    if rate != sample_rate:
        wave = resample(wave, rate, sample_rate)
    wave.setflags(write=False)
    return wave


def trim_onset(wave: np.ndarray, sample_rate: int, *, rel_db: float = -30.0) -> np.ndarray:
    """Drop leading silence: start 1 ms before the first sample within ``rel_db`` of the peak."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak == 0:
        return wave
    first = int(np.argmax(np.abs(wave) > peak * 10 ** (rel_db / 20)))
    return wave[max(0, first - sample_rate // 1000) :]


def fade_out(wave: np.ndarray, sample_rate: int, fade_s: float = 0.02) -> np.ndarray:
    """A copy with a linear fade over its last ``fade_s`` seconds."""
    wave = np.array(wave, dtype=np.float32)
    n = min(wave.size, int(fade_s * sample_rate))
    if n:
        wave[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
    return wave


def loop_to(
    wave: np.ndarray, n: int, sample_rate: int, rng: np.random.Generator, fade_s: float = 0.05
) -> np.ndarray:
    """``wave`` repeated with crossfades (from a random start) until it is ``n`` samples long."""
    if wave.size == 0:
        return np.zeros(n, np.float32)
    fade = min(int(fade_s * sample_rate), wave.size // 4)
    start = int(rng.integers(0, max(1, wave.size // 2)))
    out = np.zeros(n + wave.size, np.float32)
    pos, piece = 0, wave[start:]
    ramp = np.linspace(0, 1, fade, dtype=np.float32) if fade else np.zeros(0, np.float32)
    while pos < n:
        seg = piece.astype(np.float32).copy()
        if fade and seg.size > 2 * fade:
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
        out[pos : pos + seg.size] += seg
        pos += max(1, seg.size - fade)
        piece = wave
    return out[:n]
