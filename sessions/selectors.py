from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Avg, Count, F, FloatField, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from agents.models import Agent
from sessions.models import CallSession, MediaWorkerRecord, TranscriptEntry
from sessions.stats import CallStats
from voice.protocol import CallSpec


def public_base_url(request) -> str:
    """The http(s) base URL browsers reach this server at: PUBLIC_BASE_URL, else the request's own
    (X-Forwarded-Proto/-Host count only with TRUST_PROXY)."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL
    return f"{request.scheme}://{request.get_host()}"


def call_websocket_url(request, session_id: str, token: str) -> str:
    """``ws(s)://host/ws/<session_id>?token=…``. The token rides in the URL as well as in the
    ``auth`` message because the seed's browser code attaches ``ws.onopen`` only after awaiting
    the microphone: on a fast network the socket is open by then and ``auth`` is never sent."""
    base = public_base_url(request)
    if base.startswith("https://"):
        ws_base = "wss://" + base.removeprefix("https://")
    else:
        ws_base = "ws://" + base.removeprefix("http://")
    return f"{ws_base}/ws/{session_id}?{urlencode({'token': token})}"


def call_start_response(request, started) -> dict:
    """The start-call answer (``session_id``, ``token``, ``websocket_url``, and ``ice_servers``
    when the server has any), the same from the API, the demo's backend and the dashboard.
    ``started``: a ``sessions.services.StartedCall``."""
    body = {
        "session_id": started.session.public_id,
        "token": started.token,
        "websocket_url": call_websocket_url(request, started.session.public_id, started.token),
    }
    if settings.ICE_SERVERS:
        body["ice_servers"] = settings.ICE_SERVERS
    return body


def client_ip_get(request) -> str | None:
    # DRF's rule (X-Forwarded-For only with NUM_PROXIES), so throttling and records agree.
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return None


def call_sessions_live(**filters):
    """Calls that hold a place now: a token issued and still redeemable, a browser negotiating,
    or media flowing. What the concurrent-call limits count."""
    token_cutoff = timezone.now() - timedelta(seconds=settings.CALL_TOKEN_TTL_SECONDS)
    return CallSession.objects.filter(
        Q(status=CallSession.Status.CREATED, created_at__gte=token_cutoff)
        | Q(status__in=[CallSession.Status.CONNECTING, CallSession.Status.ACTIVE]),
        **filters,
    )


def call_sessions_in_progress_exist() -> bool:
    """Whether any call is connecting or has media flowing: what a summary waits out where it
    would take the model from live calls (sessions/summaries.py)."""
    return CallSession.objects.filter(
        status__in=[CallSession.Status.CONNECTING, CallSession.Status.ACTIVE]
    ).exists()


def call_sessions_summary_overdue(
    *, ended_before: datetime, ended_after: datetime, limit: int
) -> list[str]:
    """Ended calls whose transcript is stored (``stats`` written) and that have no outcome yet,
    ended in that window, oldest first: their summary task was lost (a restart, a broker
    outage), and with it their ``call.ended``."""
    return list(
        CallSession.objects.filter(
            status=CallSession.Status.ENDED,
            outcome="",
            ended_at__lt=ended_before,
            ended_at__gte=ended_after,
        )
        .exclude(stats={})
        .order_by("ended_at")
        .values_list("public_id", flat=True)[:limit]
    )


def call_session_get(*, public_id: str) -> CallSession | None:
    return (
        CallSession.objects.select_related("agent", "api_key").filter(public_id=public_id).first()
    )


def call_transcript_list(*, call: CallSession) -> list[TranscriptEntry]:
    return list(call.transcript.order_by("seq"))


def agent_list_with_call_count() -> QuerySet[Agent]:
    """Agents, active ones first, each with ``call_count``: how many calls it has had."""
    return Agent.objects.annotate(call_count=Count("calls")).order_by("-is_active", "name")


# CallSpec fields that come from the call, not from an agent field of the same name.
_SPEC_FROM_CALL = {"session_id", "agent_id", "context"}


def call_session_in_use(*, public_id: str) -> bool:
    """Whether the call is connecting or live (a second socket with its token is refused)."""
    return CallSession.objects.filter(
        public_id=public_id,
        status__in=[CallSession.Status.CONNECTING, CallSession.Status.ACTIVE],
    ).exists()


def call_spec_build(session: CallSession) -> CallSpec:
    """Everything a media worker needs to run this call."""
    return agent_spec_build(
        agent=session.agent, session_id=session.public_id, context=dict(session.context)
    )


def agent_spec_build(*, agent: Agent, session_id: str, context: dict) -> CallSpec:
    """A conversation with ``agent``: each agent setting by its name (a CallSpec field is the
    Agent field it carries; tests hold the two lists together). Calls and the text chat alike."""
    settings_of_agent = {
        spec_field.name: getattr(agent, spec_field.name)
        for spec_field in dataclass_fields(CallSpec)
        if spec_field.name not in _SPEC_FROM_CALL
    }
    return CallSpec(
        session_id=session_id, agent_id=agent.public_id, context=context, **settings_of_agent
    )


# --- call history and analytics (dashboard) -------------------------------------------------------


@dataclass(frozen=True)
class CallFilters:
    agent: str = ""  # public id
    status: str = ""
    end_reason: str = ""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    q: str = ""  # words in the transcript or the summary


def calls_filter(filters: CallFilters):
    """Calls, newest first, narrowed by the dashboard's filters (each one uses an index)."""
    calls = CallSession.objects.select_related("agent").order_by("-created_at", "-id")
    if filters.agent:
        calls = calls.filter(agent__public_id=filters.agent)
    if filters.status:
        calls = calls.filter(status=filters.status)
    if filters.end_reason:
        calls = calls.filter(end_reason=filters.end_reason)
    if filters.outcome:
        calls = calls.filter(outcome=filters.outcome)
    if filters.date_from:
        calls = calls.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        calls = calls.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.q.strip():
        # With LIMIT 25, PostgreSQL likes to walk every call newest first and probe its
        # transcript, which is slow for a rare word (~300 ms at 100k calls, bench/dashboard.py).
        # Sorting on an expression no index has makes it find the matching turns through the
        # GIN index first and sort just their calls.
        q = filters.q.strip()
        calls = calls.filter(
            Q(pk__in=_transcript_matches(q).values("call_id"))
            | Q(pk__in=_summary_matches(q).values("pk"))
        ).order_by((F("created_at") + timedelta(0)).desc(), "-id")
    return calls


def _transcript_matches(q: str):
    if connection.vendor == "postgresql":
        # Written out so that it matches the GIN index on to_tsvector('english', text)
        # (migration 0002); websearch syntax: "quoted phrases", -exclusions, or.
        return TranscriptEntry.objects.extra(
            where=["to_tsvector('english', text) @@ websearch_to_tsquery('english', %s)"],
            params=[q],
        )
    return TranscriptEntry.objects.filter(text__icontains=q)


def _summary_matches(q: str):
    if connection.vendor == "postgresql":
        # Matches the GIN index on to_tsvector('english', summary) (migration 0005).
        return CallSession.objects.extra(
            where=["to_tsvector('english', summary) @@ websearch_to_tsquery('english', %s)"],
            params=[q],
        )
    return CallSession.objects.filter(summary__icontains=q)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def call_end_reasons() -> list[str]:
    # order_by() first: the model's default ordering would join the DISTINCT and return a
    # row per call (100k rows for a filter dropdown; bench/dashboard.py caught it).
    reasons = CallSession.objects.order_by("end_reason").values_list("end_reason", flat=True)
    return [reason for reason in reasons.distinct() if reason]


# What only operators see: where a call came from, what failed, how its media went. A customer's
# webhook receiver gets the call without them.
_OPERATOR_ONLY = ("error_message", "origin", "client_ip", "media_stats")


def call_document_build(*, call: CallSession, for_webhook: bool) -> dict:
    """A call as one JSON document, built here only: the dashboard's export
    (``for_webhook=False``, for archiving or analysis) and the ``data`` of the call's webhook
    events (``for_webhook=True``).

    The webhook form leaves out what only operators need, and keeps the shape the README's
    Webhooks section promises receivers: ``agent_id``, turns without ``seq``, and empty ``stats``
    until the transcript is stored (the export shows zeros, as it always has)."""
    turns = [
        {
            "seq": turn.seq,
            "role": turn.role,
            "text": turn.text,
            "start_ms": turn.start_ms,
            "end_ms": turn.end_ms,
            "latency_ms": turn.latency_ms,
        }
        for turn in call.transcript.order_by("seq")
    ]
    document = {
        "session_id": call.public_id,
        "agent": {"id": call.agent.public_id, "name": call.agent.name},
        "status": call.status,
        "end_reason": call.end_reason,
        "error_message": call.error_message,
        "origin": call.origin,
        "client_ip": call.client_ip,
        "context": call.context,
        "created_at": _iso(call.created_at),
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        # Written after the transcript, before call.ended (sessions/summaries.py): empty until.
        "outcome": call.outcome,
        "summary": call.summary,
        "stats": CallStats.from_json(call.stats).as_json(),
        "media_stats": call.media_stats,
        "transcript": turns,
    }
    if not for_webhook:
        return document
    for name in _OPERATOR_ONLY:
        del document[name]
    agent = document.pop("agent")
    return {
        **document,
        "agent_id": agent["id"],
        "stats": document["stats"] if call.stats else {},
        "transcript": [{key: turn[key] for key in turn if key != "seq"} for turn in turns],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class _PercentileCont(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float):
        super().__init__(expression, fraction=float(fraction))


def _percentiles(queryset, field: str, fractions: tuple[float, ...]) -> list[float | None]:
    """Percentiles computed in the database on PostgreSQL; in Python elsewhere (SQLite is the
    laptop setting, with laptop-sized data)."""
    if connection.vendor == "postgresql":
        row = queryset.aggregate(
            **{f"p{i}": _PercentileCont(field, f) for i, f in enumerate(fractions)}
        )
        return [row[f"p{i}"] for i in range(len(fractions))]
    values = sorted(v for v in queryset.values_list(field, flat=True) if v is not None)
    if not values:
        return [None for _ in fractions]
    return [values[min(len(values) - 1, round(f * (len(values) - 1)))] for f in fractions]


def call_analytics(*, date_from: date, date_to: date, agent: str = "") -> dict:
    """Figures for the analytics page over a date range (inclusive)."""
    calls = CallSession.objects.filter(
        created_at__gte=_day_start(date_from),
        created_at__lt=_day_start(date_to + timedelta(days=1)),
    )
    if agent:
        calls = calls.filter(agent__public_id=agent)
    per_day = {
        row["day"]: row
        for row in calls.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(calls=Count("id"), ended=Count("id", filter=Q(status="ended")))
        .order_by("day")
    }
    days = []
    day = date_from
    while day <= date_to:
        row = per_day.get(day, {})
        days.append({"day": day.isoformat(), "calls": row.get("calls", 0)})
        day += timedelta(days=1)
    ended = calls.filter(status=CallSession.Status.ENDED, duration_seconds__isnull=False)
    totals = ended.aggregate(avg=Avg("duration_seconds"))
    (p95_duration,) = _percentiles(ended, "duration_seconds", (0.95,))
    latencies = TranscriptEntry.objects.filter(
        call__in=calls.values("pk"), role=TranscriptEntry.Role.AGENT, latency_ms__isnull=False
    )
    p50_latency, p95_latency = _percentiles(latencies, "latency_ms", (0.5, 0.95))
    reasons = list(
        calls.exclude(end_reason="")
        .values("end_reason")
        .annotate(calls=Count("id"))
        .order_by("-calls")
    )
    agents = list(
        calls.values("agent__public_id", "agent__name")
        .annotate(
            calls=Count("id"),
            avg_duration=Avg("duration_seconds", filter=Q(status="ended")),
        )
        .order_by("-calls")
    )
    return {
        "days": days,
        "calls": sum(d["calls"] for d in days),
        "avg_duration_seconds": totals["avg"],
        "p95_duration_seconds": p95_duration,
        "p50_latency_ms": p50_latency,
        "p95_latency_ms": p95_latency,
        "end_reasons": reasons,
        "agents": agents,
    }


# --- media workers (sessions/workers.py keeps them up to date) ------------------------------------

# A worker reports itself every 2 s: one not heard from for this long is dead.
MEDIA_WORKER_GONE_AFTER_SECONDS = 10.0


def media_worker_seen_since() -> datetime:
    return timezone.now() - timedelta(seconds=MEDIA_WORKER_GONE_AFTER_SECONDS)


def media_workers_live() -> list[MediaWorkerRecord]:
    """Workers heard from lately, with the calls each would take now (``free``: none while
    draining, else what its admission allows)."""
    workers = list(
        MediaWorkerRecord.objects.filter(seen_at__gte=media_worker_seen_since()).order_by("name")
    )
    for worker in workers:
        if worker.draining:
            worker.free = 0
    return workers


def media_workers_all_full() -> bool:
    """Whether the workers known to be alive would all decline a call now (False when none is
    known: the call is offered all the same, and the dispatch timeout decides)."""
    workers = media_workers_live()
    return bool(workers) and not any(worker.free for worker in workers)


def media_worker_calls_beside(*, name: str, host: str) -> int:
    """Calls the other live media workers on ``host`` hold: they share its cores."""
    workers = MediaWorkerRecord.objects.filter(host=host, seen_at__gte=media_worker_seen_since())
    return sum(workers.exclude(name=name).values_list("calls", flat=True))
