from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from agents.models import Agent, ApiKey, WebhookEndpoint
from agents.origins import origin_for_record, origin_matches
from agents.selectors import agent_get_active, api_key_allows_agent
from agents.services import api_key_mark_used
from sessions.events import call_event_emit
from sessions.models import CallSession, TranscriptEntry
from sessions.selectors import call_sessions_live, media_workers_all_full
from sessions.stats import CallStats
from sessions.summaries import call_summary_enqueue
from sessions.turn_buffer import turn_buffer_append, turn_buffer_read, turn_buffer_release
from thinnest_site.errors import ApplicationError, Forbidden, InvalidRequest, NotFound
from thinnest_site.metrics import CALLS_REFUSED

_TOKEN_SALT = "sessions.call-token"
_RESUME_SALT = "sessions.call-resume"


class CallTokenError(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED


class ConcurrentCallLimit(ApplicationError):
    code = "concurrent_call_limit"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS


@dataclass(frozen=True)
class StartedCall:
    session: CallSession
    token: str


def _encodable(text: str) -> bool:
    # JSON may carry lone surrogates ("\ud800"), which no database can store as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text  # PostgreSQL text cannot hold NUL either


def call_context_validate(context: Any) -> dict:
    """The context a call starts with: a flat JSON object of small scalar values."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidRequest("context must be a JSON object.")
    for key, value in context.items():
        if not _encodable(key):
            raise InvalidRequest("context keys must be valid Unicode text.")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidRequest(
                f"context['{key}'] must be a string, number, boolean or null, not {type(value).__name__}."
            )
        if isinstance(value, str) and not _encodable(value):
            raise InvalidRequest(f"context['{key}'] must be valid Unicode text.")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequest(f"context['{key}'] must be a finite number.")
    size = len(json.dumps(context, separators=(",", ":"), ensure_ascii=False).encode())
    if size > settings.CALL_CONTEXT_MAX_BYTES:
        raise InvalidRequest(
            f"context is {size} bytes; the limit is {settings.CALL_CONTEXT_MAX_BYTES} bytes."
        )
    return context


def call_start_agent_resolve(*, api_key: ApiKey, agent_id: str, origin: str) -> Agent:
    """Which agent this key may start from this origin, or the error that says why not."""
    if api_key.is_public and not origin:
        raise Forbidden(
            "A public key can only be used from a web page: the request has no Origin header.",
            code="origin_not_allowed",
        )
    if api_key.is_public and not origin_matches(origin, api_key.allowed_origins):
        raise Forbidden(
            f"Origin {origin} is not allowed for this key. Add it to the key's allowed origins.",
            code="origin_not_allowed",
        )
    agent = agent_get_active(public_id=agent_id)
    if agent is None:
        raise NotFound(f"No active agent with id '{agent_id}'.", code="agent_not_found")
    if not api_key_allows_agent(api_key=api_key, agent=agent):
        raise Forbidden(f"This key may not start agent '{agent_id}'.", code="agent_not_allowed")
    return agent


def call_concurrency_check(*, agent: Agent, api_key: ApiKey | None, client_ip: str | None) -> None:
    """Refuse a new call when its key, its agent or (for calls a browser starts) its client IP
    already has as many live calls as allowed, so that one holder of a published public key
    cannot take every place. Raises ``ConcurrentCallLimit``; a limit of 0 is no limit."""
    limits: list[tuple[str, dict, int]] = [
        ("agent", {"agent": agent}, settings.MAX_CONCURRENT_CALLS_PER_AGENT)
    ]
    if api_key is not None:
        per_key = api_key.max_concurrent_calls or settings.MAX_CONCURRENT_CALLS_PER_KEY
        limits.append(("API key", {"api_key": api_key}, per_key))
    # A secret key's calls all come from the customer's backend, one IP for every visitor: only
    # browser-started calls (public keys, the demo) are limited per IP.
    if client_ip and (api_key is None or api_key.is_public):
        limits.append(("address", {"client_ip": client_ip}, settings.MAX_CONCURRENT_CALLS_PER_IP))
    for what, filters, limit in limits:
        if limit and call_sessions_live(**filters).count() >= limit:
            raise ConcurrentCallLimit(
                f"This {what} already has {limit} calls in progress, its limit; "
                "try again when one has ended."
            )


def call_session_start(
    *,
    agent: Agent,
    api_key: ApiKey | None,
    context: dict | None = None,
    origin: str = "",
    client_ip: str | None = None,
) -> StartedCall:
    """Create a call session and the single-use token the browser redeems on the WebSocket.
    Refused up front (503 ``at_capacity``) when every media worker would decline the call."""
    context = call_context_validate(context)
    if media_workers_all_full():
        raise ApplicationError(
            "All media workers are busy. Please try again in a moment.",
            code="at_capacity",
            status_code=503,
        )
    with transaction.atomic():
        # Starts for one agent take turns here, so two at once cannot both pass the limit.
        Agent.objects.select_for_update().filter(pk=agent.pk).first()
        call_concurrency_check(agent=agent, api_key=api_key, client_ip=client_ip)
        session = CallSession.objects.create(
            agent=agent,
            api_key=api_key,
            context=context,
            origin=origin_for_record(origin),
            client_ip=client_ip,
            token_nonce=secrets.token_urlsafe(16),
        )
    if api_key is not None:
        api_key_mark_used(api_key=api_key)
    token = signing.dumps({"s": session.public_id, "n": session.token_nonce}, salt=_TOKEN_SALT)
    return StartedCall(session=session, token=token)


def call_session_start_from_dashboard(
    *,
    agent: Agent,
    user_name: str,
    context: Any = None,
    origin: str = "",
    client_ip: str | None = None,
) -> StartedCall:
    """A test call from the agent's dashboard page. No API key: the staff login is the
    credential. ``context`` is what the staff user filled in for the prompt's placeholders,
    checked as a start-call request's is; it may replace the default ``user_name``, while
    ``source`` always says where the call came from."""
    if not agent.is_active:
        raise ApplicationError("This agent is deactivated.", code="agent_inactive", status_code=409)
    context = {"user_name": user_name, **call_context_validate(context), "source": "dashboard"}
    return call_session_start(
        agent=agent, api_key=None, context=context, origin=origin, client_ip=client_ip
    )


def call_token_consume(*, session_id: str, token: str) -> CallSession:
    """Redeem a call token for its session, exactly once, within its lifetime.

    On success the session moves to ``connecting``. Raises ``CallTokenError`` with code
    ``invalid_token``, ``token_expired``, ``token_used`` or ``wrong_session``.
    """
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.CALL_TOKEN_TTL_SECONDS)
    except signing.SignatureExpired as exc:
        call_session_expire_unredeemed()
        raise CallTokenError(
            "The call token has expired; start a new call.", code="token_expired"
        ) from exc
    except signing.BadSignature as exc:
        raise CallTokenError("The call token is not valid.", code="invalid_token") from exc
    if not isinstance(payload, dict) or payload.get("s") != session_id:
        raise CallTokenError("The call token is for another session.", code="wrong_session")

    # The conditional UPDATE is what makes the token single use, even with two racing sockets.
    redeemed = CallSession.objects.filter(
        public_id=session_id,
        token_nonce=payload.get("n"),
        token_used_at__isnull=True,
        status=CallSession.Status.CREATED,
    ).update(token_used_at=timezone.now(), status=CallSession.Status.CONNECTING)
    if not redeemed:
        raise CallTokenError("The call token has already been used.", code="token_used")
    return CallSession.objects.select_related("agent").get(public_id=session_id)


def call_resume_token_issue(*, session_id: str, token_nonce: str, worker: str) -> str:
    """A token the browser keeps during a call to resume it on a new socket if its connection
    drops. It names the media worker that holds the call: only that worker can resume it."""
    return signing.dumps({"s": session_id, "n": token_nonce, "w": worker}, salt=_RESUME_SALT)


def call_resume_token_check(*, session_id: str, token: str) -> tuple[CallSession, str]:
    """The session a resume token is for and the channel of the worker holding the call.

    Raises ``CallTokenError`` with code ``invalid_token``, ``wrong_session`` or ``call_ended``.
    """
    try:
        payload = signing.loads(token, salt=_RESUME_SALT)
    except signing.BadSignature as exc:
        raise CallTokenError("The resume token is not valid.", code="invalid_token") from exc
    if not isinstance(payload, dict) or payload.get("s") != session_id:
        raise CallTokenError("The resume token is for another session.", code="wrong_session")
    session = (
        CallSession.objects.select_related("agent")
        .filter(public_id=session_id, token_nonce=payload.get("n"))
        .first()
    )
    if session is None or not isinstance(payload.get("w"), str):
        raise CallTokenError("The resume token is not valid.", code="invalid_token")
    if session.status != CallSession.Status.ACTIVE:
        raise CallTokenError("The call has already ended; start a new one.", code="call_ended")
    return session, payload["w"]


@transaction.atomic
def call_session_expire_unredeemed() -> int:
    """Mark sessions whose token lifetime passed without a connection as ``expired``."""
    cutoff = timezone.now() - timedelta(seconds=settings.CALL_TOKEN_TTL_SECONDS)
    return CallSession.objects.filter(
        status=CallSession.Status.CREATED, created_at__lt=cutoff
    ).update(status=CallSession.Status.EXPIRED, end_reason="token_expired")


def call_session_activate(*, session_id: str) -> CallSession | None:
    """Media is flowing: the call becomes ``active`` and its clock starts."""
    activated = CallSession.objects.filter(
        public_id=session_id, status=CallSession.Status.CONNECTING
    ).update(status=CallSession.Status.ACTIVE, started_at=timezone.now())
    session = CallSession.objects.filter(public_id=session_id).first()
    if activated and session is not None:
        call_event_emit(session=session, event=WebhookEndpoint.Event.CALL_STARTED)
    return session


_FINAL_STATUSES = (
    CallSession.Status.ENDED,
    CallSession.Status.FAILED,
    CallSession.Status.EXPIRED,
)


@transaction.atomic
def call_session_end(
    *,
    session_id: str,
    reason: str,
    error_message: str = "",
    ended_at: datetime | None = None,
    media_stats: dict | None = None,
) -> CallSession:
    """End a call once: ``ended`` if media ever flowed, else ``failed``; then store its
    transcript (and summary, which sends ``call.ended``). Later calls change nothing.

    The media worker that held the call is its one recorder (it calls this after the call's last
    turn is buffered, with what it measured, ``media_stats``), so the transcript is stored once
    and complete. Others record the end only when no worker can: none took the call, or it
    was lost. ``ended_at`` is for an end recorded late: a dropped connection that was not
    resumed ended the call when it dropped, not when the grace period ran out."""
    session = CallSession.objects.select_for_update().get(public_id=session_id)
    if session.status in _FINAL_STATUSES:
        if media_stats is not None:
            # A worker that was taken for lost hands in its call after all: keep what it
            # measured, and its turns, which the first store could not have had.
            session.media_stats = media_stats
            session.save(update_fields=["media_stats"])
            _transcript_store_enqueue(session_id)
        return session
    if reason == "at_capacity":
        CALLS_REFUSED.labels(reason=reason).inc()
    if media_stats is not None:
        session.media_stats = media_stats
    now = ended_at or timezone.now()
    if session.started_at is not None:
        now = max(now, session.started_at)
    session.ended_at = now
    session.end_reason = reason
    session.error_message = error_message[:2000]
    if session.started_at is not None:
        session.status = CallSession.Status.ENDED
        session.duration_seconds = round((now - session.started_at).total_seconds(), 2)
    else:
        session.status = CallSession.Status.FAILED
        session.duration_seconds = 0.0
    session.save(
        update_fields=[
            "status",
            "ended_at",
            "end_reason",
            "error_message",
            "duration_seconds",
            "media_stats",
        ]
    )
    _transcript_store_enqueue(session_id)
    return session


def _transcript_store_enqueue(session_id: str) -> None:
    from sessions.tasks import call_transcript_store  # tasks import this module

    transaction.on_commit(lambda: call_transcript_store.delay(session_id))


def call_turn_record(*, session_id: str, turn: dict) -> None:
    """Buffer one finished transcript turn during the call (see sessions/turn_buffer.py)."""
    turn_buffer_append(session_id, turn)


def _turn_sources(sources: object) -> list[dict]:
    # What the media worker buffered, kept to the fields the call page shows.
    listed = sources[:10] if isinstance(sources, list) else []
    fields = ("document_id", "title", "chunk_id")
    return [{key: s.get(key) for key in fields} for s in listed if isinstance(s, dict)]


@transaction.atomic
def call_transcript_store(*, session_id: str) -> CallSession:
    """Write a call's buffered turns as TranscriptEntry rows and its conversation stats.

    Idempotent: a turn is identified by (call, seq), so running this again, or after more turns
    arrived, writes each turn once and recomputes the same stats.
    """
    session = CallSession.objects.select_for_update().get(public_id=session_id)
    entries = [
        TranscriptEntry(
            call=session,
            seq=int(turn["seq"]),
            role=turn["role"],
            text=str(turn["text"])[:10000],
            start_ms=max(0, int(turn.get("start_ms") or 0)),
            end_ms=max(0, int(turn.get("end_ms") or 0)),
            latency_ms=turn.get("latency_ms"),
            sources=_turn_sources(turn.get("sources")),
        )
        for turn in turn_buffer_read(session_id)
        if turn.get("role") in TranscriptEntry.Role.values and str(turn.get("text", "")).strip()
    ]
    TranscriptEntry.objects.bulk_create(entries, ignore_conflicts=True)

    session.stats = CallStats.from_turns(
        session.transcript.values_list("role", "latency_ms")
    ).as_json()
    session.save(update_fields=["stats"])
    transaction.on_commit(lambda: turn_buffer_release(session_id))
    # Only calls that had a call.started (media flowed): a summary, and after it call.ended.
    if session.status == CallSession.Status.ENDED:
        call_summary_enqueue(session_id)
    return session


# How long past its own limits a call may look alive before the finaliser ends it.
_ABANDONED_GRACE = timedelta(minutes=2)


def calls_finalize_abandoned() -> list[str]:
    """End calls that nothing will end any more: a token never redeemed, a call still
    `connecting` long after the connect timeout, or still `active` past its agent's maximum
    duration (its web or media process died). Returns the ids of the calls it ended."""
    call_session_expire_unredeemed()
    now = timezone.now()
    stuck_connecting = CallSession.objects.filter(
        status=CallSession.Status.CONNECTING,
        token_used_at__lt=now
        - timedelta(seconds=settings.CALL_CONNECT_TIMEOUT_SECONDS)
        - _ABANDONED_GRACE,
    ).values_list("public_id", flat=True)
    ended = []
    for session_id in stuck_connecting:
        call_session_end(
            session_id=session_id, reason="error", error_message="Abandoned while connecting."
        )
        ended.append(session_id)
    for session in CallSession.objects.filter(status=CallSession.Status.ACTIVE).select_related(
        "agent"
    ):
        limit = timedelta(seconds=session.agent.max_duration_seconds) + _ABANDONED_GRACE
        if session.started_at and now - session.started_at > limit:
            call_session_end(
                session_id=session.public_id,
                reason="error",
                error_message="The call's processes stopped before it ended.",
            )
            ended.append(session.public_id)
    return ended
