"""Audio in and out of a call's peer connection.

Inbound: whatever the browser sends (Opus at 48 kHz, decoded by aiortc) becomes 16 kHz mono int16,
the format every speech model here takes. Outbound: the pipeline hands PCM at any rate to
``AgentAudioTrack.play``; the track resamples it once to 48 kHz and paces it out in 20 ms frames,
sending silence when there is nothing to say.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

PIPELINE_RATE = 16000
TRACK_RATE = 48000
FRAME_MS = 20
TRACK_FRAME_SAMPLES = TRACK_RATE * FRAME_MS // 1000
_TRACK_FRAME_BYTES = TRACK_FRAME_SAMPLES * 2
_TIME_BASE = fractions.Fraction(1, TRACK_RATE)
# A frame handed to the sender this much after its slot counts as late.
LATE_FRAME_MS = 10.0


class InboundAudio:
    """Decoded inbound frames -> 16 kHz mono int16. One per call: the resampler keeps state."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PIPELINE_RATE)

    def convert(self, frame: av.AudioFrame) -> np.ndarray:
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def resample(pcm: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Resample a whole mono int16 utterance (libswresample, through PyAV)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1)
    if sample_rate == target_rate or pcm.size == 0:
        return pcm
    resampler = av.AudioResampler(format="s16", layout="mono", rate=target_rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = sample_rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]  # flush the tail
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


class FramePacer:
    """Hands out 20 ms frame slots in real time, as aiortc's own tracks do, and counts the slots
    that were already past when asked for (the event loop was busy): late audio is choppy audio."""

    def __init__(self) -> None:
        self._start: float | None = None
        self.pts = 0
        self.late_frames = 0
        self.max_lateness_ms = 0.0

    def resync(self) -> None:
        """Go on from now: after a pause in sending (a resumed call), the frames not sent are
        not owed, so they are neither counted late nor sent in a burst."""
        if self._start is not None:
            self._start = time.monotonic() - self.pts / TRACK_RATE

    async def next_slot(self) -> int:
        """Wait for the next frame's time; returns its pts (in 1/48000 s)."""
        now = time.monotonic()
        if self._start is None:
            self._start = now
            return self.pts
        self.pts += TRACK_FRAME_SAMPLES
        wait = self._start + self.pts / TRACK_RATE - now
        if wait > 0:
            await asyncio.sleep(wait)
        elif -wait * 1000 > LATE_FRAME_MS:
            self.late_frames += 1
            self.max_lateness_ms = max(self.max_lateness_ms, -wait * 1000)
        return self.pts


def track_frame(pcm: bytes, pts: int) -> av.AudioFrame:
    """One 20 ms, 48 kHz mono s16 frame for an outgoing track."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=TRACK_FRAME_SAMPLES)
    frame.planes[0].update(pcm)
    frame.pts = pts
    frame.sample_rate = TRACK_RATE
    frame.time_base = _TIME_BASE
    return frame


class AgentAudioTrack(MediaStreamTrack):
    """The agent's voice: a 48 kHz mono track fed by ``play`` and emptied by ``clear``.

    ``on_playback_start`` / ``on_playback_end`` fire when audio starts coming out of an idle track
    and when the queued audio has all been sent, which is when the agent starts and stops being
    heard (give or take the network and the browser's jitter buffer).
    """

    kind = "audio"

    def __init__(
        self,
        *,
        on_playback_start: Callable[[], None] | None = None,
        on_playback_end: Callable[[], None] | None = None,
        on_frame: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__()
        self.on_playback_start = on_playback_start
        self.on_playback_end = on_playback_end
        # Every frame sent, silence included (the call's recorder).
        self.on_frame = on_frame
        self._pending = bytearray()
        self._playing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._silence = bytes(_TRACK_FRAME_BYTES)
        self.pacer = FramePacer()
        # Figures for the call's media stats.
        self.frames_sent = 0
        self.voiced_frames_sent = 0

    # --- what the pipeline calls -------------------------------------------------------------

    def play(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Queue audio to be heard after whatever is already queued."""
        audio = resample(pcm, sample_rate, TRACK_RATE)
        if audio.size:
            self._pending += audio.tobytes()
            self._idle.clear()

    def clear(self) -> int:
        """Stop speaking now (barge-in): drop queued audio; returns how many ms were dropped."""
        dropped_ms = len(self._pending) // 2 * 1000 // TRACK_RATE
        self._pending.clear()
        return dropped_ms

    @property
    def is_playing(self) -> bool:
        return self._playing

    @property
    def played_ms(self) -> int:
        """Agent audio sent so far, in ms (silence excluded)."""
        return self.voiced_frames_sent * FRAME_MS

    @property
    def queued_ms(self) -> int:
        return len(self._pending) // 2 * 1000 // TRACK_RATE

    async def wait_idle(self) -> None:
        """Until everything queued has been sent (or cleared)."""
        await self._idle.wait()

    # --- what aiortc's sender calls, every 20 ms ----------------------------------------------

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self.pacer.next_slot()
        if self._pending:
            chunk = bytes(self._pending[:_TRACK_FRAME_BYTES])
            del self._pending[:_TRACK_FRAME_BYTES]
            if len(chunk) < _TRACK_FRAME_BYTES:
                chunk += self._silence[len(chunk) :]
            self.voiced_frames_sent += 1
            if not self._playing:
                self._playing = True
                if self.on_playback_start:
                    self.on_playback_start()
        else:
            chunk = self._silence
            if self._playing:
                self._playing = False
                if self.on_playback_end:
                    self.on_playback_end()
            self._idle.set()

        self.frames_sent += 1
        if self.on_frame:
            self.on_frame(chunk)
        return track_frame(chunk, pts)

    def stop(self) -> None:
        super().stop()
        self._pending.clear()
        self._idle.set()


class PeerAudioTrack(MediaStreamTrack):
    """What one peer connection sends: the frames of the call's agent track.

    aiortc stops the tracks a peer sends when its transport closes, and a call outlives its
    peer when the browser resumes it on a new one: the agent's track (its queue, callbacks and
    counters) must not end with the first peer."""

    kind = "audio"

    def __init__(self, source: AgentAudioTrack) -> None:
        super().__init__()
        self.source = source

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live" or self.source.readyState != "live":
            raise MediaStreamError
        return await self.source.recv()
