"""Trivial baselines that give model numbers context.

``RandomOnsetBaseline``: detect motion onsets in the video (the motion onset strength of
``v2a.eval.sync`` peak-picked), draw one random recording from the SFX corpus train split (sound
effects only, never the test split) and play it at every onset, louder for stronger onsets. It knows when
something happens but not what: a model should beat it on class accuracy and similarity, and match or
beat it on timing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.sfx_corpus import read_manifest
from v2a.errors import InputError
from v2a.eval.sync import MotionTrack, video_motion
from v2a.io.audio import load_audio
from v2a.io.video import probe

MAX_SOUND_S = 1.0
_FADE_S = 0.02


def motion_onsets(motion: MotionTrack, *, min_gap_s: float = 0.1, rel_threshold: float = 0.2) -> np.ndarray:
    """Times where visible motion stops or turns: peaks of the motion onset strength.

    A peak is a local maximum above both ``rel_threshold`` x the clip's largest strength and the mean plus
    1.5 standard deviations; peaks closer than ``min_gap_s`` keep the stronger one. The drop at frame k
    belongs to an event between frames k and k + 1, so times sit half a frame after the frame.

    Returns:
        (N,) ascending times in seconds.
    """
    s = motion.strength
    if s.size < 3 or s.max() <= 0:
        return np.zeros(0)
    threshold = max(rel_threshold * s.max(), s.mean() + 1.5 * s.std())
    peaks = [k for k in range(1, s.size - 1) if s[k] >= threshold and s[k] >= s[k - 1] and s[k] > s[k + 1]]
    kept: list[int] = []
    for k in sorted(peaks, key=lambda k: -s[k]):
        if all(abs(motion.times_s[k] - motion.times_s[j]) >= min_gap_s for j in kept):
            kept.append(k)
    kept.sort()
    return motion.times_s[kept] + 0.5 / motion.fps


class RandomOnsetBaseline:
    """Random corpus sound at motion onsets.

    Args:
        corpus_dir: the SFX corpus folder (``manifest.jsonl``).
        sample_rate: output rate in Hz.

    Raises:
        InputError: the corpus has no training sound effects.
    """

    def __init__(self, corpus_dir: str | os.PathLike, *, sample_rate: int = DEFAULT_SPEC.sample_rate):
        self.corpus_dir = Path(corpus_dir)
        rows = read_manifest(self.corpus_dir / "manifest.jsonl")
        self.rows = [r for r in rows if r.get("split") == "train" and r.get("kind") == "sfx"]
        if not self.rows:
            raise InputError(f"corpus {self.corpus_dir} has no train-split sound effects for the baseline")
        self.sample_rate = sample_rate

    def generate(self, video: str | os.PathLike, *, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
        """Make the baseline track for a video.

        Args:
            video: the video file.
            seed: picks the corpus sound.

        Returns:
            ``(wav, placed)``: the (S,) float32 track spanning the video at ``sample_rate``, and the placed
            sounds as ``{"start_s", "label", "path"}`` dicts.
        """
        sr = self.sample_rate
        duration = probe(video).duration_s
        motion = video_motion(video)
        onsets = motion_onsets(motion)
        out = np.zeros(round(duration * sr), np.float32)
        if onsets.size == 0:
            return out, []
        rng = np.random.default_rng(seed)
        row = self.rows[int(rng.integers(len(self.rows)))]
        sound, _ = load_audio(self.corpus_dir / row["path"], sr=sr, duration_s=MAX_SOUND_S)
        sound = _faded(sound, sr)
        peak = float(np.max(np.abs(sound))) or 1.0
        sound = sound / peak * 0.5
        strength = np.interp(onsets - 0.5 / motion.fps, motion.times_s, motion.strength)
        gains = np.sqrt(strength / strength.max())
        placed = []
        for t, gain in zip(onsets, gains, strict=True):
            start = round(t * sr)
            if start >= out.size:
                continue
            piece = sound[: out.size - start]
            out[start : start + piece.size] += gain * piece
            placed.append({"start_s": float(t), "label": row["label"], "path": row["path"]})
        return np.clip(out, -1.0, 1.0), placed


def _faded(wav: np.ndarray, sr: int) -> np.ndarray:
    wav = np.array(wav, dtype=np.float32)
    n = min(wav.size, round(_FADE_S * sr))
    if n:
        wav[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return wav
