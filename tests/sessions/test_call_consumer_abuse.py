"""What a broken or hostile client can send on the call WebSocket: each case gets an ``error``
event (or a clean end of its own call), never a crashed consumer, unbounded memory, or a stall of
other calls. Uses the scripted worker of test_call_consumer.py over the real channel layer."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async

from sessions import consumers, signaling
from sessions.models import CallSession
from tests.sessions.test_call_consumer import (
    ANSWER,
    CANDIDATE,
    ScriptedWorker,
    assert_closed,
    auth,
    fast_timeouts,  # noqa: F401 (autouse fixture)
    open_socket,
    receive,
    receive_until,
    session_row,
    start_session,
)
from voice import protocol

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_candidate_flood_before_the_answer_is_capped_and_the_call_goes_on():
    # Before: every candidate was buffered (one socket: +56 MB in 2.4 s), and relaying ~100 of
    # them at the answer overflowed the worker's channel (ChannelFull) and crashed the consumer.
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)  # offer
        big = {**CANDIDATE, "candidate": CANDIDATE["candidate"] + " x" * 400}
        errors = []
        # Within the socket's message allowance: the candidate cap is what acts here.
        for _ in range(signaling.MAX_CANDIDATES_PER_CALL + 5):
            await ws.send_json_to({"type": "ice-candidate", "candidate": big})
        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await worker.wait_for(protocol.SIGNAL_ANSWER)
        # The socket still answers: a bad message gets its error event.
        await ws.send_json_to({"type": "nonsense"})
        while True:
            message = await receive(ws)
            if message["type"] == "error":
                errors.append(message["code"])
                if message["code"] == "unknown_message_type":
                    break
        assert errors.count("too_many_candidates") == 1
        await asyncio.sleep(0.2)
        relayed = [m for m in worker.received if m["type"] == protocol.SIGNAL_CANDIDATE]
        assert len(relayed) == signaling.MAX_CANDIDATES_PER_CALL
        await worker.tell(protocol.MEDIA_STARTED)
        await receive_until(ws, "call_started")
        await ws.send_json_to({"type": "hangup"})
        assert (await receive_until(ws, "call_ended"))["reason"] == "user_hangup"
    assert (await session_row(session_id)).end_reason == "user_hangup"


@pytest.mark.parametrize(
    "candidate",
    [
        {"candidate": "x" * 5000, "sdpMid": "0", "sdpMLineIndex": 0},
        {"candidate": "not a candidate line", "sdpMid": "0", "sdpMLineIndex": 0},
        {"candidate": CANDIDATE["candidate"], "sdpMid": {"a": 1}, "sdpMLineIndex": 0},
        {"candidate": CANDIDATE["candidate"], "sdpMid": "0", "sdpMLineIndex": "0"},
        {"candidate": CANDIDATE["candidate"], "sdpMid": "0", "sdpMLineIndex": 10**30},
        {"candidate": CANDIDATE["candidate"], "sdpMid": "0", "sdpMLineIndex": True},
    ],
)
async def test_a_malformed_candidate_is_refused_and_never_relayed(candidate):
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)
        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await worker.wait_for(protocol.SIGNAL_ANSWER)
        await ws.send_json_to({"type": "ice-candidate", "candidate": candidate})
        error = await receive_until(ws, "error")
        assert error["code"] == "invalid_message"
        await asyncio.sleep(0.2)
        assert not [m for m in worker.received if m["type"] == protocol.SIGNAL_CANDIDATE]
        await ws.disconnect()


async def test_a_deeply_nested_message_before_auth_gets_an_error_not_a_crash():
    # Before: json.loads raised RecursionError, the consumer died and the socket closed 1011.
    session_id, token = await start_session()
    async with ScriptedWorker():
        ws = await open_socket(session_id)
        await ws.send_to(text_data="[" * 20_000 + "]" * 20_000)  # 40 KB
        error = await receive(ws)
        assert error == {
            "type": "error",
            "code": "invalid_message",
            "message": "The message is not valid JSON.",
        }
        await auth(ws, token)  # and the socket is still usable
        assert (await receive(ws))["type"] == "offer"
        await ws.disconnect()


async def test_a_socket_that_never_answers_the_offer_lets_its_place_go(settings):
    settings.CALL_ANSWER_TIMEOUT_SECONDS = 0.5
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        assert (await receive(ws))["type"] == "offer"
        error = await receive_until(ws, "error", timeout=5)
        assert error["code"] == "answer_timeout"
        assert (await receive_until(ws, "call_ended"))["reason"] == protocol.REASON_MEDIA_FAILED
        close = await worker.wait_for(protocol.CALL_CLOSE)
        assert close["reason"] == protocol.REASON_MEDIA_FAILED
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.FAILED, "media_failed")


async def test_a_message_flood_ends_only_the_flooding_call(settings):
    flooder_id, flooder_token = await start_session()
    caller_id, caller_token = await start_session()
    async with ScriptedWorker():
        flooder = await open_socket(flooder_id, f"?token={flooder_token}")
        await receive(flooder)
        candidate = json.dumps({"type": "ice-candidate", "candidate": CANDIDATE})
        for _ in range(1000):
            await flooder.send_to(text_data=candidate)
        codes = []
        while "rate_limited" not in codes:
            codes.append((await receive(flooder))["code"])
        await assert_closed(flooder, consumers.CLOSE_FAILED)
        assert (await session_row(flooder_id)).status == CallSession.Status.FAILED

        caller = await open_socket(caller_id, f"?token={caller_token}")
        assert (await receive(caller))["type"] == "offer"
        await caller.disconnect()


async def test_calls_authenticate_while_the_shared_sync_thread_is_busy():
    # Channels runs every sync_to_async(thread_sensitive=True) call of the process on one
    # thread: a slow one (a webhook sent inline, a slow page) used to stall every call's
    # database work. The call path has threads of its own.
    session_id, token = await start_session()
    release = threading.Event()
    blocker = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(10))
    try:
        async with ScriptedWorker():
            started = time.monotonic()
            ws = await open_socket(session_id, f"?token={token}")
            assert (await receive(ws, timeout=5))["type"] == "offer"
            assert time.monotonic() - started < 5  # not behind the 10 s blocker
            assert not blocker.done()
            await ws.disconnect()
    finally:
        release.set()
        await blocker
