"""A model that fails mid-call, through every layer a caller's call crosses: the real consumer
over a WebSocket, the real media worker, a real aiortc peer as the browser, the conversation
pipeline with its real VAD, STT and TTS, and an LLM that raises. The caller must hear an apology,
get ``error`` then ``call_ended`` with reason ``error``, and the call must keep the error."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from agents.services import agent_create, api_key_create
from sessions.models import CallSession
from sessions.routing import websocket_urlpatterns
from sessions.services import call_session_start
from tests.voice.test_conversation import FailingLlm
from voice.audio import resample
from voice.engines import registry
from voice.ice import restrict_host_addresses
from voice.testing import FakeBrowser
from voice.worker import MediaWorker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.VOICE_PIPELINE = "conversation"
    settings.LLM_MODEL = "smollm2"
    yield
    restrict_host_addresses([])


@database_sync_to_async
def start_session() -> tuple[str, str]:
    agent = agent_create(name="Failing agent", turn_detection="silence")
    api_key, _ = api_key_create(kind="secret")
    started = call_session_start(agent=agent, api_key=api_key)
    return started.session.public_id, started.token


async def receive_until(ws: WebsocketCommunicator, kind: str, timeout: float = 30) -> dict:
    async def loop():
        while True:
            message = json.loads(await ws.receive_from(timeout))
            if message["type"] == kind:
                return message

    return await asyncio.wait_for(loop(), timeout)


async def open_call(session_id: str, token: str, browser: FakeBrowser) -> WebsocketCommunicator:
    """The call socket, answered by ``browser``, once its call has media (``call_started``)."""
    ws = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/{session_id}?token={token}")
    assert (await ws.connect())[0]
    offer = await receive_until(ws, "offer")
    await ws.send_json_to({"type": "answer", "sdp": await browser.answer(offer["sdp"])})
    await receive_until(ws, "call_started")
    return ws


def say(browser: FakeBrowser, text: str) -> None:
    pcm, rate = registry.tts_get("piper").synthesize(text)
    browser.microphone.say(resample(pcm, rate, 48000))


async def test_a_failing_llm_mid_call_is_apologized_for_and_recorded(monkeypatch):
    worker = MediaWorker(capacity=2)
    await worker.start()  # loads and warms the real models first
    monkeypatch.setattr(registry, "llm_get", lambda name="": FailingLlm())  # then it breaks
    browser = FakeBrowser()
    session_id, token = await start_session()
    ws = None
    try:
        ws = await open_call(session_id, token, browser)
        say(browser, "What time do you open on Saturday?")

        error = await receive_until(ws, "error")
        assert error["code"] == "error"
        assert "llama_decode returned -1" in error["message"]
        ended = await receive_until(ws, "call_ended")
        assert ended["reason"] == "error"
        assert browser.heard_seconds() > 1.0  # the apology was spoken before the end
    finally:
        if ws is not None:
            await ws.disconnect()
        await browser.close()
        await worker.stop()
    row = await database_sync_to_async(CallSession.objects.get)(public_id=session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "error")
    assert "llama_decode returned -1" in row.error_message
