from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from voice.audio import TRACK_FRAME_SAMPLES, TRACK_RATE, AgentAudioTrack, InboundAudio, resample
from voice.testing import tone


def test_inbound_48k_stereo_becomes_16k_mono_of_the_same_length():
    inbound = InboundAudio()
    total = 0
    for _ in range(50):  # 1 s in 20 ms frames, as Opus decodes
        samples = np.zeros((1, 960 * 2), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48000
        pcm = inbound.convert(frame)
        assert pcm.dtype == np.int16 and pcm.ndim == 1
        total += pcm.size
    assert abs(total - 16000) <= 64  # the resampler holds back a few samples


def test_resample_keeps_duration_and_loudness():
    pcm = tone(1.0)  # 48 kHz
    out = resample(pcm, 48000, 22050)
    assert abs(out.size - 22050) <= 32
    assert np.abs(out).max() == pytest.approx(np.abs(pcm).max(), rel=0.05)


async def collect(track: AgentAudioTrack, frames: int) -> list[av.AudioFrame]:
    return [await track.recv() for _ in range(frames)]


async def test_the_agent_track_sends_timed_20_ms_frames_of_silence_when_idle():
    track = AgentAudioTrack()
    frames = await collect(track, 5)
    assert [f.pts for f in frames] == [i * TRACK_FRAME_SAMPLES for i in range(5)]
    assert all(f.sample_rate == TRACK_RATE and f.samples == TRACK_FRAME_SAMPLES for f in frames)
    assert all(not f.to_ndarray().any() for f in frames)
    assert track.played_ms == 0
    track.stop()


async def test_the_agent_track_plays_queued_audio_then_reports_it_finished():
    events = []
    track = AgentAudioTrack(
        on_playback_start=lambda: events.append("start"),
        on_playback_end=lambda: events.append("end"),
    )
    track.play(tone(0.1, amplitude=5000)[::3], 16000)  # 100 ms at 16 kHz
    assert track.queued_ms == 100
    frames = await collect(track, 7)
    voiced = [f for f in frames if np.abs(f.to_ndarray()).max() > 1000]
    assert len(voiced) == 5
    assert events == ["start", "end"]
    assert track.played_ms == 100
    await asyncio.wait_for(track.wait_idle(), 1)
    track.stop()


async def test_clearing_the_agent_track_stops_audio_at_the_next_frame():
    track = AgentAudioTrack()
    track.play(tone(2.0), TRACK_RATE)
    await collect(track, 3)
    dropped = track.clear()
    assert 1900 <= dropped <= 1940
    frame = await track.recv()
    assert not frame.to_ndarray().any()
    assert track.played_ms == 60
    track.stop()
