"""A call's response latency, written by the transcript store, read back where people see it:
the call page and the CSV export (before, both read a key that was never written and showed
none), the JSON export and the call.ended payload (the documented shape)."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from sessions.models import CallSession
from sessions.services import call_session_start, call_transcript_store, call_turn_record
from sessions.stats import CallStats
from tests.factories import make_staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered_call(agent):
    session = call_session_start(agent=agent, api_key=None).session
    now = timezone.now()
    CallSession.objects.filter(pk=session.pk).update(
        status="ended", end_reason="user_hangup", started_at=now, ended_at=now, duration_seconds=9
    )
    turns = [
        ("user", "Do you open on Saturday?", None),
        ("agent", "Yes, from eight.", 700),
        ("user", "And Sunday?", None),
        ("agent", "Closed on Sundays.", 900),
        ("user", "Thanks.", None),
        ("agent", "You are welcome.", 1300),
    ]
    for seq, (role, text, latency) in enumerate(turns):
        turn = {"seq": seq, "role": role, "text": text, "start_ms": seq * 1000, "end_ms": 900}
        if latency is not None:
            turn["latency_ms"] = latency
        call_turn_record(session_id=session.public_id, turn=turn)
    call_transcript_store(session_id=session.public_id)
    return CallSession.objects.get(pk=session.pk)


def test_the_store_writes_the_documented_shape(answered_call):
    assert answered_call.stats == {
        "turns": 6,
        "user_turns": 3,
        "agent_turns": 3,
        "latency_ms": {"p50": 900, "p95": 1300, "mean": 967},
    }
    assert CallStats.from_json(answered_call.stats).as_json() == answered_call.stats


def test_the_call_page_shows_p50_and_p95_response_latency(client, answered_call):
    client.force_login(make_staff_user(superuser=True))
    page = client.get(f"/dashboard/calls/{answered_call.public_id}/").content.decode()
    assert "p50 0.9 s, p95 1.3 s" in page


def test_the_csv_export_has_p50_and_p95_response_latency(client, answered_call):
    client.force_login(make_staff_user(superuser=True))
    response = client.get("/dashboard/calls/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    [row] = [r for r in rows if r["session_id"] == answered_call.public_id] or rows
    assert (row["turns"], row["p50_latency_ms"], row["p95_latency_ms"]) == ("6", "900", "1300")


def test_a_call_without_a_stored_transcript_shows_no_latency(client, agent):
    session = call_session_start(agent=agent, api_key=None).session
    client.force_login(make_staff_user(superuser=True))
    page = client.get(f"/dashboard/calls/{session.public_id}/").content.decode()
    assert "Response latency" not in page
    assert CallStats.from_json({}) == CallStats()
