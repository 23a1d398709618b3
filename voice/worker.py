"""The media worker: takes calls from the shared dispatch channel, holds them, and stops them.

Each call (voice/call.py) owns its peer, its pipeline and its lifecycle; the worker keeps what is
shared: dispatching channel-layer messages to its calls (voice/protocol.py), counting their places,
sending their heartbeats and running their timers, and stopping. One asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import time

from channels.layers import get_channel_layer
from django.conf import settings

from sessions.selectors import media_worker_calls_beside
from sessions.workers import (
    REPORT_SECONDS,
    call_session_assign_worker,
    calls_close_orphaned,
    media_worker_forget,
    media_worker_report,
)
from thinnest_site.db import call_db
from thinnest_site.logs import current_call_id
from voice import protocol
from voice.admission import FIXED_OVERHEAD_MS, Admission, CpuMeter
from voice.call import Call
from voice.ice import restrict_host_addresses
from voice.pipeline.registry import pipeline_preload
from voice.protocol import CallSpec

logger = logging.getLogger(__name__)

SUPERVISE_INTERVAL_SECONDS = protocol.HEARTBEAT_SECONDS
# Calls a worker negotiates at once, per place of its capacity.
NEGOTIATING_PER_PLACE = 4
# What a caller hears when a shutdown cuts the call, and the time kept for it out of the grace
# period (the line takes about 6 s to say).
SHUTDOWN_LINE = (
    "I'm sorry, I have to end our call now because this service is restarting. "
    "Please call again in a minute."
)
SHUTDOWN_NOTICE_SECONDS = 8.0
SHUTDOWN_DECLINED = "This media worker is shutting down. Please call again in a moment."
DRAIN_POLL_SECONDS = 0.2


class MediaWorker:
    def __init__(
        self, *, capacity: int | None = None, channel_layer=None, embedded: bool = False
    ) -> None:
        self.capacity = capacity if capacity is not None else settings.MEDIA_WORKER_CAPACITY
        self.embedded = embedded
        self._reported_at = 0.0
        self._reported_calls = 0
        self._reporting: asyncio.Future | None = None
        self.layer = channel_layer or get_channel_layer()
        self.channel = ""
        self.calls: dict[str, Call] = {}
        self.calls_served = 0
        self._tasks: set[asyncio.Task] = set()
        self._readers: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        # Shutting down: new calls are declined, the calls in progress go on for a while.
        self.draining = False
        # Whether one more call fits the response latency budget (set at start).
        self.admission = Admission(
            budget_ms=settings.RESPONSE_LATENCY_BUDGET_MS,
            base_ms=FIXED_OVERHEAD_MS,
            capacity=self.capacity,
        )
        self._cpu = CpuMeter()
        self._load_at = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # Only when set: an empty setting leaves aioice alone (and a test caller's restriction in
        # the same process with it).
        if settings.MEDIA_HOST_ADDRESSES:
            restrict_host_addresses(settings.MEDIA_HOST_ADDRESSES)
        # Models load once per process, before the first call, off the event loop.
        await asyncio.to_thread(pipeline_preload)
        await self._admission_prepare()
        # The default prefix: channels_redis reads all of a process's own channels in one loop
        # per prefix, and a second prefix in the same process would starve the first.
        self.channel = await self.layer.new_channel()
        await self._report()
        if not self.embedded:
            # Calls a killed worker left open (this one's last run, say) are closed now; the
            # embedded mode's process closes all of its open calls as it starts (voice/shutdown.py).
            closed = await call_db(calls_close_orphaned)()
            if closed:
                logger.info("closed %d calls left open by a worker that died", len(closed))
        self._readers = [
            asyncio.create_task(self._read(settings.MEDIA_DISPATCH_CHANNEL), name="media-dispatch"),
            asyncio.create_task(self._read(self.channel), name="media-own"),
            asyncio.create_task(self._supervise(), name="media-supervise"),
        ]
        logger.info("media worker %s ready (capacity %d)", self.channel, self.capacity)

    async def _admission_prepare(self) -> None:
        """Time this machine's models once, so that the first calls are admitted by its speed."""
        turn_ms = 0
        if settings.VOICE_PIPELINE == "conversation":
            from voice.pipeline.inference import turn_ms_measure

            turn_ms = await asyncio.to_thread(turn_ms_measure)
        self.admission = Admission(
            budget_ms=settings.RESPONSE_LATENCY_BUDGET_MS,
            base_ms=turn_ms + FIXED_OVERHEAD_MS,
            capacity=self.capacity,
        )
        self._cpu.read()  # the load is measured from now on, not over the models' timing
        self._load_at = time.monotonic()
        logger.info(
            "media worker admission: %s (one reply's model work %d ms)",
            self.admission.as_dict(),
            turn_ms,
        )

    def _admission_update(self) -> None:
        reading = self._cpu.read()
        if reading is not None:
            machine, own = reading
            self.admission.observe_load(machine=machine, own=own, calls=self.calls_with_media())

    async def run(self) -> None:
        await self.start()
        await self._stopped.wait()

    async def drain(self, grace_seconds: float) -> None:
        """Shut down gently (SIGTERM): decline new calls, let the calls in progress go on for up
        to ``grace_seconds``, then end the rest as ``server_shutdown``, each caller told why in
        its agent's voice, and stop. Each call is recorded, transcript and all, as usual."""
        self.draining = True
        await self._report()  # /healthz says so at once
        loop = asyncio.get_running_loop()
        cut_at = loop.time() + max(0.0, grace_seconds - SHUTDOWN_NOTICE_SECONDS)
        logger.info(
            "media worker %s draining: %d calls, up to %.0f s",
            self.channel,
            len(self.calls),
            grace_seconds,
        )
        # Calls still negotiating would only start to be cut: they are declined like new ones.
        for call in list(self.calls.values()):
            if not call.has_media:
                call.end_call(protocol.REASON_AT_CAPACITY, SHUTDOWN_DECLINED)
        while self.calls and loop.time() < cut_at:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        notice = min(SHUTDOWN_NOTICE_SECONDS, grace_seconds)
        await asyncio.gather(
            *(
                call.end_with_notice(SHUTDOWN_LINE, protocol.REASON_SERVER_SHUTDOWN, timeout=notice)
                for call in list(self.calls.values())
            ),
            return_exceptions=True,
        )
        await self.stop()

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for call in list(self.calls.values()):
            await call.end(protocol.REASON_SERVER_SHUTDOWN, message="The media worker was stopped.")
        if self._reporting is not None:
            await asyncio.gather(self._reporting, return_exceptions=True)
        if self.channel:
            try:
                await call_db(media_worker_forget)(name=self.channel)
            except Exception:  # it will look dead in a few seconds anyway
                logger.warning("could not unregister media worker %s", self.channel, exc_info=True)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._stopped.set()

    def calls_with_media(self) -> int:
        return sum(1 for call in self.calls.values() if call.has_media)

    def calls_negotiating(self) -> int:
        return sum(1 for call in self.calls.values() if not call.has_media)

    def calls_taking_places(self, call: Call | None = None) -> int:
        """Calls with media, and calls whose browser has answered (media is on its way): what
        admission counts. A socket that never answers takes no place (anyone with a published
        public key can open one). For ``call``, about to have media: the others with media and
        those that answered before it (of two callers at once, the first to answer gets in)."""

        def ahead(other: Call) -> bool:
            if other is call or other.is_over:
                return False
            if other.has_media:
                return True
            return bool(other.answered_at) and (
                call is None or not call.answered_at or other.answered_at < call.answered_at
            )

        return sum(1 for other in self.calls.values() if ahead(other))

    def has_room_for_media(self, call: Call | None = None) -> bool:
        """Whether one more call (``call``, about to have media) fits."""
        return self.free(call) > 0

    def free(self, call: Call | None = None) -> int:
        """Calls this worker would take now (none while draining)."""
        return 0 if self.draining else self.admission.free(self.calls_taking_places(call))

    def _declines(self) -> str:
        """Why this worker would not take a call now ("" if it would)."""
        if self.draining:
            return SHUTDOWN_DECLINED
        if self.has_room_for_media() and self.calls_negotiating() < (
            self.capacity * NEGOTIATING_PER_PLACE
        ):
            return ""
        predicted = self.admission.predicted_ms(1)
        return (
            f"This media worker is at its capacity ({self.calls_with_media()} calls; one more "
            f"would answer in ~{min(predicted, 99999):.0f} ms, over the "
            f"{self.admission.budget_ms:.0f} ms budget, or its limit of {self.capacity})."
        )

    def forget(self, call: Call) -> None:
        if self.calls.get(call.session_id) is call:
            del self.calls[call.session_id]

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
        declined = self._declines()
        if declined:
            passed_by = message.get("passed_by", [])
            if not self.embedded and self.channel not in passed_by:
                # Another worker may have room: the call goes back to the shared channel once
                # per worker, instead of back to its consumer for another try.
                await self.send(
                    settings.MEDIA_DISPATCH_CHANNEL,
                    {**message, "passed_by": [*passed_by, self.channel]},
                )
                return
            await self.send(
                reply_to, protocol.worker_rejected(session_id, code="at_capacity", message=declined)
            )
            return
        if session_id in self.calls:
            return
        # The call's tasks run in a context of its own: every line they log carries its id.
        context = contextvars.copy_context()
        context.run(current_call_id.set, session_id)
        try:
            call = context.run(Call, self, CallSpec.from_message(message["call"]), reply_to)
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
        # Which worker holds the call: if this one dies, the call is found by it and closed.
        self.spawn(call_db(call_session_assign_worker)(session_id=session_id, worker=self.channel))
        await self.send(reply_to, protocol.worker_attached(session_id, worker=self.channel))
        context.run(call.run)
        logger.info("call %s opened (%d active)", session_id, len(self.calls))

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
            await call.tick(now)
        # Also as soon as its count of calls moved: /healthz and /metrics lag by a second at most.
        if now - self._load_at >= REPORT_SECONDS:
            self._load_at = now
            self._admission_update()
        if now - self._reported_at >= REPORT_SECONDS or self._reported_calls != (
            self.calls_with_media()
        ):
            await self._report()

    def report_soon(self) -> None:
        """A place was freed: say so now, not at the next tick (the start-call API reads it)."""
        if self.channel and not self.draining:
            self.spawn(self._report())

    async def _report(self) -> None:
        """Tell the database this worker lives, and how full it is (/healthz, /metrics). Shielded
        and kept: a cancelled await would leave its database thread writing after ``stop``."""
        self._reporting = asyncio.ensure_future(self._report_now())
        await asyncio.shield(self._reporting)

    async def _report_now(self) -> None:
        self._reported_at = time.monotonic()
        self._reported_calls = self.calls_with_media()
        try:
            await call_db(media_worker_report)(
                name=self.channel,
                host=socket.gethostname(),
                pid=os.getpid(),
                embedded=self.embedded,
                capacity=self.capacity,
                calls=self.calls_with_media(),
                draining=self.draining,
                free=self.free(),
                load=self.admission.as_dict(),
            )
            self.admission.calls_beside = await call_db(media_worker_calls_beside)(
                name=self.channel, host=socket.gethostname()
            )
        except Exception:  # the calls go on without it; the next report may get through
            logger.warning("media worker %s could not report itself", self.channel, exc_info=True)
