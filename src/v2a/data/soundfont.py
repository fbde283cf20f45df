"""A small SoundFont 2 reader and sample player: renders short phrases of each General MIDI instrument.

Only what a corpus of labelled instrument clips needs: presets -> instrument zones -> samples (key
ranges, root key, tuning, loops, attenuation), played back with pitch shifting by resampling, a linear
attack and an exponential release. No modulators, filters or LFOs.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2a.errors import InputError
from v2a.io.audio import resample

# General MIDI program families (program // 8) -> label subtype under "music/".
GM_FAMILIES = (
    "piano",
    "mallet",  # chromatic percussion: celesta, glockenspiel, music box, vibraphone, marimba, bells
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth",  # synth lead
    "synth",  # synth pad
    "synth",  # synth effects
    "ethnic",
    "percussion",  # tuned/struck percussion: timpani-like, steel drums, taiko, woodblock
    None,  # GM "sound effects" (fret noise, seashore, helicopter...): not music, left out
)
DRUM_BANK = 128

# SF2 generator operators used here (SoundFont 2.04 spec, section 8.1.2).
_GEN_COARSE_TUNE, _GEN_FINE_TUNE = 51, 52
_GEN_INSTRUMENT, _GEN_KEY_RANGE, _GEN_VEL_RANGE = 41, 43, 44
_GEN_ATTENUATION, _GEN_SAMPLE_ID, _GEN_SAMPLE_MODES, _GEN_ROOT_KEY = 48, 53, 54, 58


@dataclass(frozen=True)
class Zone:
    """One sample mapping: which keys play which sample, how it is tuned and looped."""

    key_lo: int
    key_hi: int
    sample: int
    root_key: int
    tune_cents: float
    loop: bool
    gain: float


@dataclass(frozen=True)
class SampleHeader:
    """Where a sample lives in the sample data and how it was recorded."""

    name: str
    start: int
    end: int
    loop_start: int
    loop_end: int
    rate: int
    pitch: int
    correction: int


@dataclass(frozen=True)
class Preset:
    """A playable program: (bank, program) and its zones across all its instruments."""

    name: str
    bank: int
    program: int
    zones: tuple[Zone, ...]

    @property
    def family(self) -> str | None:
        """The label subtype under ``music/`` (None for GM sound effects)."""
        return "drums" if self.bank == DRUM_BANK else GM_FAMILIES[self.program // 8]


class SoundFont:
    """A parsed .sf2 file: its presets and 16-bit sample data.

    Args:
        path: the .sf2 file.

    Raises:
        InputError: the file is not a SoundFont 2 or a chunk is missing or truncated.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        blob = self.path.read_bytes() if self.path.is_file() else b""
        if blob[:4] != b"RIFF" or blob[8:12] != b"sfbk":
            raise InputError(f"{self.path} is not a SoundFont 2 file")
        chunks = _riff_chunks(blob, 12, len(blob), self.path)
        if "smpl" not in chunks or "phdr" not in chunks:
            raise InputError(f"corrupt SoundFont {self.path}: no sample data or no preset headers")
        start, size = chunks["smpl"]
        self.samples = np.frombuffer(blob, dtype="<i2", count=size // 2, offset=start)
        self.headers = _sample_headers(blob, chunks)
        self.presets = _presets(blob, chunks, len(self.headers))

    def preset(self, bank: int, program: int) -> Preset:
        """The preset at (bank, program); raises KeyError if the font has none."""
        for preset in self.presets:
            if (preset.bank, preset.program) == (bank, program):
                return preset
        raise KeyError(f"{self.path.name} has no preset bank={bank} program={program}")

    def render_note(
        self, preset: Preset, key: int, *, length_s: float, sr: int, velocity: float = 0.8
    ) -> np.ndarray:
        """One note held ``length_s`` s, plus its release, as float32 at ``sr`` Hz (empty: key unmapped)."""
        zone = next((z for z in preset.zones if z.key_lo <= key <= z.key_hi), None)
        if zone is None:
            return np.zeros(0, dtype=np.float32)
        head = self.headers[zone.sample]
        data = self.samples[head.start : head.end].astype(np.float32) / 32768.0
        if data.size < 16:
            return np.zeros(0, dtype=np.float32)
        semitones = key - zone.root_key + zone.tune_cents / 100.0
        ratio = 2.0 ** (semitones / 12.0)
        release_s = 0.35
        need = int((length_s + release_s) * head.rate * ratio) + 64  # source samples to cover the note
        lo, hi = head.loop_start - head.start, head.loop_end - head.start
        if zone.loop and 0 <= lo < hi <= data.size and hi - lo >= 32 and data.size < need:
            reps = int(np.ceil((need - hi) / (hi - lo)))
            data = np.concatenate([data[:hi], np.tile(data[lo:hi], reps)])
        wav = resample(data[:need], max(1, round(head.rate * ratio)), sr)
        n_on, n_all = round(length_s * sr), wav.size
        env = np.ones(n_all, dtype=np.float32)
        attack = min(n_all, round(0.004 * sr))
        env[:attack] = np.linspace(0.0, 1.0, attack, dtype=np.float32)
        if n_all > n_on:
            env[n_on:] *= np.exp(-np.arange(n_all - n_on, dtype=np.float32) / (0.08 * sr))
        return (wav * env * zone.gain * velocity).astype(np.float32)

    def render_phrase(self, preset: Preset, *, seed: int, sr: int, duration_s: float = 5.0) -> np.ndarray:
        """A short seeded melody (or a drum groove on the drum bank) of about ``duration_s`` seconds.

        Args:
            preset: what to play.
            seed: picks register, scale, rhythm and notes; the same seed gives the same phrase.
            sr: output rate in Hz.
            duration_s: length of the phrase before the last note's release.

        Returns:
            float32 mono waveform peak-normalised to -3 dBFS (empty if the preset plays nothing).
        """
        rng = np.random.default_rng(seed)
        out = np.zeros(round((duration_s + 1.0) * sr), dtype=np.float32)
        beat = float(rng.choice([0.25, 0.3, 0.375]))
        t = 0.0
        if preset.bank == DRUM_BANK:
            kick, snare, hat = 36, 38, 42
            pattern = [(kick, hat), (hat,), (snare, hat), (hat,)] * 16
            events = [(i * beat / 2, key, beat / 2) for i, step in enumerate(pattern) for key in step]
        else:
            keys = [k for z in preset.zones for k in range(z.key_lo, z.key_hi + 1)]
            if not keys:
                return np.zeros(0, dtype=np.float32)
            centre = int(np.clip(np.median(keys) + rng.integers(-5, 6), 40, 84))
            scale = (
                np.array([0, 2, 4, 5, 7, 9, 11, 12])
                if rng.random() < 0.6
                else np.array([0, 2, 3, 5, 7, 8, 10, 12])
            )
            events = []
            degree = int(rng.integers(0, 5))
            while t < duration_s:
                length = beat * float(rng.choice([1, 1, 2, 3]))
                degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
                events.append((t, centre - 6 + int(scale[degree]), length))
                t += length
        for start, key, length in events:
            if start >= duration_s:
                break
            note = self.render_note(
                preset, key, length_s=length, sr=sr, velocity=float(rng.uniform(0.6, 1.0))
            )
            begin = round(start * sr)
            end = min(out.size, begin + note.size)
            out[begin:end] += note[: end - begin]
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        if peak <= 1e-6:
            return np.zeros(0, dtype=np.float32)
        return (out * (10 ** (-3 / 20) / peak)).astype(np.float32)


@functools.lru_cache(maxsize=2)
def open_soundfont(path: str) -> SoundFont:
    """A SoundFont parsed once per process (worker processes render many presets from one font)."""
    return SoundFont(path)


def phrase_seed(font: str, bank: int, program: int, variant: int) -> int:
    """A stable seed for one rendered clip, independent of Python's hash randomisation."""
    digest = hashlib.sha1(f"{Path(font).name}:{bank}:{program}:{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _riff_chunks(blob: bytes, start: int, end: int, path: Path) -> dict[str, tuple[int, int]]:
    """Flatten the RIFF tree: chunk id -> (data offset, size), descending into LIST chunks."""
    chunks: dict[str, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        cid, size = struct.unpack_from("<4sI", blob, pos)
        body = pos + 8
        if body + size > len(blob):
            raise InputError(f"corrupt SoundFont {path}: chunk {cid!r} runs past the end of the file")
        if cid == b"LIST":
            chunks.update(_riff_chunks(blob, body + 4, body + size, path))
        else:
            chunks[cid.decode("latin-1")] = (body, size)
        pos = body + size + (size & 1)
    return chunks


def _records(blob: bytes, chunks: dict[str, tuple[int, int]], cid: str, fmt: str) -> list[tuple]:
    start, size = chunks.get(cid, (0, 0))
    step = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, blob, start + i * step) for i in range(size // step)]


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _sample_headers(blob: bytes, chunks: dict[str, tuple[int, int]]) -> list[SampleHeader]:
    rows = _records(blob, chunks, "shdr", "<20sIIIIIBbHH")[:-1]  # the last record is the EOS terminator
    return [SampleHeader(_name(r[0]), r[1], r[2], r[3], r[4], r[5] or 44100, r[6], r[7]) for r in rows]


def _gens_per_bag(
    blob: bytes, chunks: dict[str, tuple[int, int]], bag_id: str, gen_id: str
) -> list[dict[int, int]]:
    """For each zone ("bag"), its generators as {operator: raw 16-bit amount}."""
    bags = _records(blob, chunks, bag_id, "<HH")
    gens = _records(blob, chunks, gen_id, "<HH")
    zones = []
    for (g0, _), (g1, _) in itertools.pairwise(bags):
        zones.append({op: amount for op, amount in gens[g0:g1]})
    return zones


def _signed(value: int) -> int:
    return value - 0x10000 if value >= 0x8000 else value


def _key_range(gens: dict[int, int], op: int = _GEN_KEY_RANGE) -> tuple[int, int]:
    """A (lo, hi) range generator; the default range is the full 0..127."""
    raw = gens.get(op, 0x7F00)
    return raw & 0xFF, raw >> 8


def _instrument_zones(
    blob: bytes, chunks: dict[str, tuple[int, int]], n_samples: int
) -> list[list[tuple[dict[int, int], tuple[int, int]]]]:
    """For each instrument, its sample zones as (generators merged with the global zone, key range)."""
    insts = _records(blob, chunks, "inst", "<20sH")
    bag_gens = _gens_per_bag(blob, chunks, "ibag", "igen")
    result = []
    for (_, b0), (_, b1) in itertools.pairwise(insts):
        zones = bag_gens[b0:b1]
        glob = zones[0] if zones and _GEN_SAMPLE_ID not in zones[0] else {}
        merged = []
        for gens in zones:
            if gens.get(_GEN_SAMPLE_ID, n_samples) >= n_samples:
                continue
            full = {**glob, **gens}
            vel_lo, vel_hi = _key_range(full, _GEN_VEL_RANGE)
            if not vel_lo <= 100 <= vel_hi:
                continue  # keep one velocity layer: the one a mezzo-forte note plays
            merged.append((full, _key_range(full)))
        result.append(merged)
    return result


def _presets(blob: bytes, chunks: dict[str, tuple[int, int]], n_samples: int) -> list[Preset]:
    headers = _records(blob, chunks, "phdr", "<20sHHHIII")
    bag_gens = _gens_per_bag(blob, chunks, "pbag", "pgen")
    instruments = _instrument_zones(blob, chunks, n_samples)
    shdr = _sample_headers(blob, chunks)
    presets = []
    for head, nxt in itertools.pairwise(headers):
        zones: list[Zone] = []
        for pgens in bag_gens[head[3] : nxt[3]]:
            inst = pgens.get(_GEN_INSTRUMENT)
            if inst is None or inst >= len(instruments):
                continue
            p_lo, p_hi = _key_range(pgens)
            for gens, (lo, hi) in instruments[inst]:
                lo, hi = max(lo, p_lo), min(hi, p_hi)
                if lo > hi:
                    continue
                sample = shdr[gens[_GEN_SAMPLE_ID]]
                root = _signed(gens.get(_GEN_ROOT_KEY, 0xFFFF))
                tune = 100 * (
                    _signed(gens.get(_GEN_COARSE_TUNE, 0)) + _signed(pgens.get(_GEN_COARSE_TUNE, 0))
                )
                tune += (
                    _signed(gens.get(_GEN_FINE_TUNE, 0))
                    + _signed(pgens.get(_GEN_FINE_TUNE, 0))
                    + sample.correction
                )
                atten_cb = _signed(gens.get(_GEN_ATTENUATION, 0)) + _signed(pgens.get(_GEN_ATTENUATION, 0))
                zones.append(
                    Zone(
                        key_lo=lo,
                        key_hi=hi,
                        sample=gens[_GEN_SAMPLE_ID],
                        root_key=root if 0 <= root <= 127 else sample.pitch,
                        tune_cents=float(tune),
                        loop=gens.get(_GEN_SAMPLE_MODES, 0) & 1 == 1,
                        gain=10 ** (-max(0, atten_cb) / 200.0),
                    )
                )
        presets.append(Preset(_name(head[0]), head[2], head[1], tuple(zones)))
    return presets
