"""The call pages (dashboard/views/calls.py): history, filters and search, one call, exports;
and how the dashboard writes times (dashboard/templatetags/dashboard_format.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dashboard.templatetags.dashboard_format import EMPTY, clock, duration, latency
from sessions.models import CallSession, TranscriptEntry
from sessions.services import call_session_start
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_the_call_history_filters_and_searches_transcripts(staff, agent, call):
    other = AgentFactory(name="Other")
    call_session_start(agent=other, api_key=None)

    def listed(query: str) -> list[str]:
        return [
            c.public_id for c in staff.get(f"/dashboard/calls/?{query}").context["page"].object_list
        ]

    assert len(listed("")) == 2
    assert listed(f"agent={agent.public_id}") == [call.public_id]
    assert listed("status=ended") == [call.public_id]
    assert listed("end_reason=user_hangup") == [call.public_id]
    assert listed("q=saturday") == [call.public_id]
    assert listed("q=sunday") == []
    today = timezone.localdate()
    assert len(listed(f"from={today}&to={today}")) == 2
    assert listed(f"to={today - timedelta(days=1)}") == []
    assert len(listed("from=not-a-date&status=bogus")) == 2  # bad filters are ignored


def test_the_call_page_shows_the_timeline_context_and_latency(staff, call):
    page = staff.get(f"/dashboard/calls/{call.public_id}/").content.decode()
    assert "When do you open on Saturday?" in page and "0.7 s to answer" in page
    assert "&quot;user_name&quot;: &quot;Jane&quot;" in page and "user_hangup" in page


def test_exports(staff, call):
    exported = staff.get(f"/dashboard/calls/{call.public_id}/export.json").json()
    assert exported["session_id"] == call.public_id and len(exported["transcript"]) == 3
    assert exported["transcript"][2]["latency_ms"] == 700
    response = staff.get("/dashboard/calls/export.csv?status=ended")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "session_id" and [r[0] for r in rows[1:]] == [call.public_id]


def test_the_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(staff, call):
    evil_agent = AgentFactory(name="=cmd|' /C calc'!A0")
    evil = call_session_start(agent=evil_agent, api_key=None).session
    CallSession.objects.filter(pk=evil.pk).update(
        origin='=HYPERLINK("http://evil")', error_message="@SUM(1+1)*cmd|' /C calc'!A0"
    )
    for prefix in ("+", "-", "\t", "\r"):
        CallSession.objects.create(
            agent=evil_agent, origin=f"{prefix}1+1", token_nonce=f"nonce{ord(prefix)}"
        )
    response = staff.get("/dashboard/calls/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_id = {row["session_id"]: row for row in rows}
    assert by_id[evil.public_id]["origin"] == '\'=HYPERLINK("http://evil")'
    assert by_id[evil.public_id]["agent_name"] == "'=cmd|' /C calc'!A0"
    assert by_id[evil.public_id]["error_message"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert sorted(r["origin"] for r in rows if r["origin"].startswith("'")) == sorted(
        ['\'=HYPERLINK("http://evil")', "'+1+1", "'-1+1", "'\t1+1", "'\r1+1"]
    )
    # Harmless cells are left as they were.
    assert by_id[call.public_id]["agent_name"] == call.agent.name
    assert by_id[call.public_id]["duration_seconds"] == "42.0"


# --- times ------------------------------------------------------------------------------------


def test_time_filters():
    assert [clock(ms) for ms in (0, 999, 17503, 61_000, 3_725_000)] == [
        "0:00",
        "0:00",
        "0:17",
        "1:01",
        "1:02:05",
    ]
    assert [latency(ms) for ms in (700, 1249, 17503, 59_960, 125_000)] == [
        "0.7 s",
        "1.2 s",
        "17.5 s",
        "1:00",
        "2:05",
    ]
    assert [duration(s) for s in (42.0, 42.6, 600, None, "bogus", -1)] == [
        "0:42",
        "0:43",
        "10:00",
        EMPTY,
        EMPTY,
        EMPTY,
    ]


def test_call_pages_show_turn_times_as_minutes_and_dates_with_their_time_zone(
    staff, call, settings
):
    TranscriptEntry.objects.create(
        call=call, seq=3, role="user", text="Thanks", start_ms=17503, end_ms=18000
    )
    CallSession.objects.filter(pk=call.pk).update(
        created_at=datetime(2026, 12, 2, 14, 5, 9, tzinfo=UTC), duration_seconds=125.0
    )
    detail = staff.get(f"/dashboard/calls/{call.public_id}/").content.decode()
    assert ">0:17</span>" in detail and "17503 ms" not in detail.replace('title="17503 ms', "")
    assert "0.7 s to answer" in detail and ">2:05</dd>" in detail
    assert "2026-12-02 14:05:09 UTC" in detail
    listing = staff.get("/dashboard/calls/").content.decode()
    assert "2026-12-02 14:05 UTC" in listing and ">2:05</td>" in listing

    settings.TIME_ZONE = "Asia/Tokyo"
    listing = staff.get("/dashboard/calls/").content.decode()
    assert "2026-12-02 23:05 JST" in listing and "Days and times are in JST" in listing
