"""The end of a call has one owner: the media worker, which holds the call until its last turn,
records the end once (status, reason, duration, media stats), and that one record stores the
transcript once and sends ``call.ended`` complete, with no delay. Before, the consumer and the
worker both recorded it and both queued the transcript store, and ``call.ended`` waited 3 s
(WEBHOOK_CALL_ENDED_DELAY_SECONDS) in the hope that the agent's closing words would be in by then.

Real consumer over a WebSocket, real media worker, a real aiortc peer, the real pipeline and
models, and a real HTTP receiver for the webhook."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from agents.services import agent_create, api_key_create, webhook_endpoint_create
from sessions import services
from sessions.models import CallSession
from sessions.routing import websocket_urlpatterns
from sessions.services import call_session_start
from tests.agents.test_webhooks import receiver  # noqa: F401 (fixture)
from tests.voice.test_call_failures import (  # noqa: F401 (loopback_only: fixture)
    loopback_only,
    open_call,
    receive_until,
    say,
)
from thinnest_site.background import background_wait_idle
from voice.pipeline.conversation import CLOSING_LINE
from voice.testing import FakeBrowser
from voice.worker import MediaWorker

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def start_session(webhook_url: str) -> tuple[str, str]:
    agent = agent_create(name="Closing agent", turn_detection="silence")
    webhook_endpoint_create(agent=agent, url=webhook_url, events=["call.ended"])
    api_key, _ = api_key_create(kind="secret")
    started = call_session_start(agent=agent, api_key=api_key)
    return started.session.public_id, started.token


async def test_the_worker_records_the_end_once_and_call_ended_has_the_closing_words(
    receiver,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = True
    stores: list[str] = []
    real_store = services.call_transcript_store

    def counting_store(*, session_id: str):
        stores.append(session_id)
        return real_store(session_id=session_id)

    monkeypatch.setattr(services, "call_transcript_store", counting_store)
    worker = MediaWorker(capacity=2)
    await worker.start()
    browser = FakeBrowser()
    session_id, token = await start_session(receiver.url)
    ws = None
    try:
        ws = await open_call(session_id, token, browser)
        say(browser, "That is all, thank you. Goodbye!")
        ended = await receive_until(ws, "call_ended", timeout=40)
        ended_at = time.monotonic()
        assert ended["reason"] == "agent_hangup" and ended["duration"] > 0
    finally:
        if ws is not None:
            await ws.disconnect()
        await browser.close()
        await worker.stop()
    assert background_wait_idle(15)
    assert stores == [session_id]  # once per call
    [request] = [r for r in receiver.requests if r["headers"]["Thinnest-Event"] == "call.ended"]
    assert request["at"] - ended_at < 5  # no waiting for late turns: they are in already
    transcript = receiver.json(receiver.requests.index(request))["data"]["transcript"]
    assert transcript[-1] == {**transcript[-1], "role": "agent", "text": CLOSING_LINE}
    # Whisper writes the caller's last word as "Goodbye", "Good bye" or "Good-bye".
    assert any(turn["role"] == "user" and "bye" in turn["text"].lower() for turn in transcript), (
        transcript
    )
    row = await database_sync_to_async(CallSession.objects.get)(public_id=session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "agent_hangup")
    assert row.media_stats["inbound_seconds"] > 1  # what the worker measured, in the same record


async def test_a_hang_up_is_recorded_by_the_worker_with_what_the_caller_heard():
    worker = MediaWorker(capacity=2)
    await worker.start()
    browser = FakeBrowser()
    agent = await database_sync_to_async(agent_create)(
        name="Greeter", greeting="Hello! Thank you for calling the bakery, how can I help you?"
    )
    started = await database_sync_to_async(call_session_start)(agent=agent, api_key=None)
    session_id = started.session.public_id
    ws = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/{session_id}?token={started.token}"
    )
    try:
        assert (await ws.connect())[0]
        offer = await receive_until(ws, "offer")
        await ws.send_json_to({"type": "answer", "sdp": await browser.answer(offer["sdp"])})
        await receive_until(ws, "agent_speaking")
        await asyncio.sleep(1.0)  # a second of the greeting, then the caller hangs up
        await ws.send_json_to({"type": "hangup"})
        ended = await receive_until(ws, "call_ended")
        assert ended["reason"] == "user_hangup"
    finally:
        await ws.disconnect()
        await browser.close()
        await worker.stop()
    row = await database_sync_to_async(CallSession.objects.get)(public_id=session_id)
    assert row.end_reason == "user_hangup" and row.media_stats  # one record, with the stats
    turns = await database_sync_to_async(
        lambda: list(row.transcript.values_list("text", flat=True))
    )()
    # The greeting as far as it was heard, not the whole line.
    assert turns and turns[0].startswith("Hello") and turns[0] != agent.greeting
