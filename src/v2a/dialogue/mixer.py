"""Speech over a Foley track: the Foley is ducked while someone speaks, and the sum never clips.

The ducking gain follows a gate on the speech envelope (RMS over 10 ms hops, 34 dB below the speech
peak): it reaches ``duck_db`` ``attack_s`` before each speech onset (so a word never starts over a loud
bed), holds through pauses shorter than ``release_s`` (no pumping between words), and ramps linearly
over ``attack_s`` both ways. The sum is scaled as a whole when its peak would pass ``peak`` (-1 dBFS), so
neither speech nor Foley is ever clipped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["duck_gain", "mix_dialogue"]

PEAK = 0.89  # -1 dBFS, the pipeline's ceiling
_HOP_S = 0.01
_GATE_DB = -34.0  # below the loudest 10 ms of speech: silence


def duck_gain(
    speech: np.ndarray,
    sample_rate: int,
    *,
    duck_db: float = -12.0,
    attack_s: float = 0.05,
    release_s: float = 0.3,
) -> np.ndarray:
    """Per-sample gain for the Foley under ``speech``.

    Args:
        speech: (S,) speech track.
        sample_rate: its rate in Hz.
        duck_db: gain while speech is on (<= 0).
        attack_s: the gain is down this long before speech starts, and ramps over this time.
        release_s: it stays down this long after speech stops.

    Returns:
        (S,) float32 gain in [10^(duck_db/20), 1].
    """
    speech = np.asarray(speech, np.float32)
    if speech.ndim != 1:
        raise ValueError(f"speech must be (S,), got {speech.shape}")
    if duck_db > 0:
        raise ValueError(f"duck_db must be <= 0, got {duck_db}")
    S = speech.size
    hop = max(1, round(_HOP_S * sample_rate))
    T = -(-S // hop)
    padded = np.pad(speech, (0, T * hop - S)).reshape(T, hop)  # (T, hop)
    env = np.sqrt((padded.astype(np.float64) ** 2).mean(axis=1))  # (T,)
    if not env.size or env.max() <= 0:
        return np.ones(S, np.float32)
    on = env > env.max() * 10 ** (_GATE_DB / 20)
    a, r = max(1, round(attack_s / _HOP_S)), max(0, round(release_s / _HOP_S))
    # frame t is ducked when speech is on anywhere in [t - r, t + a]: full convolution, shifted by a
    held = np.convolve(on.astype(np.float64), np.ones(a + r + 1), mode="full")[a : a + T] > 0
    low = 10 ** (duck_db / 20)
    target = np.where(held, low, 1.0)
    ramp = np.convolve(np.pad(target, (a, a), mode="edge"), np.ones(a) / a, mode="same")[a:-a]  # linear ramps
    centres = (np.arange(T) + 0.5) * hop
    return np.interp(np.arange(S), centres, ramp).astype(np.float32)


def mix_dialogue(
    foley: np.ndarray,
    speech: np.ndarray,
    sample_rate: int,
    *,
    duck_db: float = -12.0,
    attack_s: float = 0.05,
    release_s: float = 0.3,
    peak: float = PEAK,
) -> np.ndarray:
    """Speech over one Foley track or a batch of variants, with the Foley ducked under it.

    Args:
        foley: (S,) or (N, S) float32 Foley track(s).
        speech: (S',) speech on the same timeline; cut or zero-padded to S.
        sample_rate: rate of both in Hz.
        duck_db: Foley gain while speech is on.
        attack_s: how early the ducking starts before speech, and its ramp time.
        release_s: how long it holds after speech stops.
        peak: the mix is scaled down as a whole when its peak would pass this.

    Returns:
        float32 array of ``foley``'s shape.
    """
    foley = np.asarray(foley, np.float32)
    if foley.ndim not in (1, 2):
        raise ValueError(f"foley must be (S,) or (N, S), got {foley.shape}")
    S = foley.shape[-1]
    speech = np.asarray(speech, np.float32).reshape(-1)
    speech = speech[:S] if speech.size >= S else np.pad(speech, (0, S - speech.size))
    gain = duck_gain(speech, sample_rate, duck_db=duck_db, attack_s=attack_s, release_s=release_s)
    mix = foley * gain + speech  # (S,) or (N, S), speech broadcast over variants
    top = np.abs(mix).max(axis=-1, keepdims=True) if mix.size else np.zeros((*mix.shape[:-1], 1))
    scale = np.where(top > peak, peak / np.maximum(top, 1e-12), 1.0)
    return (mix * scale).astype(np.float32)
