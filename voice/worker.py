"""The media worker: owns the aiortc peer connections of its calls and runs their pipelines.

It takes new calls from the shared dispatch channel and talks to each call's signaling consumer
over the channel layer (voice/protocol.py). One asyncio loop; per call, one task that handles that
call's messages in order, one that reads its inbound audio, and aiortc's own tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from sessions.services import (
    call_recording_save,
    call_session_end,
    call_turn_record,
)
from thinnest_site.db import call_db
from voice import protocol
from voice.audio import AgentAudioTrack, InboundAudio, PeerAudioTrack
from voice.ice import candidate_from_browser, restrict_host_addresses, rtc_configuration
from voice.meter import InboundMeter
from voice.pipeline.base import CallPipeline
from voice.pipeline.registry import pipeline_create, pipeline_preload
from voice.protocol import CallSpec
from voice.recording import CallRecorder

logger = logging.getLogger(__name__)

SUPERVISE_INTERVAL_SECONDS = protocol.HEARTBEAT_SECONDS
# Calls a worker negotiates at once, per place of its capacity.
NEGOTIATING_PER_PLACE = 4


class Call:
    """One call held by this worker."""

    def __init__(self, worker: MediaWorker, spec: CallSpec, reply_to: str) -> None:
        self.worker = worker
        self.spec = spec
        self.session_id = spec.session_id
        self.reply_to = reply_to
        # Set while the browser's connection is gone and the call waits for it to resume.
        self.detached_at: float | None = None
        self.detached_wall = None
        self.messages: asyncio.Queue[dict] = asyncio.Queue()
        self.opened_at = time.monotonic()
        self.media_started_at: float | None = None
        self.last_activity = time.monotonic()
        self.connected = False
        self.got_audio = False
        self.live = False  # media flows on the current peer connection
        self.ended = False
        self.ending = False  # the worker is ending it (MEDIA_ENDED sent or on its way)
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
        self.pc = RTCPeerConnection(rtc_configuration(settings.ICE_SERVERS))
        self.tasks: list[asyncio.Task] = []
        # Turns on their way to the buffer: the call's last store waits for them.
        self.turn_writes: set[asyncio.Task] = set()
        self.inbound_readers: list[asyncio.Task] = []

    # --- CallEvents, for the pipeline --------------------------------------------------------

    def emit(self, event: dict) -> None:
        if self.detached_at is None:  # a detached call's events have nowhere to go
            self.worker.send_soon(self.reply_to, protocol.media_event(self.session_id, event=event))

    def record_turn(self, turn: dict) -> None:
        # A Redis RPUSH: quick, but not on the event loop.
        task = self.worker.spawn(call_db(call_turn_record)(session_id=self.session_id, turn=turn))
        self.turn_writes.add(task)
        task.add_done_callback(self.turn_writes.discard)

    def end_call(self, reason: str, message: str = "") -> None:
        self.worker.spawn(self.worker.end_call(self, reason, message=message))

    def call_ms(self) -> int:
        if self.media_started_at is None:
            return 0
        return int((time.monotonic() - self.media_started_at) * 1000)

    # --- track callbacks --------------------------------------------------------------------

    def _on_playback_start(self) -> None:
        self.last_activity = time.monotonic()
        self.pipeline.on_playback_start()

    def _on_playback_end(self) -> None:
        self.last_activity = time.monotonic()
        self.pipeline.on_playback_end()

    def stats(self) -> dict:
        return {
            **self.meter.stats(),
            "outbound_seconds": round(self.track.played_ms / 1000, 3),
            "outbound_frames": self.track.frames_sent,
            "late_outbound_frames": self.track.pacer.late_frames,
            "max_outbound_lateness_ms": round(self.track.pacer.max_lateness_ms, 1),
            **self.pipeline.stats(),
        }


class MediaWorker:
    def __init__(self, *, capacity: int | None = None, channel_layer=None) -> None:
        self.capacity = capacity if capacity is not None else settings.MEDIA_WORKER_CAPACITY
        self.layer = channel_layer or get_channel_layer()
        self.channel = ""
        self.calls: dict[str, Call] = {}
        self.calls_served = 0
        self._tasks: set[asyncio.Task] = set()
        self._readers: list[asyncio.Task] = []
        self._stopped = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # Only when set: an empty setting leaves aioice alone (and a test caller's restriction in
        # the same process with it).
        if settings.MEDIA_HOST_ADDRESSES:
            restrict_host_addresses(settings.MEDIA_HOST_ADDRESSES)
        # Models load once per process, before the first call, off the event loop.
        await asyncio.to_thread(pipeline_preload)
        # The default prefix: channels_redis reads all of a process's own channels in one loop
        # per prefix, and a second prefix in the same process would starve the first.
        self.channel = await self.layer.new_channel()
        self._readers = [
            asyncio.create_task(self._read(settings.MEDIA_DISPATCH_CHANNEL), name="media-dispatch"),
            asyncio.create_task(self._read(self.channel), name="media-own"),
            asyncio.create_task(self._supervise(), name="media-supervise"),
        ]
        logger.info("media worker %s ready (capacity %d)", self.channel, self.capacity)

    async def run(self) -> None:
        await self.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for call in list(self.calls.values()):
            await self.end_call(
                call, protocol.REASON_ERROR, message="The media worker is shutting down."
            )
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._stopped.set()

    def calls_with_media(self) -> int:
        return sum(1 for call in self.calls.values() if call.media_started_at is not None)

    def calls_negotiating(self) -> int:
        return sum(1 for call in self.calls.values() if call.media_started_at is None)

    def spawn(self, coroutine) -> asyncio.Task:
        """Run a coroutine in the background, keeping a reference until it finishes."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("media worker task failed", exc_info=task.exception())

    def send_soon(self, channel: str, message: dict) -> None:
        self.spawn(self.send(channel, message))

    async def send(self, channel: str, message: dict) -> None:
        """One of voice/protocol.py's messages to a consumer."""
        try:
            await self.layer.send(channel, message)
        except Exception:  # a full or unreachable channel must not take the call down with it
            logger.warning(
                "could not send %s for %s", message["type"], message["session_id"], exc_info=True
            )

    # --- channel layer -------------------------------------------------------------------------

    async def _read(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(1)
                continue
            try:
                await self._route(message)
            except Exception:
                logger.exception("could not handle %s", message.get("type"))

    async def _route(self, message: dict) -> None:
        kind = message.get("type")
        if kind == protocol.CALL_OPEN:
            await self._open(message)
            return
        call = self.calls.get(message.get("session_id", ""))
        if call is None:
            if kind == protocol.CALL_RESUME and message.get("reply_to"):
                await self.send(
                    message["reply_to"],
                    protocol.media_ended(
                        message.get("session_id", ""),
                        reason=protocol.REASON_CONNECTION_LOST,
                        message="The call ended before it could be resumed.",
                    ),
                )
            return  # a late message for a call that has already ended here
        call.messages.put_nowait(message)

    async def _open(self, message: dict) -> None:
        reply_to = message["reply_to"]
        session_id = message["session_id"]
        if time.time() > message.get("expires_at", float("inf")):
            return  # its consumer has given up on it already
        # Only calls with media take a place: a socket that authenticates and never answers
        # (anyone with a published public key can open one) must not keep a real caller out.
        # Calls still negotiating are bounded apart, for memory; the answer and connect
        # timeouts free them.
        if self.calls_with_media() >= self.capacity or self.calls_negotiating() >= (
            self.capacity * NEGOTIATING_PER_PLACE
        ):
            await self.send(
                reply_to,
                protocol.worker_rejected(
                    session_id,
                    code="at_capacity",
                    message=f"This media worker is at its capacity of {self.capacity} calls.",
                ),
            )
            return
        if session_id in self.calls:
            return
        try:
            call = Call(self, CallSpec.from_message(message["call"]), reply_to)
        except Exception as exc:
            # Tell the consumer now rather than let it wait for its dispatch timeout.
            logger.exception("call %s could not be opened", session_id)
            await self.send(
                reply_to,
                protocol.media_ended(
                    session_id,
                    reason=protocol.REASON_ERROR,
                    message=f"The media worker could not start the call: {exc}",
                ),
            )
            return
        self.calls[session_id] = call
        self.calls_served += 1
        await self.send(reply_to, protocol.worker_attached(session_id, worker=self.channel))
        call.tasks.append(asyncio.create_task(self._run_call(call), name=f"call-{session_id}"))
        logger.info("call %s opened (%d active)", session_id, len(self.calls))

    # --- one call ------------------------------------------------------------------------------

    async def _run_call(self, call: Call) -> None:
        try:
            await self._negotiate(call)
            while True:
                message = await call.messages.get()
                await self._handle(call, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("call %s failed", call.session_id)
            self.spawn(
                self.end_call(call, protocol.REASON_MEDIA_FAILED, message=f"Media error: {exc}")
            )

    async def _negotiate(self, call: Call) -> None:
        pc = call.pc

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio" and pc is call.pc:
                reader = asyncio.create_task(self._read_audio(call, track))
                call.inbound_readers.append(reader)
                call.tasks.append(reader)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is not call.pc:
                return  # a peer replaced by a resume
            if pc.connectionState == "connected":
                call.connected = True
                await self._maybe_started(call)
            elif pc.connectionState == "failed":
                if call.media_started_at is not None:
                    # The network went away mid-call: wait for the browser to resume it.
                    self._detach(call)
                    return
                # Spawned: ending closes this very peer, whose event handler this is.
                self.spawn(
                    self.end_call(
                        call, protocol.REASON_MEDIA_FAILED, message="The audio connection failed."
                    )
                )

        pc.addTrack(PeerAudioTrack(call.track))
        await pc.setLocalDescription(await pc.createOffer())  # gathers candidates into the SDP
        await self.send(
            call.reply_to, protocol.signal_offer(call.session_id, sdp=pc.localDescription.sdp)
        )

    async def _handle(self, call: Call, message: dict) -> None:
        kind = message["type"]
        if kind == protocol.SIGNAL_ANSWER:
            if call.pc.remoteDescription is not None:
                logger.info("call %s: ignoring a second answer", call.session_id)
                return
            sdp = message["sdp"]
            await call.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp["sdp"], type="answer"))
        elif kind == protocol.SIGNAL_CANDIDATE:
            try:
                candidate = candidate_from_browser(message["candidate"])
            except ValueError as exc:
                logger.info("call %s: %s", call.session_id, exc)
                return
            if candidate is not None:
                await call.pc.addIceCandidate(candidate)
        elif kind == protocol.CALL_CLOSE:
            # The consumer ends the call (a hang-up, a timeout): this worker records it once
            # its last turn is in, and answers MEDIA_ENDED.
            self.spawn(
                self.end_call(call, message.get("reason", ""), message=message.get("message", ""))
            )
        elif kind == protocol.CALL_DETACH:
            self._detach(call)
        elif kind == protocol.CALL_RESUME:
            await self._resume(call, message["reply_to"])

    # --- dropped connections ---------------------------------------------------------------------

    def _detach(self, call: Call) -> None:
        """The browser is gone for now: the agent falls silent and the grace period starts."""
        if call.detached_at is not None or call.ending or call.ended:
            return
        call.detached_at = time.monotonic()
        call.detached_wall = timezone.now()
        call.live = False
        call.track.clear()
        call.pipeline.interrupt()
        logger.info("call %s: connection lost; waiting for a resume", call.session_id)

    async def _resume(self, call: Call, reply_to: str) -> None:
        """A new socket took the call over: a fresh peer connection, the same conversation."""
        if call.ending or call.ended:
            return
        if reply_to != call.reply_to:
            # The old socket may still be open (the browser gave up on it first).
            await self.send(call.reply_to, protocol.call_taken_over(call.session_id))
        self._detach(call)
        call.reply_to = reply_to
        await self.send(reply_to, protocol.worker_attached(call.session_id, worker=self.channel))
        old_pc, old_readers = call.pc, call.inbound_readers
        call.pc = RTCPeerConnection(rtc_configuration(settings.ICE_SERVERS))
        call.inbound_readers = []
        call.connected = call.got_audio = False
        for reader in old_readers:
            reader.cancel()
        with contextlib.suppress(Exception):
            await old_pc.close()
        call.track.pacer.resync()
        call.detached_at = call.detached_wall = None
        await self._negotiate(call)
        logger.info("call %s: resumed on a new connection", call.session_id)

    async def _read_audio(self, call: Call, track) -> None:
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                pcm = call.inbound.convert(frame)
                if call.meter.add(pcm):
                    call.last_activity = time.monotonic()
                if not call.got_audio:
                    call.got_audio = True
                    await self._maybe_started(call)
                if call.live:
                    call.pipeline.push_audio(pcm)
                    if call.recorder:
                        # Encoding is ~3 ms per 200 ms of audio: cheap enough for the loop.
                        call.recorder.add_caller(pcm)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A pipeline bug ends its own call, audibly, instead of leaving it deaf.
            logger.exception("call %s: inbound audio failed", call.session_id)
            self.spawn(self.end_call(call, protocol.REASON_ERROR, message=f"Media error: {exc}"))

    async def _maybe_started(self, call: Call) -> None:
        """Media flows once ICE is connected and the caller's audio arrives (again, after a
        resume: the pipeline goes on where it was)."""
        if call.live or not (call.connected and call.got_audio) or call.ended:
            return
        if call.media_started_at is None and self.calls_with_media() >= self.capacity:
            # The places filled up while this call was negotiating.
            self.spawn(
                self.end_call(
                    call,
                    protocol.REASON_AT_CAPACITY,
                    message="All media workers are busy. Please try again in a moment.",
                )
            )
            return
        call.live = True
        call.last_activity = time.monotonic()
        first_start = call.media_started_at is None
        if first_start:
            # Before MEDIA_STARTED goes out: whoever hears of it must find the call counted.
            call.media_started_at = call.last_activity
        await self.send(call.reply_to, protocol.media_started(call.session_id))
        if not first_start:
            return
        try:
            await call.pipeline.start()
        except Exception as exc:
            logger.exception("call %s: the pipeline did not start", call.session_id)
            self.spawn(self.end_call(call, protocol.REASON_ERROR, message=f"Pipeline error: {exc}"))

    # --- timers and heartbeats -------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
            try:
                await self._supervise_once()
            except Exception:
                # Heartbeats must go on: without them every consumer takes this worker for dead.
                logger.exception("media worker supervision failed")

    async def _supervise_once(self) -> None:
        now = time.monotonic()
        for call in list(self.calls.values()):
            if call.ended or call.ending:
                continue
            if call.detached_at is not None:
                if now - call.detached_at > settings.CALL_RESUME_GRACE_SECONDS:
                    self.spawn(self.end_call(call, protocol.REASON_CONNECTION_LOST))
                continue
            await self.send(call.reply_to, protocol.worker_heartbeat(call.session_id))
            if call.media_started_at is None:
                if now - call.opened_at > settings.CALL_CONNECT_TIMEOUT_SECONDS:
                    self.spawn(
                        self.end_call(
                            call,
                            protocol.REASON_MEDIA_FAILED,
                            message="The audio connection was not established in time.",
                        )
                    )
            elif now - call.media_started_at > call.spec.max_duration_seconds:
                self.spawn(self.end_call(call, protocol.REASON_MAX_DURATION))
            elif (
                not call.track.is_playing
                and now - call.last_activity > call.spec.silence_timeout_seconds
            ):
                self.spawn(self.end_call(call, protocol.REASON_SILENCE_TIMEOUT))

    # --- ending --------------------------------------------------------------------------------

    async def end_call(self, call: Call, reason: str, *, message: str = "") -> None:
        """End a call, whoever asked (its consumer, a timer, the pipeline): close it here, record
        it once its last turn is buffered, then tell its consumer (if one is left) MEDIA_ENDED
        with the recorded duration. The worker is the one that records a call it holds."""
        if call.ended or call.ending:
            return
        # Set before the first await: the supervisor may ask again while the call closes.
        call.ending = True
        call.end_reason = reason
        call.end_message = message
        call.end_wall = timezone.now()
        await self.close_call(call)

    async def _store_recording(self, call: Call) -> None:
        try:
            path = await asyncio.to_thread(call.recorder.finish)
            if path is not None:
                await call_db(call_recording_save)(session_id=call.session_id, path=path)
        except Exception:
            logger.exception("call %s: could not store its recording", call.session_id)
            call.recorder.discard()

    async def close_call(self, call: Call) -> None:
        """Close the call once: stop its conversation, record the end as soon as its last turn
        is buffered (the caller is told then), and only after that release the peer and store
        the recording, which can take a while."""
        if call.ended:
            return
        call.ended = True
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in call.tasks if t is not current), return_exceptions=True)
        with contextlib.suppress(Exception):
            await call.pipeline.close()
        # The pipeline records the reply a hang-up cut short as it closes; the transcript store
        # that the end queues below must find it in the buffer.
        await asyncio.gather(*list(call.turn_writes), return_exceptions=True)
        call.track.stop()
        stats = call.stats()
        logger.info(
            "call %s closed: %s (%.1f s in, %.1f s out)",
            call.session_id,
            call.end_reason or "closed",
            stats["inbound_seconds"],
            stats["outbound_seconds"],
        )
        reason = call.end_reason or protocol.REASON_ERROR
        duration = 0.0
        try:
            session = await call_db(call_session_end)(
                session_id=call.session_id,
                reason=reason,
                error_message=call.end_message,
                # A dropped call that nobody resumed ended when it dropped.
                ended_at=call.detached_wall or call.end_wall,
                media_stats=stats,
            )
            duration = session.duration_seconds or 0.0
        except Exception:
            logger.exception("call %s: could not record its end", call.session_id)
        if call.detached_at is None:
            await self.send(
                call.reply_to,
                protocol.media_ended(
                    call.session_id,
                    reason=reason,
                    message=call.end_message,
                    recorded=True,
                    duration=duration,
                ),
            )
        with contextlib.suppress(Exception):
            await call.pc.close()
        if call.recorder:
            await self._store_recording(call)
        # Gone from this worker once all is stored: whoever waits for the call to leave finds
        # its record and recording complete.
        self.calls.pop(call.session_id, None)
