"""A media worker's life: it reports itself, drains its calls when asked to stop, and closes the
calls that a dead worker left open. The real worker and channel layer, real aiortc peers, the
real conversation pipeline where the caller must hear the agent's last words.

tests/e2e/test_shutdown.py sends the real SIGTERM to real processes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from sessions.models import CallSession, MediaWorkerRecord
from sessions.selectors import media_workers_live
from sessions.workers import calls_close_orphaned
from tests.voice.test_worker import StandInConsumer, new_session, wait_until
from thinnest_site.logs import CallIdFilter
from voice import protocol
from voice import worker as worker_module
from voice.testing import FakeBrowser, tone
from voice.worker import MediaWorker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback(media_on_loopback):
    pass


def is_event(kind: str):
    return lambda m: m.get("event", {}).get("type") == kind


@database_sync_to_async
def session_row(session_id: str) -> CallSession:
    return CallSession.objects.get(public_id=session_id)


async def test_a_draining_worker_declines_new_calls_and_cuts_a_live_one_with_the_agents_last_words(
    settings, monkeypatch
):
    settings.VOICE_PIPELINE = "conversation"
    monkeypatch.setattr(worker_module, "SHUTDOWN_LINE", "We are restarting. Goodbye for now.")
    # Cut after 1 s of grace, with up to 6 s to say the last words.
    monkeypatch.setattr(worker_module, "SHUTDOWN_NOTICE_SECONDS", 6.0)
    # Alone (as in the embedded mode) it declines a call itself; with others it leaves it to them.
    worker = MediaWorker(capacity=2, embedded=True)
    # Its token issued first: a worker that reports itself full makes the start-call API refuse.
    late_spec = await new_session()
    await worker.start()
    spec = await new_session(greeting="Hello.")
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    late = None
    try:
        await consumer.open()
        browser.microphone.say(tone(0.5))
        await consumer.connect(browser)
        # What the real consumer does on MEDIA_STARTED.
        await database_sync_to_async(CallSession.objects.filter(public_id=spec.session_id).update)(
            status="active", started_at=timezone.now()
        )
        await consumer.wait_for(is_event("agent_listening"), timeout=30)
        heard_before = browser.heard_seconds()

        drain = asyncio.create_task(worker.drain(7.0))
        await wait_until(lambda: worker.draining)
        (row,) = await database_sync_to_async(media_workers_live)()
        assert row.draining and row.free == 0

        # A new call is declined at once.
        late = StandInConsumer(late_spec)
        await late.open()
        rejected = await late.wait_type(protocol.WORKER_REJECTED, timeout=5)
        assert rejected["code"] == "at_capacity" and "shutting down" in rejected["message"]

        ended = await consumer.wait_type(protocol.MEDIA_ENDED, timeout=15)
        assert ended["reason"] == "server_shutdown" and ended["recorded"]
        # The caller heard the last words: agent audio after the drain began, announced.
        assert browser.heard_seconds() - heard_before > 1.0
        speaking = [m for m in consumer.messages if is_event("agent_speaking")(m)]
        assert len(speaking) >= 2  # the greeting, then the last words
        await asyncio.wait_for(drain, 5)
    finally:
        await browser.close()
        await consumer.close()
        if late is not None:
            await late.close()
        await worker.stop()

    session = await session_row(spec.session_id)
    assert session.status == "ended" and session.end_reason == "server_shutdown"
    assert session.media_worker == worker.channel
    transcript = await database_sync_to_async(lambda: list(session.transcript.all()))()
    assert [t.text for t in transcript] == ["Hello."]  # stored, as any call's
    # Stopped cleanly: gone from the workers the database knows.
    assert not await database_sync_to_async(MediaWorkerRecord.objects.exists)()


async def test_a_drain_ends_as_soon_as_its_calls_have_ended():
    worker = MediaWorker(capacity=2)
    await worker.start()
    spec = await new_session()
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    try:
        await consumer.open()
        browser.microphone.say(tone(0.5))
        await consumer.connect(browser)
        drain = asyncio.create_task(worker.drain(60.0))
        await wait_until(lambda: worker.draining)
        await asyncio.sleep(0.5)
        assert not drain.done()  # the call goes on
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await asyncio.wait_for(drain, 5)  # not the 60 s of grace
        assert (await consumer.wait_type(protocol.MEDIA_ENDED))["reason"] == "user_hangup"
    finally:
        await browser.close()
        await consumer.close()
        await worker.stop()


async def test_a_worker_reports_itself_and_how_full_it_is():
    worker = MediaWorker(capacity=3)
    await worker.start()
    spec = await new_session()
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    try:
        (row,) = await database_sync_to_async(media_workers_live)()
        assert (row.name, row.capacity, row.calls, row.free) == (worker.channel, 3, 0, 3)
        await consumer.open()
        browser.microphone.say(tone(0.5))
        await consumer.connect(browser)

        async def reported_calls() -> int:
            (row,) = await database_sync_to_async(media_workers_live)()
            return row.calls

        deadline = time.monotonic() + 10
        while await reported_calls() != 1:
            assert time.monotonic() < deadline, "the call was never reported"
            await asyncio.sleep(0.2)
    finally:
        await browser.close()
        await consumer.close()
        await worker.stop()


def open_call(status: str, media_worker: str) -> str:
    session = CallSession.objects.create(
        agent=_agent(), status=status, media_worker=media_worker, token_nonce="n"
    )
    if status == CallSession.Status.ACTIVE:
        session.started_at = timezone.now() - timedelta(seconds=30)
        session.save(update_fields=["started_at"])
    return session.public_id


def _agent():
    from agents.services import agent_create

    return agent_create(name="Orphans")


def worker_seen(name: str, seconds_ago: float) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    MediaWorkerRecord.objects.create(
        name=name, host="h", pid=1, capacity=2, started_at=seen, seen_at=seen
    )


def test_the_calls_of_a_dead_worker_are_closed_and_a_live_workers_are_not():
    worker_seen("alive", seconds_ago=1)
    worker_seen("dead", seconds_ago=60)
    of_dead = open_call(CallSession.Status.ACTIVE, "dead")
    of_dead_connecting = open_call(CallSession.Status.CONNECTING, "dead")
    of_unknown = open_call(CallSession.Status.ACTIVE, "never-registered")
    of_alive = open_call(CallSession.Status.ACTIVE, "alive")
    dispatching = open_call(CallSession.Status.CONNECTING, "")  # no worker has it yet

    assert sorted(calls_close_orphaned()) == sorted([of_dead, of_dead_connecting, of_unknown])
    dead = CallSession.objects.get(public_id=of_dead)
    assert (dead.status, dead.end_reason) == ("ended", "error")
    assert "stopped before the call ended" in dead.error_message
    assert CallSession.objects.get(public_id=of_dead_connecting).status == "failed"
    for session_id in (of_alive, dispatching):
        assert CallSession.objects.get(public_id=session_id).status in ("active", "connecting")
    # The embedded mode's one process, starting: every open call is its last run's.
    assert sorted(calls_close_orphaned(every_open_call=True)) == sorted([of_alive, dispatching])


async def test_a_starting_worker_closes_the_calls_a_killed_worker_left_open():
    await database_sync_to_async(worker_seen)("killed", seconds_ago=60)
    left_open = await database_sync_to_async(open_call)(CallSession.Status.ACTIVE, "killed")
    worker = MediaWorker(capacity=2)
    await worker.start()
    try:
        session = await session_row(left_open)
        assert (session.status, session.end_reason) == ("ended", "error")
    finally:
        await worker.stop()


class Lines(logging.Handler):
    """The records logged, with the product's call id filter on (thinnest_site/logs.py)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.addFilter(CallIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_every_line_a_call_logs_carries_its_id():
    lines = Lines()
    logging.getLogger().addHandler(lines)
    worker = MediaWorker(capacity=2)
    try:
        await worker.start()
        spec = await new_session()
        consumer, browser = StandInConsumer(spec), FakeBrowser()
        await consumer.open()
        browser.microphone.say(tone(0.5))
        await consumer.connect(browser)
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await consumer.wait_type(protocol.MEDIA_ENDED)
        await browser.close()
        await consumer.close()
    finally:
        await worker.stop()
        logging.getLogger().removeHandler(lines)
    by_message = {r.getMessage(): r.call_id for r in lines.records}
    closed = next(m for m in by_message if m.startswith(f"call {spec.session_id} closed"))
    assert by_message[closed] == spec.session_id
    ready = next(m for m in by_message if "ready" in m)
    assert by_message[ready] == ""  # the worker's own lines belong to no call
