"""The call WebSocket (``/ws/<session_id>``): the seed's signaling protocol, relayed to a media worker.

Browser -> server: ``auth``, ``answer``, ``ice-candidate``, ``hangup``, and ``resume`` (with the
``resume_token`` of ``call_started``) to take a call over on a new socket after a dropped
connection.
Server -> browser: ``offer``, ``ice-candidate``, ``call_started``, ``agent_speaking``,
``agent_listening``, ``transcript``, ``call_ended``, ``error``.
The media worker that owns the call's peer is reached over the channel layer (voice/protocol.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from sessions import signaling
from sessions.selectors import call_session_in_use, call_spec_build
from sessions.services import (
    CallTokenError,
    call_resume_token_check,
    call_resume_token_issue,
    call_session_activate,
    call_session_end,
    call_token_consume,
)
from thinnest_site.db import call_db
from thinnest_site.logs import current_call_id
from voice import protocol
from voice.protocol import browser

logger = logging.getLogger(__name__)

# How often an unanswered offer is sent again: the seed's code may not be listening yet.
OFFER_RESEND_SECONDS = 1.0
# How long to wait for a media worker to take the call, and how many workers to try.
DISPATCH_TIMEOUT_SECONDS = 5.0
DISPATCH_ATTEMPTS = 3
SUPERVISE_INTERVAL_SECONDS = 0.5
# How long a message to the media worker may wait for room in its channel before it is dropped.
WORKER_SEND_PATIENCE_SECONDS = 1.0

# WebSocket close codes (4000-4999 are for applications).
CLOSE_NORMAL = 1000
CLOSE_AUTH_FAILED = 4001
CLOSE_AUTH_TIMEOUT = 4008
CLOSE_FAILED = 4011
CLOSE_TAKEN_OVER = 4009
CLOSE_POLICY = 1008


class CallConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.session_id: str = self.scope["url_route"]["kwargs"]["session_id"]
        current_call_id.set(self.session_id)  # on every line this socket's task logs
        self.token: str | None = None
        self.token_nonce = ""
        self.resumed = False
        self.worker: str | None = None
        self.offer: dict | None = None
        self.answered = False
        self.started = False
        self.finished = False
        self.dispatch_attempts = 0
        self.clock = signaling.CallSocketClock(
            dispatch_timeout=DISPATCH_TIMEOUT_SECONDS,
            heartbeat_timeout=protocol.HEARTBEAT_TIMEOUT_SECONDS,
        )
        self.candidates = signaling.CandidateRelay()
        # (reason, error) once the call is ending; told_browser once call_ended is sent.
        self.ending: tuple[str, tuple[str, str] | None] | None = None
        self.told_browser = False
        self.budget = signaling.MessageBudget()
        self.closing = False
        self.tasks: list[asyncio.Task] = []
        await self.accept()

        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        if query.get("token"):
            await self.authenticate(query["token"][0])
        else:
            self.tasks.append(asyncio.create_task(self.expire_unauthenticated()))

    async def dispatch(self, message: dict) -> None:
        # Channels runs close_old_connections() on the process's one shared sync thread before
        # every message (socket frames and worker heartbeats alike), so a slow sync view or
        # query anywhere in the process would hold every live call up, until its worker looked
        # dead. This consumer touches the database only through call_db, whose threads close
        # their connections around each call: the shared thread has nothing to clean up for it.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict) -> None:
        # As Channels' own, minus its close_old_connections() on the shared thread (see dispatch).
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        if not self.token or self.finished:
            return
        if self.started and self.worker is not None:
            # A live call outlives its socket for a while: the browser may come back with its
            # resume token (a network change, a dropped Wi-Fi). Its worker keeps it meanwhile,
            # and ends and records it if nobody does.
            self.finished = True
            await self.to_worker(protocol.call_detach(self.session_id))
            return
        await self.finish(protocol.REASON_CONNECTION_LOST, notify_browser=False)

    # --- browser -> server ----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return  # what a flooding client sent before it saw the close: drain it unread
        if not self.budget.allow():
            # A flood: nothing a browser sends needs this rate. The call, if any, ends as failed.
            await self.send_error(*signaling.RATE_LIMITED)
            if self.token and not self.finished:
                await self.finish(protocol.REASON_ERROR, error=signaling.RATE_LIMITED)
            else:
                self.finished = True
                await self.close(code=CLOSE_POLICY)
            self.closing = True
            return
        try:
            message = signaling.message_parse(text_data)
            await self.on_message(message)
        except signaling.InvalidMessage as exc:
            await self.send_error("invalid_message", str(exc))

    async def on_message(self, message: dict) -> None:
        kind = message["type"]
        if kind == "auth":
            await self.on_auth(message)
        elif kind == "resume":
            await self.on_resume(message)
        elif self.token is None:
            await self.send_error("not_authenticated", 'Send {"type": "auth", "token": ...} first.')
        elif kind == "answer":
            await self.on_answer(message)
        elif kind == "ice-candidate":
            await self.on_ice_candidate(message)
        elif kind == "hangup":
            await self.finish(protocol.REASON_USER_HANGUP)
        else:
            await self.send_error("unknown_message_type", f"Unknown message type '{kind[:40]}'.")

    async def on_auth(self, message: dict) -> None:
        token = signaling.token_field(message, "auth")
        if self.token is not None:
            # Already authenticated with the token from the URL; the seed's code sends it again.
            if token != self.token:
                await self.send_error(
                    "already_authenticated", "This socket is already authenticated."
                )
            return
        await self.authenticate(token)

    async def on_resume(self, message: dict) -> None:
        token = signaling.token_field(message, "resume")
        if self.token is not None:
            await self.send_error("already_authenticated", "This socket is already authenticated.")
            return
        try:
            session, worker = await call_db(call_resume_token_check)(
                session_id=self.session_id, token=token
            )
        except CallTokenError as exc:
            await self.send_error(exc.code, exc.message)
            await self.close(code=CLOSE_AUTH_FAILED)
            return
        self.token = token
        self.token_nonce = session.token_nonce
        self.resumed = True
        self.spec = await call_db(call_spec_build)(session)
        # The worker that holds the call answers with WORKER_ATTACHED and a new offer, or with
        # MEDIA_ENDED if the call is gone; silence ends it as a lost worker (supervise).
        self.worker = worker
        now = time.monotonic()
        self.clock.authenticated_at = self.clock.dispatched_at = self.clock.last_heartbeat = now
        await self.to_worker(protocol.call_resume(self.session_id, reply_to=self.channel_name))
        self.tasks.append(asyncio.create_task(self.supervise()))

    async def on_answer(self, message: dict) -> None:
        sdp = signaling.answer_sdp(message)
        if self.offer is None:
            await self.send_error("unexpected_message", "No offer has been sent yet.")
            return
        if self.answered:
            return  # an answer to a re-sent offer; the first one counts
        self.answered = True
        await self.to_worker(protocol.signal_answer(self.session_id, sdp=sdp))
        await self.candidates_to_worker(self.candidates.release())

    async def on_ice_candidate(self, message: dict) -> None:
        candidate = signaling.candidate_validate(message.get("candidate"))
        if candidate is None:
            raise signaling.InvalidMessage(signaling.CANDIDATE_SHAPE)
        try:
            relay = self.candidates.add(candidate)
        except signaling.TooManyCandidates as exc:
            await self.send_error("too_many_candidates", str(exc))
            return
        await self.candidates_to_worker(relay)

    async def candidates_to_worker(self, candidates: list[dict]) -> None:
        for candidate in candidates:
            await self.to_worker(protocol.signal_candidate(self.session_id, candidate=candidate))

    # --- authentication and dispatch -------------------------------------------------------------

    async def authenticate(self, token: str) -> None:
        try:
            session = await call_db(call_token_consume)(session_id=self.session_id, token=token)
        except CallTokenError as exc:
            code, text = exc.code, exc.message
            in_use = call_db(call_session_in_use)
            if code == "token_used" and await in_use(public_id=self.session_id):
                code, text = "session_in_use", "This call is already connected from another socket."
            await self.send_error(code, text)
            await self.close(code=CLOSE_AUTH_FAILED)
            return
        self.token = token
        self.token_nonce = session.token_nonce
        self.clock.authenticated_at = time.monotonic()
        self.spec = await call_db(call_spec_build)(session)
        if settings.MEDIA_WORKER_EMBEDDED:
            from voice.embedded import ensure_embedded_worker

            ensure_embedded_worker()
        await self.offer_call_to_workers()
        self.tasks.append(asyncio.create_task(self.supervise()))

    async def offer_call_to_workers(self) -> None:
        self.dispatch_attempts += 1
        self.clock.dispatched_at = time.monotonic()
        try:
            await self.channel_layer.send(
                settings.MEDIA_DISPATCH_CHANNEL,
                protocol.call_open(
                    self.session_id,
                    reply_to=self.channel_name,
                    # A worker that picks this up later than this (wall clock, shared by
                    # machines) drops it: the consumer has given up on it by then.
                    expires_at=time.time() + DISPATCH_TIMEOUT_SECONDS,
                    spec=self.spec,
                ),
            )
        except ChannelFull:
            # More calls wait for a worker than the channel holds: the workers are saturated.
            await self.finish(protocol.REASON_AT_CAPACITY, error=signaling.AT_CAPACITY)

    async def expire_unauthenticated(self) -> None:
        await asyncio.sleep(settings.CALL_AUTH_TIMEOUT_SECONDS)
        if self.token is None:
            await self.send_error(
                "auth_timeout",
                f"No auth message within {settings.CALL_AUTH_TIMEOUT_SECONDS:g} s.",
            )
            await self.close(code=CLOSE_AUTH_TIMEOUT)

    async def supervise(self) -> None:
        while not self.finished:
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
            overdue = self.clock.overdue(
                time.monotonic(),
                has_worker=self.worker is not None,
                awaiting_answer=self.offer is not None and not self.answered,
                started=self.started,
            )
            if overdue is not None:
                reason, error = overdue
                if error == signaling.MEDIA_WORKER_LOST:
                    self.worker = None  # gone: nothing to tell it
                await self.finish(reason, error=error)

    async def resend_offer(self) -> None:
        while not self.answered and not self.finished:
            await asyncio.sleep(OFFER_RESEND_SECONDS)
            if not self.answered and not self.finished and self.offer is not None:
                await self.send_json(browser.offer(self.offer))

    # --- media worker -> server (channel layer handlers) -----------------------------------------

    async def worker_attached(self, message: dict) -> None:
        if self.finished:
            # It took the call after we gave up on it: let it go (its own timeouts end it too).
            with contextlib.suppress(ChannelFull):
                await self.channel_layer.send(
                    message["worker"], protocol.call_close(self.session_id, reason="abandoned")
                )
            return
        self.worker = message["worker"]
        self.clock.last_heartbeat = time.monotonic()

    async def worker_rejected(self, message: dict) -> None:
        if self.finished or self.worker is not None:
            return
        if self.dispatch_attempts < DISPATCH_ATTEMPTS:
            await self.offer_call_to_workers()  # another worker may have room
            return
        await self.finish(protocol.REASON_AT_CAPACITY, error=signaling.AT_CAPACITY)

    async def worker_heartbeat(self, message: dict) -> None:
        self.clock.last_heartbeat = time.monotonic()

    async def signal_offer(self, message: dict) -> None:
        self.clock.last_heartbeat = self.clock.offer_sent_at = time.monotonic()
        self.offer = message["sdp"]
        await self.send_json(browser.offer(self.offer))
        self.tasks.append(asyncio.create_task(self.resend_offer()))

    async def signal_candidate(self, message: dict) -> None:
        if self.finished:
            return
        await self.send_json(browser.ice_candidate(message["candidate"]))

    async def media_started(self, message: dict) -> None:
        if self.started or self.finished:
            return
        self.started = True
        if not self.resumed:
            await call_db(call_session_activate)(session_id=self.session_id)
        resume_token = call_resume_token_issue(
            session_id=self.session_id, token_nonce=self.token_nonce, worker=self.worker or ""
        )
        await self.send_json(
            browser.call_started(
                session_id=self.session_id, resume_token=resume_token, resumed=self.resumed
            )
        )

    async def call_taken_over(self, message: dict) -> None:
        """Another socket resumed this call (this one looked dead to the browser): let go."""
        if self.finished:
            return
        self.finished = True
        self.worker = None
        await self.send_error(
            "call_resumed_elsewhere", "This call continues on another connection."
        )
        await self.close(code=CLOSE_TAKEN_OVER)

    async def media_event(self, message: dict) -> None:
        event = message.get("event")
        if isinstance(event, dict) and isinstance(event.get("type"), str) and not self.finished:
            await self.send_json(event)

    async def media_ended(self, message: dict) -> None:
        """The call is over on its worker: the worker ended it, or answers our CALL_CLOSE."""
        self.worker = None  # the worker has already let the call go
        if self.ending is None:  # the worker's own decision (max duration, goodbye, a fault)
            self.finished = True
            reason = message.get("reason") or protocol.REASON_ERROR
            self.ending = (reason, signaling.worker_end_error(reason, message.get("message", "")))
        if message.get("recorded"):
            await self.tell_browser_ended(duration=float(message.get("duration") or 0.0))
        else:  # a worker that never held the call (it could not start it) recorded nothing
            await self.record_end_and_tell()

    # --- ending ----------------------------------------------------------------------------------

    async def finish(
        self,
        reason: str,
        *,
        error: tuple[str, str] | None = None,
        notify_browser: bool = True,
    ) -> None:
        """End the call once. Its worker, which holds the call until its last turn, closes and
        records it, then answers MEDIA_ENDED, which this relays to the browser. Only when no
        worker holds the call (none took it, it was lost) does this record the end itself."""
        if self.finished:
            return
        self.finished = True
        self.ending = (reason, error)
        if self.worker is None:
            await self.record_end_and_tell(notify_browser=notify_browser)
            return
        await self.to_worker(
            protocol.call_close(self.session_id, reason=reason, message=error[1] if error else "")
        )
        if notify_browser:
            self.tasks.append(asyncio.create_task(self.record_if_worker_silent()))
        # else: the socket is gone; the worker records the call (or, if it died too, the
        # periodic finaliser does).

    async def record_if_worker_silent(self) -> None:
        await asyncio.sleep(protocol.HEARTBEAT_TIMEOUT_SECONDS)
        if not self.told_browser:
            logger.warning("call %s: its worker did not answer the close", self.session_id)
            self.worker = None
            await self.record_end_and_tell()

    async def record_end_and_tell(self, *, notify_browser: bool = True) -> None:
        reason, error = self.ending
        duration = 0.0
        try:
            session = await call_db(call_session_end)(
                session_id=self.session_id, reason=reason, error_message=error[1] if error else ""
            )
            duration = session.duration_seconds or 0.0
        except Exception:
            # The browser still hears that its call ended; the periodic finaliser records it.
            logger.exception("call %s: could not record its end", self.session_id)
        if notify_browser:
            await self.tell_browser_ended(duration=duration)

    async def tell_browser_ended(self, *, duration: float) -> None:
        """``error`` (if the call failed) and ``call_ended``, once, then close the socket."""
        if self.told_browser:
            return
        self.told_browser = True
        reason, error = self.ending
        logger.info("call %s ended: %s", self.session_id, reason)
        if error:
            await self.send_error(*error)
        await self.send_json(browser.call_ended(duration=duration, reason=reason))
        await self.close(code=CLOSE_NORMAL if not error else CLOSE_FAILED)

    # --- helpers ---------------------------------------------------------------------------------

    async def to_worker(self, message: dict) -> None:
        """Relay one of voice/protocol.py's messages to the call's worker. A full channel (the
        worker is behind) is waited out for a moment, then the message is dropped with a
        warning: it must not crash the socket."""
        if self.worker is not None and not await signaling.channel_send_patiently(
            self.channel_layer, self.worker, message, patience=WORKER_SEND_PATIENCE_SECONDS
        ):
            logger.warning(
                "call %s: worker channel full, %s dropped", self.session_id, message["type"]
            )

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content))

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json(browser.error(code, message))
