"""Post-call storage: buffered turns become TranscriptEntry rows, once, by a real Celery worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.signals import task_postrun
from django.utils import timezone

from sessions import tasks
from sessions.models import CallSession, TranscriptEntry
from sessions.services import (
    call_session_activate,
    call_session_end,
    call_session_start,
    call_token_consume,
    call_transcript_store,
    call_turn_record,
    calls_finalize_abandoned,
)

TURNS = [
    {"seq": 0, "role": "agent", "text": "Hello! How can I help?", "start_ms": 200, "end_ms": 1900},
    {
        "seq": 1,
        "role": "user",
        "text": "What are your opening hours?",
        "start_ms": 2500,
        "end_ms": 4100,
    },
    {
        "seq": 2,
        "role": "agent",
        "text": "We open at nine.",
        "start_ms": 4600,
        "end_ms": 5800,
        "latency_ms": 500,
    },
    {"seq": 3, "role": "user", "text": "Thanks, goodbye.", "start_ms": 6400, "end_ms": 7300},
    {
        "seq": 4,
        "role": "agent",
        "text": "Goodbye!",
        "start_ms": 8000,
        "end_ms": 8700,
        "latency_ms": 700,
    },
]


def active_call(agent, api_key) -> CallSession:
    started = call_session_start(agent=agent, api_key=api_key)
    call_token_consume(session_id=started.session.public_id, token=started.token)
    return call_session_activate(session_id=started.session.public_id)


@pytest.mark.django_db
def test_storing_writes_each_turn_and_the_latency_stats(agent, secret_key):
    session = active_call(agent, secret_key[0])
    for turn in TURNS:
        call_turn_record(session_id=session.public_id, turn=turn)

    stored = call_transcript_store(session_id=session.public_id)

    rows = list(TranscriptEntry.objects.filter(call=session).values_list("seq", "role", "text"))
    assert rows == [(t["seq"], t["role"], t["text"]) for t in TURNS]
    assert stored.stats == {
        "turns": 5,
        "user_turns": 2,
        "agent_turns": 3,
        "latency_ms": {"p50": 500, "p95": 700, "mean": 600},
    }


@pytest.mark.django_db
def test_storing_twice_changes_nothing_and_later_turns_are_added(agent, secret_key):
    session = active_call(agent, secret_key[0])
    for turn in TURNS[:3]:
        call_turn_record(session_id=session.public_id, turn=turn)
    call_transcript_store(session_id=session.public_id)
    first = list(TranscriptEntry.objects.filter(call=session).values())
    call_transcript_store(session_id=session.public_id)
    assert list(TranscriptEntry.objects.filter(call=session).values()) == first

    for turn in TURNS[3:]:
        call_turn_record(session_id=session.public_id, turn=turn)
    call_transcript_store(session_id=session.public_id)
    assert TranscriptEntry.objects.filter(call=session).count() == 5


@pytest.mark.django_db
def test_turns_without_text_or_with_an_unknown_role_are_not_stored(agent, secret_key):
    session = active_call(agent, secret_key[0])
    call_turn_record(session_id=session.public_id, turn={**TURNS[0], "text": "  "})
    call_turn_record(session_id=session.public_id, turn={**TURNS[1], "role": "system"})
    call_turn_record(session_id=session.public_id, turn=TURNS[2])
    call_transcript_store(session_id=session.public_id)
    assert list(TranscriptEntry.objects.filter(call=session).values_list("seq", flat=True)) == [2]


@pytest.mark.django_db
def test_ending_a_call_stores_its_transcript(agent, secret_key, django_capture_on_commit_callbacks):
    session = active_call(agent, secret_key[0])
    for turn in TURNS:
        call_turn_record(session_id=session.public_id, turn=turn)
    with django_capture_on_commit_callbacks(execute=True):
        call_session_end(session_id=session.public_id, reason="user_hangup")
    assert TranscriptEntry.objects.filter(call=session).count() == 5


@pytest.mark.django_db
def test_ending_is_recorded_once(agent, secret_key):
    session = active_call(agent, secret_key[0])
    first = call_session_end(session_id=session.public_id, reason="user_hangup")
    again = call_session_end(session_id=session.public_id, reason="error", error_message="late")
    assert (again.end_reason, again.ended_at, again.error_message) == (
        "user_hangup",
        first.ended_at,
        "",
    )


@pytest.mark.django_db
def test_the_finaliser_ends_calls_that_nothing_will_end(agent, secret_key, settings):
    settings.CALL_TOKEN_TTL_SECONDS = 60
    long_ago = timezone.now() - timedelta(hours=3)

    never_redeemed = call_session_start(agent=agent, api_key=secret_key[0]).session
    stuck_connecting = call_session_start(agent=agent, api_key=secret_key[0])
    call_token_consume(session_id=stuck_connecting.session.public_id, token=stuck_connecting.token)
    orphaned = active_call(agent, secret_key[0])
    call_turn_record(session_id=orphaned.public_id, turn=TURNS[1])
    healthy = active_call(agent, secret_key[0])

    CallSession.objects.filter(pk=never_redeemed.pk).update(created_at=long_ago)
    CallSession.objects.filter(pk=stuck_connecting.session.pk).update(token_used_at=long_ago)
    CallSession.objects.filter(pk=orphaned.pk).update(started_at=long_ago)

    tasks.calls_finalize_abandoned.delay()

    def status(session):
        return CallSession.objects.values_list("status", "end_reason").get(pk=session.pk)

    assert status(never_redeemed) == ("expired", "token_expired")
    assert status(stuck_connecting.session) == ("failed", "error")
    assert status(orphaned) == ("ended", "error")
    assert status(healthy) == ("active", "")
    assert TranscriptEntry.objects.filter(call=orphaned).count() == 1
    assert calls_finalize_abandoned() == []


@pytest.fixture
def celery_worker(redis_url, settings):
    """A real Celery worker (in a thread of this process) consuming from a real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from thinnest_site.celery import app

    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    # Drop connections and producers made for the previous broker.
    app._pool = None
    app.amqp._producer_pool = None
    settings.REDIS_URL = redis_url  # turns buffer in Redis, as in production
    from sessions import turn_buffer

    turn_buffer._redis.cache_clear()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield app
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None
    turn_buffer._redis.cache_clear()


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_stores_the_transcript_from_the_redis_buffer_once(
    celery_worker, agent, secret_key
):
    session = active_call(agent, secret_key[0])
    for turn in TURNS:
        call_turn_record(session_id=session.public_id, turn=turn)

    finished: list[str] = []

    def count(sender=None, task_id=None, **kwargs):
        finished.append(task_id)

    task_postrun.connect(count, weak=False)
    try:
        first = tasks.call_transcript_store.delay(session.public_id)
        wait_until(lambda: first.id in finished)
        assert TranscriptEntry.objects.filter(call=session).count() == 5
        second = tasks.call_transcript_store.delay(session.public_id)
        wait_until(lambda: second.id in finished)
    finally:
        task_postrun.disconnect(count)

    assert TranscriptEntry.objects.filter(call=session).count() == 5
    session.refresh_from_db()
    assert session.stats["turns"] == 5 and session.stats["latency_ms"]["p50"] == 500
