"""One WebRTC peer connection of a call (pipecat's ``smallwebrtc/connection.py`` is the model):
the offer, the browser's answer and candidates, and the two facts that say media flows on it:
ICE is connected and the caller's first audio frame has arrived.

A call outlives its peer: after a dropped connection the browser resumes the call on a new one,
so everything that belongs to the conversation (the agent's track, the pipeline, the meters)
lives on the call (voice/call.py), and a peer only carries audio for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from django.conf import settings

from voice.audio import AgentAudioTrack, PeerAudioTrack
from voice.ice import candidate_from_browser, rtc_configuration

logger = logging.getLogger(__name__)

# Packets aiortc's audio receiver holds before it hands the oldest on. Its default, 4, is a
# playback buffer's (80 ms against jitter); the caller's audio is only analysed here (VAD,
# Smart Turn, STT), never played, so only the frame being complete matters: 1 packet, 20 ms. The
# 60 ms saved is on every turn's end, before the end-of-turn silence even starts to count.
RECEIVE_PREFETCH_PACKETS = 1


class CallPeer:
    def __init__(
        self,
        session_id: str,
        outbound: AgentAudioTrack,
        *,
        on_frame: Callable[[av.AudioFrame], None],
        on_ready: Callable[[], Awaitable[None]],
        on_failed: Callable[[], None],
        on_audio_error: Callable[[Exception], None],
    ) -> None:
        self.session_id = session_id
        self.pc = RTCPeerConnection(rtc_configuration(settings.ICE_SERVERS))
        self.pc.addTrack(PeerAudioTrack(outbound))
        _receive_with_little_prefetch(self.pc)
        self.connected = False  # ICE and DTLS are up
        self.got_audio = False  # the caller's first frame arrived
        self.closed = False
        self._on_frame = on_frame
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._on_audio_error = on_audio_error
        self._readers: list[asyncio.Task] = []
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def ready(self) -> bool:
        return self.connected and self.got_audio

    async def offer(self) -> str:
        """The SDP offer, with every candidate gathered into it (aiortc does not trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        if self.pc.remoteDescription is not None:
            logger.info("call %s: ignoring a second answer", self.session_id)
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_candidate(self, data: dict) -> None:
        try:
            candidate = candidate_from_browser(data)
        except ValueError as exc:
            logger.info("call %s: %s", self.session_id, exc)
            return
        if candidate is not None:
            await self.pc.addIceCandidate(candidate)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pc.close()

    # --- aiortc's events ---------------------------------------------------------------------------

    def _on_track(self, track) -> None:
        if track.kind == "audio" and not self.closed:
            self._readers.append(asyncio.create_task(self._read(track)))

    async def _on_state(self) -> None:
        if self.closed:
            return
        if self.pc.connectionState == "connected":
            self.connected = True
            if self.ready:
                await self._on_ready()
        elif self.pc.connectionState == "failed":
            self._on_failed()

    async def _read(self, track) -> None:
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self._on_frame(frame)
                if not self.got_audio:
                    self.got_audio = True
                    if self.ready:
                        await self._on_ready()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_audio_error(exc)


def _receive_with_little_prefetch(pc: RTCPeerConnection) -> None:
    """aiortc has no setting for its receivers' jitter buffer: the audio receiver's is replaced
    (a private attribute; tests/voice/test_peer.py fails if an aiortc upgrade renames it)."""
    from aiortc.jitterbuffer import JitterBuffer

    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        current = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
        if transceiver.kind == "audio" and current is not None:
            receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(
                capacity=current.capacity, prefetch=RECEIVE_PREFETCH_PACKETS
            )
