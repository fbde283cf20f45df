"""Quality signals: clipping, silence, loudness and peak move the right way."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.eval.quality import quality_metrics

SR = 24_000


def test_clean_tone_clipped_tone_and_silence():
    t = np.arange(2 * SR) / SR
    tone = 0.25 * np.sin(2 * np.pi * 440 * t)
    clean = quality_metrics(tone, SR)
    assert clean["clip_ratio"] == 0.0 and clean["silence_ratio"] == 0.0
    assert clean["peak_db"] == pytest.approx(20 * np.log10(0.25), abs=0.01)
    loud = quality_metrics(np.clip(8 * tone, -1, 1), SR)
    assert loud["clip_ratio"] > 0.5 and loud["loudness_lufs"] > clean["loudness_lufs"] + 6
    silent = quality_metrics(np.zeros(SR), SR)
    assert silent == {"clip_ratio": 0.0, "silence_ratio": 1.0, "loudness_lufs": -70.0, "peak_db": -120.0}
    half = quality_metrics(np.r_[tone[:SR], np.zeros(SR)], SR)
    assert half["silence_ratio"] == pytest.approx(0.5, abs=0.03)


def test_rejects_empty_or_multichannel_input():
    with pytest.raises(ValueError, match="waveform"):
        quality_metrics(np.zeros(0), SR)
    with pytest.raises(ValueError, match="waveform"):
        quality_metrics(np.zeros((2, 100)), SR)
