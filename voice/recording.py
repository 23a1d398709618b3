"""A call's recording: both sides mixed to one mono track, encoded as Opus in Ogg while the call
runs, so a long call never sits in memory as raw PCM (24 kbit/s: about 180 KB a minute).

The caller's audio arrives from the peer at 16 kHz and the agent's leaves through its track at
48 kHz, both in real time; each side is queued and the two are mixed sample for sample. A side
that stalls (the caller's network hiccups) is padded with silence once the other is more than
``_MAX_SKEW`` ahead, so the two stay aligned to within that.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import av
import numpy as np

from voice.audio import PIPELINE_RATE, TRACK_RATE

logger = logging.getLogger(__name__)

RATE = PIPELINE_RATE
BIT_RATE = 24000
_MAX_SKEW = RATE // 2  # samples
_BLOCK = RATE // 5  # encode 200 ms at a time


class CallRecorder:
    def __init__(self, directory: str | None = None) -> None:
        descriptor, name = tempfile.mkstemp(prefix="call-", suffix=".ogg", dir=directory)
        os.close(descriptor)
        self.path = Path(name)
        self._container = av.open(str(self.path), "w", format="ogg")
        self._stream = self._container.add_stream("libopus", rate=RATE, layout="mono")
        self._stream.bit_rate = BIT_RATE
        # Stateful, like the inbound side's: frame by frame without clicks at the seams.
        self._agent_resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._caller = np.zeros(0, dtype=np.int16)
        self._agent = np.zeros(0, dtype=np.int16)
        self._samples = 0
        self.closed = False

    @property
    def duration_seconds(self) -> float:
        return self._samples / RATE

    def add_caller(self, pcm16k: np.ndarray) -> None:
        if not self.closed:
            self._caller = np.concatenate([self._caller, pcm16k])
            self._mix()

    def add_agent(self, frame: bytes) -> None:
        """One frame the agent's track sent: mono int16 at the track's 48 kHz."""
        if self.closed:
            return
        pcm = np.frombuffer(frame, dtype=np.int16).reshape(1, -1)
        source = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        source.sample_rate = TRACK_RATE
        chunks = [f.to_ndarray().reshape(-1) for f in self._agent_resampler.resample(source)]
        if chunks:
            self._agent = np.concatenate([self._agent, *chunks])
            self._mix()

    def _mix(self, flush: bool = False) -> None:
        ready = min(self._caller.size, self._agent.size)
        ahead = max(self._caller.size, self._agent.size)
        if flush or ahead - ready > _MAX_SKEW:
            ready = ahead
        if ready < _BLOCK and not flush:
            return
        caller, self._caller = _take(self._caller, ready)
        agent, self._agent = _take(self._agent, ready)
        mixed = np.clip(caller.astype(np.int32) + agent.astype(np.int32), -32768, 32767)
        self._encode(mixed.astype(np.int16))

    def _encode(self, pcm: np.ndarray) -> None:
        if not pcm.size:
            return
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._samples
        self._samples += pcm.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def finish(self) -> Path | None:
        """Close the file; its path, or None when nothing was recorded (the file is removed)."""
        if self.closed:
            return self.path if self.path.exists() else None
        self._mix(flush=True)
        self.closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
        if self._samples == 0:
            self.discard()
            return None
        return self.path

    def discard(self) -> None:
        if not self.closed:
            self.closed = True
            self._container.close()
        self.path.unlink(missing_ok=True)


def _take(buffer: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` samples (padded with silence) and what is left."""
    head = buffer[:count]
    if head.size < count:
        head = np.concatenate([head, np.zeros(count - head.size, dtype=np.int16)])
    return head, buffer[count:]
