"""The call's peer hands the caller's audio on after one packet, not aiortc's four: it is analysed
here, never played, and the 60 ms saved is on every turn's end (voice/peer.py)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from voice.audio import AgentAudioTrack
from voice.peer import RECEIVE_PREFETCH_PACKETS, CallPeer


def frames_out(jitter_buffer, packets: int) -> list[int | None]:
    """For each 20 ms Opus packet added in order, the timestamp of the frame it let out."""
    out = []
    for index in range(packets):
        packet = RtpPacket(payload_type=111, sequence_number=index, timestamp=index * 960)
        packet._data = b"x"
        _, frame = jitter_buffer.add(packet)
        out.append(frame.timestamp if frame else None)
    return out


async def test_the_callers_audio_is_handed_on_one_packet_later():
    peer = CallPeer(
        "session_x",
        AgentAudioTrack(),
        on_frame=lambda frame: None,
        on_ready=lambda: None,
        on_failed=lambda: None,
        on_audio_error=lambda exc: None,
    )
    try:
        [transceiver] = peer.pc.getTransceivers()
        # A private attribute of aiortc's: if an upgrade renames it, this says so.
        jitter_buffer = transceiver.receiver._RTCRtpReceiver__jitter_buffer
        assert RECEIVE_PREFETCH_PACKETS == 1 and jitter_buffer._prefetch == 1
        # The first frame comes out with the second packet (aiortc's default: with the fifth).
        assert frames_out(jitter_buffer, 4) == [None, 0, 960, 1920]
    finally:
        await peer.close()
