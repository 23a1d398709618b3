"""Calls: the history with its filters and transcript search, one call's page and recording, and
the exports (one call as JSON, the filtered list as CSV)."""

from __future__ import annotations

import csv
import json
import re

from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse

from agents.knowledge.selectors import knowledge_document_ids_existing
from agents.selectors import agent_list
from dashboard.access import VIEW_CALLS, staff_required
from dashboard.shortcuts import date_param, or_404
from sessions.models import CallSession
from sessions.selectors import (
    CallFilters,
    call_document_build,
    call_end_reasons,
    call_session_get,
    call_transcript_list,
    calls_filter,
)
from sessions.stats import CallStats

PAGE_SIZE = 50


def _filters(request) -> CallFilters:
    get = request.GET
    return CallFilters(
        agent=get.get("agent", ""),
        status=get.get("status", "") if get.get("status") in CallSession.Status.values else "",
        end_reason=get.get("end_reason", ""),
        outcome=get.get("outcome", "") if get.get("outcome") in CallSession.Outcome.values else "",
        date_from=date_param(get.get("from")),
        date_to=date_param(get.get("to")),
        q=get.get("q", "")[:200],
    )


@staff_required(perm=VIEW_CALLS)
def call_list(request):
    filters = _filters(request)
    page = Paginator(calls_filter(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/call_list.html",
        {
            "page": page,
            "filters": filters,
            "agents": agent_list(),
            "statuses": CallSession.Status.values,
            "outcomes": CallSession.Outcome.choices,
            "end_reasons": call_end_reasons(),
            "query": query.urlencode(),
            "nav": "calls",
        },
    )


class _Echo:
    def write(self, value):
        return value


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"); origins, agent names
# and error texts come from callers and API clients.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A cell a spreadsheet shows as text: a leading quote defuses what would start a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@staff_required(perm=VIEW_CALLS)
def call_list_csv(request):
    """The filtered list as CSV, streamed: no size limit, no memory spike."""
    calls = calls_filter(_filters(request)).iterator(chunk_size=2000)
    writer = csv.writer(_Echo())
    header = [
        "session_id",
        "agent_id",
        "agent_name",
        "status",
        "end_reason",
        "created_at",
        "started_at",
        "ended_at",
        "duration_seconds",
        "origin",
        "turns",
        "p50_latency_ms",
        "p95_latency_ms",
        "error_message",
        "outcome",
        "summary",
    ]

    def rows():
        yield writer.writerow(header)
        for call in calls:
            stats = CallStats.from_json(call.stats)
            row = [
                call.public_id,
                call.agent.public_id,
                call.agent.name,
                call.status,
                call.end_reason,
                call.created_at.isoformat(),
                call.started_at.isoformat() if call.started_at else "",
                call.ended_at.isoformat() if call.ended_at else "",
                call.duration_seconds if call.duration_seconds is not None else "",
                call.origin,
                stats.turns if call.stats else "",
                "" if stats.p50_latency_ms is None else stats.p50_latency_ms,
                "" if stats.p95_latency_ms is None else stats.p95_latency_ms,
                call.error_message,
                call.outcome,
                call.summary,
            ]
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="calls.csv"'
    return response


@staff_required(perm=VIEW_CALLS)
def call_detail(request, public_id: str):
    call = or_404(call_session_get(public_id=public_id))
    transcript = call_transcript_list(call=call)
    return render(
        request,
        "dashboard/call_detail.html",
        {
            "call": call,
            "stats": CallStats.from_json(call.stats),
            "transcript": _with_documents(call, transcript),
            "context_json": json.dumps(call.context, indent=2, ensure_ascii=False),
            "nav": "calls",
        },
    )


def _with_documents(call: CallSession, transcript: list) -> list:
    """The turns, each agent turn with ``documents``: its sources, each document once, with its
    title and, while the agent still has it, the URL of its page."""
    cited = {
        source.get("document_id")
        for turn in transcript
        for source in turn.sources
        if isinstance(source, dict) and isinstance(source.get("document_id"), str)
    }
    existing = knowledge_document_ids_existing(agent_id=call.agent_id, public_ids=list(cited))
    for turn in transcript:
        documents: dict[str, dict] = {}
        for source in turn.sources:
            document_id = source.get("document_id") if isinstance(source, dict) else None
            if not isinstance(document_id, str) or document_id in documents:
                continue
            url = ""
            if document_id in existing:
                url = reverse(
                    "dashboard:knowledge_document", args=[call.agent.public_id, document_id]
                )
            documents[document_id] = {"title": source.get("title") or document_id, "url": url}
        turn.documents = list(documents.values())
    return transcript


@staff_required(perm=VIEW_CALLS)
def call_recording(request, public_id: str):
    """The recording, to staff only: recordings are never served from a public URL."""
    call = or_404(call_session_get(public_id=public_id))
    if not call.recording:
        raise Http404("This call has no recording.")
    try:
        handle = call.recording.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The recording file is gone.") from exc
    return _ranged_file_response(
        request, handle, content_type="audio/ogg", filename=f"{call.public_id}.ogg"
    )


# At most 18 digits: larger positions are past any file, and int() refuses very long ones.
RANGE_HEADER = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")


def _ranged_file_response(request, handle, *, content_type: str, filename: str):
    """A file answering a single `Range: bytes=` request with 206, as an <audio> element needs
    to seek in a long recording (FileResponse alone always sends the whole file from byte 0).
    Multi-range and invalid headers (malformed, overlong numbers, last byte before the first) get
    the whole file, as RFC 9110 allows."""
    size = handle.size
    match = RANGE_HEADER.match(request.headers.get("Range", "").strip())
    first, last = match.groups() if match else ("", "")
    if not (first or last) or (first and last and int(last) < int(first)):
        response = FileResponse(handle, content_type=content_type, filename=filename)
        response["Accept-Ranges"] = "bytes"
        return response
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle.seek(start)
    if end == size - 1:
        # "bytes=N-", what browsers send: stream the rest rather than hold it in memory.
        response = FileResponse(handle, status=206, content_type=content_type)
    else:
        body = handle.read(end - start + 1)
        handle.close()
        response = HttpResponse(body, status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@staff_required(perm=VIEW_CALLS)
def call_export(request, public_id: str):
    call = or_404(call_session_get(public_id=public_id))
    response = JsonResponse(
        call_document_build(call=call, for_webhook=False), json_dumps_params={"indent": 2}
    )
    response["Content-Disposition"] = f'attachment; filename="{call.public_id}.json"'
    return response
