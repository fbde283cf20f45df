"""Cost records: stage timing, real-time factor and peak memory."""

from __future__ import annotations

import time

import numpy as np
import pytest

from v2a.eval.cost import CostMeter, summarize_costs


def test_stages_record_time_rtf_and_a_memory_peak():
    meter = CostMeter()
    with meter.stage("idle", audio_s=4.0):
        time.sleep(0.05)
    with meter.stage("alloc"):
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block.sum()
        del block
    idle, alloc = meter.stages
    assert idle.seconds >= 0.05 and idle.rtf == pytest.approx(idle.seconds / 4.0)
    assert alloc.rtf is None
    assert alloc.peak_rss_mb >= idle.peak_rss_mb + 40  # the sampler saw the array before it was freed
    record = meter.to_dict()
    assert [s["name"] for s in record["stages"]] == ["idle", "alloc"]


def test_summaries_pool_runs():
    runs = [
        {"stages": [{"name": "sample", "seconds": 2.0, "audio_s": 8.0, "peak_rss_mb": 500.0},
                    {"name": "vocode", "seconds": 1.0, "audio_s": 8.0, "peak_rss_mb": 700.0}]},
        {"stages": [{"name": "sample", "seconds": 4.0, "audio_s": 8.0, "peak_rss_mb": 600.0, "peak_cuda_mb": 900.0},
                    {"name": "vocode", "seconds": 1.0, "audio_s": 8.0, "peak_rss_mb": 650.0}]},
    ]  # fmt: skip
    out = summarize_costs(runs)
    assert out["rtf"] == pytest.approx(8.0 / 16.0)
    assert out["rtf_sample"] == pytest.approx(6.0 / 16.0) and out["rtf_vocode"] == pytest.approx(2.0 / 16.0)
    assert out["seconds_sample"] == pytest.approx(3.0) and out["peak_mb"] == 900.0
    assert summarize_costs([]) == {}
