"""One call held by a media worker, owning its own lifecycle.

A call moves through one state field:

    NEGOTIATING --media flows--> LIVE --connection lost--> DETACHED --resume--> NEGOTIATING ...
         any state --end()--> ENDING --recorded, peer closed, recording stored--> ENDED

Media "flows" once its peer (voice/peer.py) is connected and the caller's first audio arrived.
After a resume the call negotiates a new peer and goes on where it was: the conversation, the
agent's track and the meters belong to the call, not to a peer. The worker (voice/worker.py)
only dispatches messages to its calls, counts their places, sends their heartbeats and stops
them; ``tick`` runs a call's own timers.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
from django.conf import settings
from django.utils import timezone

from sessions.recordings import call_recording_save
from sessions.services import call_session_end, call_turn_record
from thinnest_site.db import call_db
from thinnest_site.metrics import LATE_AUDIO_FRAMES, RESPONSE_LATENCY
from voice import protocol
from voice.audio import AgentAudioTrack, InboundAudio
from voice.meter import InboundMeter
from voice.peer import CallPeer
from voice.pipeline.base import CallPipeline
from voice.pipeline.knowledge import KnowledgeSource, knowledge_load
from voice.pipeline.registry import pipeline_create
from voice.protocol import CallSpec
from voice.recording import CallRecorder

if TYPE_CHECKING:
    from voice.worker import MediaWorker

logger = logging.getLogger(__name__)


class CallState(enum.StrEnum):
    NEGOTIATING = "negotiating"  # a peer is offered; its media does not flow yet
    LIVE = "live"  # media flows on the current peer
    DETACHED = "detached"  # the browser's connection is gone; waiting for a resume
    ENDING = "ending"  # being closed and recorded
    ENDED = "ended"


class Call:
    def __init__(self, worker: MediaWorker, spec: CallSpec, reply_to: str) -> None:
        self.worker = worker
        self.spec = spec
        self.session_id = spec.session_id
        self.reply_to = reply_to
        self.state = CallState.NEGOTIATING
        # When the browser answered the offer: a caller is connecting (admission counts it).
        self.answered_at = 0.0
        self.messages: asyncio.Queue[dict] = asyncio.Queue()
        self.opened_at = time.monotonic()
        # When media first flowed (kept across resumes: the call's clock and its place).
        self.media_started_at: float | None = None
        self.last_activity = time.monotonic()
        # When the connection dropped, for the grace period and the recorded end.
        self.detached_at: float | None = None
        self.detached_wall = None
        self.end_reason = ""
        self.end_message = ""
        self.end_wall = None
        self.meter = InboundMeter()
        self.inbound = InboundAudio()
        self.recorder = CallRecorder() if spec.recording_enabled else None
        self.track = AgentAudioTrack(
            on_playback_start=self._on_playback_start,
            on_playback_end=self._on_playback_end,
            on_frame=self.recorder.add_agent if self.recorder else None,
        )
        # The pipeline first: one that cannot be built (a missing model) leaves no peer behind.
        self.pipeline: CallPipeline = pipeline_create(spec, self.track, self)
        self.peer = self._peer_create()
        self._runner: asyncio.Task | None = None
        # Turns on their way to the buffer: the call's last store waits for them.
        self.turn_writes: set[asyncio.Task] = set()

    @property
    def has_media(self) -> bool:
        """Whether the call holds one of the worker's places (media has flowed)."""
        return self.media_started_at is not None

    @property
    def is_over(self) -> bool:
        return self.state in (CallState.ENDING, CallState.ENDED)

    def run(self) -> None:
        """Offer a peer, then handle this call's messages in order."""
        self._runner = asyncio.create_task(self._run(), name=f"call-{self.session_id}")

    # --- CallEvents, for the pipeline --------------------------------------------------------

    def emit(self, event: dict) -> None:
        if self.detached_at is None:  # a detached call's events have nowhere to go
            self.worker.send_soon(self.reply_to, protocol.media_event(self.session_id, event=event))

    def record_turn(self, turn: dict) -> None:
        if turn.get("latency_ms") is not None:
            RESPONSE_LATENCY.observe(turn["latency_ms"] / 1000)
            self.worker.admission.observe_latency(turn["latency_ms"])
        # A Redis RPUSH: quick, but not on the event loop.
        task = self.worker.spawn(call_db(call_turn_record)(session_id=self.session_id, turn=turn))
        self.turn_writes.add(task)
        task.add_done_callback(self.turn_writes.discard)

    def end_call(self, reason: str, message: str = "") -> None:
        self.worker.spawn(self.end(reason, message=message))

    async def knowledge(self, count_tokens: Callable[[str], int]) -> KnowledgeSource | None:
        return await call_db(knowledge_load)(
            agent_public_id=self.spec.agent_id, count_tokens=count_tokens
        )

    def call_ms(self) -> int:
        if self.media_started_at is None:
            return 0
        return int((time.monotonic() - self.media_started_at) * 1000)

    # --- messages from the consumer ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._offer()
            while True:
                await self._handle(await self.messages.get())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("call %s failed", self.session_id)
            self.end_call(protocol.REASON_MEDIA_FAILED, f"Media error: {exc}")

    async def _offer(self) -> None:
        sdp = await self.peer.offer()
        await self.worker.send(self.reply_to, protocol.signal_offer(self.session_id, sdp=sdp))

    async def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == protocol.SIGNAL_ANSWER:
            self.answered_at = self.answered_at or time.monotonic()
            await self.peer.accept_answer(message["sdp"]["sdp"])
        elif kind == protocol.SIGNAL_CANDIDATE:
            await self.peer.add_candidate(message["candidate"])
        elif kind == protocol.CALL_CLOSE:
            # The consumer ends the call (a hang-up, a timeout): it is recorded here once its
            # last turn is in, and the consumer hears MEDIA_ENDED.
            self.end_call(message.get("reason", ""), message.get("message", ""))
        elif kind == protocol.CALL_DETACH:
            self.detach()
        elif kind == protocol.CALL_RESUME:
            await self._resume(message["reply_to"])

    # --- the peer's events ---------------------------------------------------------------------

    def _peer_create(self) -> CallPeer:
        return CallPeer(
            self.session_id,
            self.track,
            on_frame=self._on_frame,
            on_ready=self._on_media_flowing,
            on_failed=self._on_peer_failed,
            on_audio_error=self._on_audio_error,
        )

    def _on_frame(self, frame: av.AudioFrame) -> None:
        pcm = self.inbound.convert(frame)
        if self.meter.add(pcm):
            self.last_activity = time.monotonic()
        if self.state is CallState.LIVE:
            self.pipeline.push_audio(pcm)
            if self.recorder:
                # Encoding is ~3 ms per 200 ms of audio: cheap enough for the loop.
                self.recorder.add_caller(pcm)

    async def _on_media_flowing(self) -> None:
        if self.state is not CallState.NEGOTIATING:
            return
        if not self.has_media and not self.worker.has_room_for_media(self):
            # The places filled up while this call was negotiating.
            self.end_call(
                protocol.REASON_AT_CAPACITY,
                "All media workers are busy. Please try again in a moment.",
            )
            return
        self.state = CallState.LIVE
        self.last_activity = time.monotonic()
        first_start = not self.has_media
        if first_start:
            # Before MEDIA_STARTED goes out: whoever hears of it must find the call counted.
            self.media_started_at = self.last_activity
        await self.worker.send(self.reply_to, protocol.media_started(self.session_id))
        if not first_start:
            return  # resumed: the conversation goes on where it was
        try:
            await self.pipeline.start()
        except Exception as exc:
            logger.exception("call %s: the pipeline did not start", self.session_id)
            self.end_call(protocol.REASON_ERROR, f"Pipeline error: {exc}")

    def _on_peer_failed(self) -> None:
        if self.has_media:
            # The network went away mid-call: wait for the browser to resume it.
            self.detach()
        else:
            self.end_call(protocol.REASON_MEDIA_FAILED, "The audio connection failed.")

    def _on_audio_error(self, exc: Exception) -> None:
        # A pipeline bug ends its own call, audibly, instead of leaving it deaf.
        logger.error("call %s: inbound audio failed", self.session_id, exc_info=exc)
        self.end_call(protocol.REASON_ERROR, f"Media error: {exc}")

    def _on_playback_start(self) -> None:
        self.last_activity = time.monotonic()
        self.pipeline.on_playback_start()

    def _on_playback_end(self) -> None:
        self.last_activity = time.monotonic()
        self.pipeline.on_playback_end()

    # --- dropped connections ---------------------------------------------------------------------

    def detach(self) -> None:
        """The browser is gone for now: the agent falls silent and the grace period starts."""
        if self.state is CallState.DETACHED or self.is_over:
            return
        self.state = CallState.DETACHED
        self.detached_at = time.monotonic()
        self.detached_wall = timezone.now()
        self.track.clear()
        self.pipeline.interrupt()
        logger.info("call %s: connection lost; waiting for a resume", self.session_id)

    async def _resume(self, reply_to: str) -> None:
        """A new socket took the call over: a fresh peer connection, the same conversation."""
        if self.is_over:
            return
        if reply_to != self.reply_to:
            # The old socket may still be open (the browser gave up on it first).
            await self.worker.send(self.reply_to, protocol.call_taken_over(self.session_id))
        self.detach()
        self.reply_to = reply_to
        await self.worker.send(
            reply_to, protocol.worker_attached(self.session_id, worker=self.worker.channel)
        )
        old_peer, self.peer = self.peer, self._peer_create()
        await old_peer.close()
        self.track.pacer.resync()
        self.detached_at = self.detached_wall = None
        self.state = CallState.NEGOTIATING
        await self._offer()
        logger.info("call %s: resumed on a new connection", self.session_id)

    # --- timers, run by the worker's supervisor ----------------------------------------------------

    async def tick(self, now: float) -> None:
        if self.is_over:
            return
        if self.state is CallState.DETACHED:
            if now - self.detached_at > settings.CALL_RESUME_GRACE_SECONDS:
                self.end_call(protocol.REASON_CONNECTION_LOST)
            return
        await self.worker.send(self.reply_to, protocol.worker_heartbeat(self.session_id))
        if not self.has_media:
            if now - self.opened_at > settings.CALL_CONNECT_TIMEOUT_SECONDS:
                self.end_call(
                    protocol.REASON_MEDIA_FAILED,
                    "The audio connection was not established in time.",
                )
        elif now - self.media_started_at > self.spec.max_duration_seconds:
            self.end_call(protocol.REASON_MAX_DURATION)
        elif (
            not self.track.is_playing
            and now - self.last_activity > self.spec.silence_timeout_seconds
        ):
            self.end_call(protocol.REASON_SILENCE_TIMEOUT)

    # --- ending ----------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            **self.meter.stats(),
            "outbound_seconds": round(self.track.played_ms / 1000, 3),
            "outbound_frames": self.track.frames_sent,
            "late_outbound_frames": self.track.pacer.late_frames,
            "max_outbound_lateness_ms": round(self.track.pacer.max_lateness_ms, 1),
            **self.pipeline.stats(),
        }

    async def end_with_notice(self, line: str, reason: str, *, timeout: float) -> None:
        """End the call after telling its caller why in the agent's voice: ``line``, waited for
        at most ``timeout`` seconds. A call whose media never flowed has nobody to tell."""
        if self.is_over:
            return
        # Detached too: its socket may have gone with the web process while its audio flows.
        if self.state in (CallState.LIVE, CallState.DETACHED) and self.has_media:
            try:
                await asyncio.wait_for(self.pipeline.say_last(line), timeout)
            except Exception:  # a timeout or a broken voice: the call ends all the same
                logger.warning("call %s: its last words were cut", self.session_id, exc_info=True)
        await self.end(reason)

    async def end(self, reason: str, *, message: str = "") -> None:
        """End the call once, whoever asked (its consumer, a timer, the pipeline, the worker):
        stop its conversation, record the end as soon as its last turn is buffered and tell its
        consumer (if one is left) MEDIA_ENDED with the recorded duration; only after that release
        the peer and store the recording, which can take a while. The worker that holds a call
        is the one that records it."""
        if self.is_over:
            return
        # Set before the first await: the supervisor may ask again while the call closes.
        self.state = CallState.ENDING
        self.worker.report_soon()  # its place is free for the next caller already
        self.end_reason = reason or protocol.REASON_ERROR
        self.end_message = message
        self.end_wall = timezone.now()
        if self._runner is not None and self._runner is not asyncio.current_task():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        try:
            await self.pipeline.close()
        except Exception:
            logger.exception("call %s: its pipeline did not close cleanly", self.session_id)
        # The pipeline records the reply a hang-up cut short as it closes; the transcript store
        # that the end queues below must find it in the buffer.
        await asyncio.gather(*list(self.turn_writes), return_exceptions=True)
        self.track.stop()
        stats = self.stats()
        LATE_AUDIO_FRAMES.inc(stats["late_outbound_frames"])
        logger.info(
            "call %s closed: %s (%.1f s in, %.1f s out)",
            self.session_id,
            self.end_reason,
            stats["inbound_seconds"],
            stats["outbound_seconds"],
        )
        duration = await self._record_end(stats)
        if self.detached_at is None:
            await self.worker.send(
                self.reply_to,
                protocol.media_ended(
                    self.session_id,
                    reason=self.end_reason,
                    message=self.end_message,
                    recorded=True,
                    duration=duration,
                ),
            )
        await self.peer.close()
        if self.recorder:
            await self._store_recording()
        self.state = CallState.ENDED
        # Gone from the worker once all is stored: whoever waits for the call to leave finds
        # its record and recording complete.
        self.worker.forget(self)

    async def _record_end(self, stats: dict) -> float:
        try:
            session = await call_db(call_session_end)(
                session_id=self.session_id,
                reason=self.end_reason,
                error_message=self.end_message,
                # A dropped call that nobody resumed ended when it dropped.
                ended_at=self.detached_wall or self.end_wall,
                media_stats=stats,
            )
        except Exception:
            logger.exception("call %s: could not record its end", self.session_id)
            return 0.0
        return session.duration_seconds or 0.0

    async def _store_recording(self) -> None:
        try:
            path = await asyncio.to_thread(self.recorder.finish)
            if path is not None:
                await call_db(call_recording_save)(session_id=self.session_id, path=path)
        except Exception:
            logger.exception("call %s: could not store its recording", self.session_id)
            self.recorder.discard()
