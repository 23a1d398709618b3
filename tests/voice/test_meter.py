from __future__ import annotations

import numpy as np

from voice.meter import InboundMeter


def frames(pcm: np.ndarray):
    for i in range(0, pcm.size, 320):
        yield pcm[i : i + 320]


def test_the_meter_finds_speech_segments_and_bridges_short_gaps():
    rate = 16000
    t = np.arange(rate) / rate
    loud = (np.sin(2 * np.pi * 300 * t) * 4000).astype(np.int16)
    quiet = np.zeros(rate // 5, dtype=np.int16)  # 200 ms: a gap between words
    silence = np.zeros(rate, dtype=np.int16)
    meter = InboundMeter()
    for frame in frames(np.concatenate([silence, loud, quiet, loud, silence, loud[: rate // 2]])):
        meter.add(frame)
    stats = meter.stats()
    assert stats["inbound_seconds"] == 4.7
    assert stats["speech_segments"] == [
        {"start_ms": 1000, "end_ms": 3200},
        {"start_ms": 4200, "end_ms": 4700},
    ]


def test_noise_floor_is_not_speech():
    meter = InboundMeter()
    noise = (np.random.default_rng(1).normal(0, 100, 16000)).astype(np.int16)
    assert not any(meter.add(frame) for frame in frames(noise))
    assert meter.stats()["speech_segments"] == []
