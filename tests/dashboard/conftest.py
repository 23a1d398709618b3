"""Fixtures of the dashboard's page tests: a staff client with every permission, an ended call
with a transcript, and the webhook tests' receiver (an HTTP server that records requests)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from sessions.models import CallSession, TranscriptEntry
from sessions.services import call_session_start
from tests.agents.test_webhooks import receiver  # noqa: F401  (a fixture)
from tests.factories import make_staff_user


@pytest.fixture
def staff(client):
    # A superuser: every permission (the tests of each permission make users without them).
    client.force_login(make_staff_user("staff", superuser=True))
    return client


@pytest.fixture
def call(agent):
    session = call_session_start(agent=agent, api_key=None, context={"user_name": "Jane"}).session
    now = timezone.now()
    CallSession.objects.filter(pk=session.pk).update(
        status="ended",
        end_reason="user_hangup",
        started_at=now,
        ended_at=now,
        duration_seconds=42.0,
    )
    TranscriptEntry.objects.create(
        call=session, seq=0, role="agent", text="Hello there", start_ms=0, end_ms=900
    )
    TranscriptEntry.objects.create(
        call=session,
        seq=1,
        role="user",
        text="When do you open on Saturday?",
        start_ms=1500,
        end_ms=3000,
    )
    TranscriptEntry.objects.create(
        call=session,
        seq=2,
        role="agent",
        text="At nine.",
        start_ms=3700,
        end_ms=4500,
        latency_ms=700,
    )
    return CallSession.objects.get(pk=session.pk)
