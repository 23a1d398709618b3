"""A scripted caller for tests and benchmarks: an aiortc peer that does what a browser does.

``FakeBrowser`` answers the server's offer, sends audio (a WAV, a tone or silence) and measures
the agent's audio it receives. ``WebSocketCaller`` adds the seed's WebSocket protocol on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import wave
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voice.audio import FRAME_MS, TRACK_FRAME_SAMPLES, TRACK_RATE, FramePacer, resample, track_frame
from voice.ice import restrict_host_addresses

# RMS (int16) above which received agent audio counts as sound.
HEARD_RMS = 200.0


def read_wav(path: str | Path) -> np.ndarray:
    """A WAV file as 48 kHz mono int16."""
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels())[:, 0].copy()
        return resample(pcm, w.getframerate(), TRACK_RATE)


def tone(seconds: float, frequency: float = 440.0, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * TRACK_RATE)) / TRACK_RATE
    return (np.sin(2 * np.pi * frequency * t) * amplitude).astype(np.int16)


class PcmSourceTrack(MediaStreamTrack):
    """Plays queued 48 kHz PCM in real time, then silence: the caller's microphone."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.int16)
        self._pacer = FramePacer()
        self.finished_at: float | None = None  # when the last queued sample went out

    def say(self, pcm48k: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, pcm48k.astype(np.int16)])
        self.finished_at = None

    @property
    def speaking(self) -> bool:
        return self._pending.size > 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next_slot()
        chunk = self._pending[:TRACK_FRAME_SAMPLES]
        self._pending = self._pending[TRACK_FRAME_SAMPLES:]
        if chunk.size and not self._pending.size:
            self.finished_at = time.monotonic()
        pcm = chunk.tobytes()
        return track_frame(pcm + bytes(TRACK_FRAME_SAMPLES * 2 - len(pcm)), pts)


def split_candidates(sdp: str) -> tuple[str, list[dict]]:
    """An SDP without its candidates, and those candidates as a browser trickles them
    (``RTCIceCandidate.toJSON()``): what Chromium sends as separate ``ice-candidate`` messages."""
    kept: list[str] = []
    candidates: list[dict] = []
    mid, index = None, -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:")
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": index})
        elif line != "a=end-of-candidates":
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


class FakeBrowser:
    """The browser's side of the peer connection.

    ``host_addresses``: the addresses it offers (default loopback only, which tests and benches
    need: aioice leaves 127.0.0.1 out). It is process-wide (voice.ice.restrict_host_addresses), so
    a media worker in the same process offers the same; None leaves the setting as it is.
    """

    def __init__(self, *, host_addresses: Sequence[str] | None = ("127.0.0.1",)) -> None:
        if host_addresses is not None:
            restrict_host_addresses(host_addresses)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = PcmSourceTrack()
        self.pc.addTrack(self.microphone)
        self.received_seconds = 0.0
        self.received_sum_squares = 0.0
        self.received_samples = 0
        self.first_heard_at: float | None = None
        self.heard_frames: list[float] = []  # when each audible 20 ms frame arrived
        self._reader: asyncio.Task | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=TRACK_RATE)

        @self.pc.on("track")
        def on_track(track) -> None:
            self._reader = asyncio.create_task(self._read(track))

    async def answer(self, offer: dict) -> dict:
        """The answer to an offer dict (``{"type": "offer", "sdp": ...}``), candidates included."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return {"type": "answer", "sdp": self.pc.localDescription.sdp}

    async def answer_trickled(self, offer: dict) -> tuple[dict, list[dict]]:
        """The answer without candidates, and the candidates to send after it, as Chromium does
        (the last one empty: end of candidates)."""
        answer = await self.answer(offer)
        sdp, candidates = split_candidates(answer["sdp"])
        end = {"candidate": "", "sdpMid": candidates[0]["sdpMid"] if candidates else "0"}
        return {"type": "answer", "sdp": sdp}, [*candidates, end]

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in self._resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.float64)
                self.received_samples += pcm.size
                self.received_sum_squares += float(np.dot(pcm, pcm))
                self.received_seconds = self.received_samples / TRACK_RATE
                if pcm.size and (np.dot(pcm, pcm) / pcm.size) ** 0.5 > HEARD_RMS:
                    now = time.monotonic()
                    self.heard_frames.append(now)
                    if self.first_heard_at is None:
                        self.first_heard_at = now

    @property
    def received_rms(self) -> float:
        return (
            (self.received_sum_squares / self.received_samples) ** 0.5
            if self.received_samples
            else 0.0
        )

    def heard_seconds(self) -> float:
        return len(self.heard_frames) * FRAME_MS / 1000

    async def close(self) -> None:
        self.microphone.stop()
        await self.pc.close()
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


class WebSocketCaller:
    """A call over the product's WebSocket, as the seed's browser code makes it."""

    def __init__(self, websocket_url: str, token: str) -> None:
        self.url = websocket_url
        self.token = token
        self.browser = FakeBrowser()
        self.events: list[tuple[float, dict]] = []
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._new_event = asyncio.Event()

    async def connect(self) -> None:
        import websockets

        self._ws = await websockets.connect(self.url, max_size=2**20)
        await self._ws.send(json.dumps({"type": "auth", "token": self.token}))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            self.events.append((time.monotonic(), message))
            self._new_event.set()
            if message["type"] == "offer" and self.browser.pc.remoteDescription is None:
                answer = await self.browser.answer(message["sdp"])
                await self._ws.send(json.dumps({"type": "answer", "sdp": answer}))

    async def wait_for(self, kind: str, timeout: float = 20.0) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            for at, message in self.events:
                if message["type"] == kind:
                    return at, message
            if self._reader is not None and self._reader.done():
                error = None if self._reader.cancelled() else self._reader.exception()
                raise ConnectionError(
                    f"socket closed before '{kind}' ({error!r}): {self.events[-3:]}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no '{kind}' within {timeout} s; got {[m['type'] for _, m in self.events]}"
                )
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), remaining)

    async def hangup(self) -> dict:
        await self._ws.send(json.dumps({"type": "hangup"}))
        _, ended = await self.wait_for("call_ended", timeout=10)
        return ended

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.browser.close()
