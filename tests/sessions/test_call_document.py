"""A call as one document: the dashboard's JSON export and the data of its webhook events come
from the same builder, the webhook form without what only operators see."""

from __future__ import annotations

import pytest
from django.utils import timezone

from sessions.models import CallSession, TranscriptEntry
from sessions.selectors import call_document_build
from sessions.services import call_session_start
from sessions.stats import CallStats

pytestmark = pytest.mark.django_db

OPERATOR_ONLY = {"error_message", "origin", "client_ip", "media_stats"}


@pytest.fixture
def ended_call(agent):
    session = call_session_start(
        agent=agent,
        api_key=None,
        context={"user_name": "Jane"},
        origin="https://shop.example.com",
        client_ip="203.0.113.7",
    ).session
    now = timezone.now()
    for seq, (role, latency) in enumerate([("agent", None), ("user", None), ("agent", 640)]):
        TranscriptEntry.objects.create(
            call=session,
            seq=seq,
            role=role,
            text=f"turn {seq}",
            start_ms=seq * 1000,
            end_ms=seq * 1000 + 800,
            latency_ms=latency,
        )
    stats = CallStats.from_turns([("agent", None), ("user", None), ("agent", 640)]).as_json()
    CallSession.objects.filter(pk=session.pk).update(
        status="ended",
        end_reason="user_hangup",
        error_message="the caller's network dropped twice",
        started_at=now,
        ended_at=now,
        duration_seconds=12.5,
        stats=stats,
        media_stats={"audio_in_seconds": 12.0},
    )
    return CallSession.objects.get(pk=session.pk)


def test_the_webhook_document_is_the_export_without_what_only_operators_see(ended_call):
    export = call_document_build(call=ended_call, for_webhook=False)
    event = call_document_build(call=ended_call, for_webhook=True)

    assert set(export) >= OPERATOR_ONLY and not OPERATOR_ONLY & set(event)
    assert export["client_ip"] == "203.0.113.7" and "203.0.113.7" not in str(event)
    assert "network dropped" not in str(event) and "shop.example.com" not in str(event)
    assert export["agent"] == {"id": ended_call.agent.public_id, "name": ended_call.agent.name}
    assert event["agent_id"] == ended_call.agent.public_id
    shared = set(event) - {"agent_id"}
    assert {name: event[name] for name in shared if name != "transcript"} == {
        name: export[name] for name in shared if name != "transcript"
    }
    assert event["transcript"] == [
        {key: turn[key] for key in turn if key != "seq"} for turn in export["transcript"]
    ]
    assert [turn["seq"] for turn in export["transcript"]] == [0, 1, 2]
    assert event["stats"]["latency_ms"]["p50"] == 640


def test_before_the_transcript_is_stored_the_event_has_empty_stats_and_the_export_zeros(agent):
    session = call_session_start(agent=agent, api_key=None).session
    call = CallSession.objects.get(pk=session.pk)
    assert call_document_build(call=call, for_webhook=True)["stats"] == {}
    assert call_document_build(call=call, for_webhook=False)["stats"]["turns"] == 0
    assert call_document_build(call=call, for_webhook=True)["transcript"] == []
