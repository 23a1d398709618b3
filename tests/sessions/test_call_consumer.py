"""The call WebSocket, driven with WebsocketCommunicator against a scripted media worker.

The media worker here is a stand-in that speaks voice/protocol.py over the real channel layer, so
these tests pin the consumer's side of the protocol; tests/voice/ runs the real worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from agents.services import agent_create, api_key_create
from sessions import consumers
from sessions.models import CallSession
from sessions.routing import websocket_urlpatterns
from sessions.services import call_session_end, call_session_start
from voice import protocol

pytestmark = [pytest.mark.django_db(transaction=True)]

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\n"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


@pytest.fixture(autouse=True)
def fast_timeouts(settings, monkeypatch):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.CALL_AUTH_TIMEOUT_SECONDS = 0.5
    settings.CALL_CONNECT_TIMEOUT_SECONDS = 30
    monkeypatch.setattr(consumers, "DISPATCH_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(consumers, "OFFER_RESEND_SECONDS", 0.2)
    monkeypatch.setattr(consumers, "SUPERVISE_INTERVAL_SECONDS", 0.1)


class ScriptedWorker:
    """Takes calls from the dispatch channel and answers the way a media worker does."""

    def __init__(
        self,
        *,
        reject: bool = False,
        heartbeat: bool = True,
        offer: bool = True,
        answer_close: bool = True,
    ):
        self.answer_close = answer_close
        self.layer = get_channel_layer()
        self.reject = reject
        self.heartbeat = heartbeat
        self.offer = offer
        self.channel = ""
        self.reply_to = ""
        self.opened: list[dict] = []
        self.received: list[dict] = []
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        # The default prefix: channels_redis serves all of a process's own channels from one
        # receive loop per prefix, and a second prefix in one process starves the first.
        self.channel = await self.layer.new_channel()
        self.tasks = [
            asyncio.create_task(self.take_calls()),
            asyncio.create_task(self.read_own()),
            asyncio.create_task(self.beat()),
        ]
        return self

    async def __aexit__(self, *exc):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def take_calls(self):
        from django.conf import settings

        while True:
            message = await self.layer.receive(settings.MEDIA_DISPATCH_CHANNEL)
            self.opened.append(message)
            session_id = message["session_id"]
            if self.reject:
                await self.layer.send(
                    message["reply_to"],
                    {
                        "type": protocol.WORKER_REJECTED,
                        "session_id": session_id,
                        "code": "at_capacity",
                    },
                )
                continue
            self.reply_to = message["reply_to"]
            await self.tell(protocol.WORKER_ATTACHED, worker=self.channel)
            if self.offer:
                await self.tell(protocol.SIGNAL_OFFER, sdp=OFFER)

    async def read_own(self):
        while True:
            message = await self.layer.receive(self.channel)
            self.received.append(message)
            if message["type"] == protocol.CALL_CLOSE and self.answer_close:
                # As the real worker does: it records the end (it holds the last turns), then
                # answers with what it recorded.
                session = await database_sync_to_async(call_session_end)(
                    session_id=message["session_id"],
                    reason=message["reason"],
                    error_message=message.get("message", ""),
                    media_stats={"inbound_seconds": 1.0},
                )
                await self.tell(
                    protocol.MEDIA_ENDED,
                    reason=message["reason"],
                    message=message.get("message", ""),
                    recorded=True,
                    duration=session.duration_seconds,
                )
            if message["type"] == protocol.CALL_RESUME:
                # As the real worker does: the old socket hears it was taken over, the new one
                # gets the worker and a fresh offer.
                await self.tell(protocol.CALL_TAKEN_OVER)
                self.reply_to = message["reply_to"]
                await self.tell(protocol.WORKER_ATTACHED, worker=self.channel)
                await self.tell(protocol.SIGNAL_OFFER, sdp=OFFER)

    async def beat(self):
        while True:
            await asyncio.sleep(0.2)
            if self.heartbeat and self.reply_to:
                await self.tell(protocol.WORKER_HEARTBEAT)

    async def tell(self, kind: str, **fields):
        session_id = self.opened[-1]["session_id"]
        await self.layer.send(self.reply_to, {"type": kind, "session_id": session_id, **fields})

    async def wait_for(self, kind: str, timeout: float = 3.0) -> dict:
        async def poll():
            while True:
                for message in self.received:
                    if message["type"] == kind:
                        return message
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(poll(), timeout)


@database_sync_to_async
def start_session(greeting: str = "Hello from the test agent") -> tuple[str, str]:
    agent = agent_create(name="Consumer test", greeting=greeting)
    api_key, _ = api_key_create(kind="secret")
    started = call_session_start(agent=agent, api_key=api_key, context={"user_name": "Jane"})
    return started.session.public_id, started.token


@database_sync_to_async
def session_row(session_id: str) -> CallSession:
    return CallSession.objects.get(public_id=session_id)


async def open_socket(session_id: str, query: str = "") -> WebsocketCommunicator:
    app = URLRouter(websocket_urlpatterns)
    communicator = WebsocketCommunicator(app, f"/ws/{session_id}{query}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator: WebsocketCommunicator, timeout: float = 3.0) -> dict:
    return json.loads(await communicator.receive_from(timeout))


async def receive_until(communicator, kind: str, timeout: float = 3.0) -> dict:
    async def loop():
        while True:
            message = await receive(communicator, timeout)
            if message["type"] == kind:
                return message

    return await asyncio.wait_for(loop(), timeout)


async def assert_closed(communicator, code: int, timeout: float = 3.0) -> None:
    async def loop():
        while True:
            output = await communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output

    output = await asyncio.wait_for(loop(), timeout)
    assert output.get("code") == code


async def connected_call(
    worker: ScriptedWorker, session_id: str, token: str
) -> WebsocketCommunicator:
    """A socket whose call has reached ``call_started``."""
    ws = await open_socket(session_id, f"?token={token}")
    await receive(ws)  # the offer
    await worker.tell(protocol.MEDIA_STARTED)
    await receive_until(ws, "call_started")
    return ws


async def auth(communicator, token: str) -> None:
    await communicator.send_json_to({"type": "auth", "token": token})


# --- the happy path ------------------------------------------------------------------------------


async def test_a_call_runs_from_auth_to_hangup():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id)
        await auth(ws, token)

        offer = await receive(ws)
        assert offer == {"type": "offer", "sdp": OFFER}
        spec = worker.opened[0]["call"]
        assert spec["session_id"] == session_id
        assert spec["greeting"] == "Hello from the test agent"
        assert spec["context"] == {"user_name": "Jane"}
        assert (await session_row(session_id)).status == CallSession.Status.CONNECTING

        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await ws.send_json_to({"type": "ice-candidate", "candidate": CANDIDATE})
        assert (await worker.wait_for(protocol.SIGNAL_ANSWER))["sdp"] == ANSWER
        forwarded = await worker.wait_for(protocol.SIGNAL_CANDIDATE)
        assert forwarded["candidate"]["candidate"] == CANDIDATE["candidate"]

        await worker.tell(protocol.MEDIA_STARTED)
        started = await receive_until(ws, "call_started")
        assert started.keys() == {"type", "session_id", "resume_token"}
        assert started["session_id"] == session_id
        row = await session_row(session_id)
        assert row.status == CallSession.Status.ACTIVE and row.started_at is not None

        await worker.tell(protocol.MEDIA_EVENT, event={"type": "agent_speaking"})
        assert await receive_until(ws, "agent_speaking") == {"type": "agent_speaking"}

        await asyncio.sleep(0.3)
        await ws.send_json_to({"type": "hangup"})
        ended = await receive_until(ws, "call_ended")
        assert ended["reason"] == "user_hangup" and ended["duration"] >= 0.3
        await assert_closed(ws, consumers.CLOSE_NORMAL)
        assert (await worker.wait_for(protocol.CALL_CLOSE))["reason"] == "user_hangup"

    row = await session_row(session_id)
    assert row.status == CallSession.Status.ENDED
    assert row.end_reason == "user_hangup"
    assert row.ended_at is not None and row.duration_seconds == ended["duration"]


async def test_the_token_in_the_url_authenticates_and_the_offer_is_resent_until_answered():
    # The seed's code attaches onopen/onmessage late: it never sends auth and misses the first offer.
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        first = await receive(ws)
        second = await receive(ws)
        assert first == second == {"type": "offer", "sdp": OFFER}

        # The seed's onopen may still fire and send auth with the same token: harmless.
        await auth(ws, token)
        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await worker.wait_for(protocol.SIGNAL_ANSWER)
        await asyncio.sleep(0.5)
        leftovers = []
        while not await ws.receive_nothing(0.05):
            leftovers.append(await receive(ws))
        assert all(m["type"] == "offer" for m in leftovers) and len(leftovers) <= 1
        assert sum(1 for m in worker.received if m["type"] == protocol.SIGNAL_ANSWER) == 1
        await ws.disconnect()


async def test_candidates_sent_before_the_answer_reach_the_worker_after_it():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)
        await ws.send_json_to({"type": "ice-candidate", "candidate": CANDIDATE})
        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await worker.wait_for(protocol.SIGNAL_CANDIDATE)
        kinds = [m["type"] for m in worker.received]
        assert kinds.index(protocol.SIGNAL_ANSWER) < kinds.index(protocol.SIGNAL_CANDIDATE)
        await ws.disconnect()


async def test_a_socket_dropped_before_media_flows_ends_the_call():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)  # the offer
        await ws.disconnect()
        assert (await worker.wait_for(protocol.CALL_CLOSE))["reason"] == "connection_lost"
        # The worker, which holds the call, records it (nobody is left to answer).
        for _ in range(100):
            row = await session_row(session_id)
            if row.status != CallSession.Status.CONNECTING:
                break
            await asyncio.sleep(0.03)
    assert (row.status, row.end_reason) == (CallSession.Status.FAILED, "connection_lost")


async def test_a_socket_dropped_during_the_call_leaves_it_to_the_worker_for_a_resume():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await connected_call(worker, session_id, token)
        await ws.disconnect()
        await worker.wait_for(protocol.CALL_DETACH)
        await asyncio.sleep(0.3)
        assert not [m for m in worker.received if m["type"] == protocol.CALL_CLOSE]
    assert (await session_row(session_id)).status == CallSession.Status.ACTIVE


async def resumed_socket(session_id: str, resume_token: str) -> WebsocketCommunicator:
    ws = await open_socket(session_id)
    await ws.send_json_to({"type": "resume", "token": resume_token})
    return ws


async def test_a_resumed_call_goes_on_on_a_new_socket_and_ends_once():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        first = await open_socket(session_id, f"?token={token}")
        await receive(first)
        await worker.tell(protocol.MEDIA_STARTED)
        resume_token = (await receive_until(first, "call_started"))["resume_token"]
        started_at = (await session_row(session_id)).started_at
        await first.disconnect()
        await worker.wait_for(protocol.CALL_DETACH)

        second = await resumed_socket(session_id, resume_token)
        resume = await worker.wait_for(protocol.CALL_RESUME)
        assert resume["session_id"] == session_id
        assert await receive(second) == {"type": "offer", "sdp": OFFER}
        await second.send_json_to({"type": "answer", "sdp": ANSWER})
        assert (await worker.wait_for(protocol.SIGNAL_ANSWER))["sdp"] == ANSWER
        await worker.tell(protocol.MEDIA_STARTED)
        started = await receive_until(second, "call_started")
        assert started["resumed"] is True and started["resume_token"]
        await worker.tell(protocol.MEDIA_EVENT, event={"type": "agent_listening"})
        assert await receive_until(second, "agent_listening") == {"type": "agent_listening"}

        await second.send_json_to({"type": "hangup"})
        assert (await receive_until(second, "call_ended"))["reason"] == "user_hangup"
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "user_hangup")
    assert row.started_at == started_at  # the call's clock did not restart


async def test_a_resume_while_the_old_socket_is_open_takes_the_call_from_it():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        first = await open_socket(session_id, f"?token={token}")
        await receive(first)
        await worker.tell(protocol.MEDIA_STARTED)
        resume_token = (await receive_until(first, "call_started"))["resume_token"]

        second = await resumed_socket(session_id, resume_token)
        error = await receive_until(first, "error")
        assert error["code"] == "call_resumed_elsewhere"
        await assert_closed(first, consumers.CLOSE_TAKEN_OVER)
        await receive(second)  # the new offer
        await asyncio.sleep(0.3)
        assert (await session_row(session_id)).status == CallSession.Status.ACTIVE
        await second.disconnect()


@pytest.mark.parametrize(
    "resume_token, code",
    [("not-a-token", "invalid_token"), ("", "invalid_message")],
)
async def test_a_bad_resume_token_is_refused_and_the_call_is_untouched(resume_token, code):
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        first = await connected_call(worker, session_id, token)
        intruder = await resumed_socket(session_id, resume_token)
        assert (await receive_until(intruder, "error"))["code"] == code
        assert not [m for m in worker.received if m["type"] == protocol.CALL_RESUME]
        assert (await session_row(session_id)).status == CallSession.Status.ACTIVE
        await first.send_json_to({"type": "hangup"})
        await receive_until(first, "call_ended")
        await intruder.disconnect()


async def test_a_resume_token_works_for_its_own_session_only_and_not_after_the_call():
    session_id, token = await start_session()
    other_id, _ = await start_session()
    async with ScriptedWorker() as worker:
        first = await open_socket(session_id, f"?token={token}")
        await receive(first)
        await worker.tell(protocol.MEDIA_STARTED)
        resume_token = (await receive_until(first, "call_started"))["resume_token"]

        elsewhere = await resumed_socket(other_id, resume_token)
        assert (await receive_until(elsewhere, "error"))["code"] == "wrong_session"
        await assert_closed(elsewhere, consumers.CLOSE_AUTH_FAILED)

        await first.send_json_to({"type": "hangup"})
        await receive_until(first, "call_ended")
        late = await resumed_socket(session_id, resume_token)
        assert (await receive_until(late, "error"))["code"] == "call_ended"
        await assert_closed(late, consumers.CLOSE_AUTH_FAILED)
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "user_hangup")


@pytest.mark.parametrize("reason", ["max_duration", "silence_timeout", "agent_hangup"])
async def test_the_worker_ends_the_call(reason):
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await connected_call(worker, session_id, token)
        await worker.tell(protocol.MEDIA_ENDED, reason=reason, message="")
        ended = await receive_until(ws, "call_ended")
        assert ended["reason"] == reason
        await assert_closed(ws, consumers.CLOSE_NORMAL)
        await asyncio.sleep(0.1)
        assert not [m for m in worker.received if m["type"] == protocol.CALL_CLOSE]
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, reason)


# --- errors --------------------------------------------------------------------------------------


async def test_no_auth_within_the_timeout_closes_the_socket():
    session_id, _ = await start_session()
    ws = await open_socket(session_id)
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", "auth_timeout")
    await assert_closed(ws, consumers.CLOSE_AUTH_TIMEOUT)
    assert (await session_row(session_id)).status == CallSession.Status.CREATED


@pytest.mark.parametrize("token", ["nonsense", "eyJzIjoic2Vzc2lvbl94In0:1abcde:forged"])
async def test_a_bad_token_is_refused(token):
    session_id, _ = await start_session()
    ws = await open_socket(session_id)
    await auth(ws, token)
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", "invalid_token")
    assert error["message"]
    await assert_closed(ws, consumers.CLOSE_AUTH_FAILED)
    assert (await session_row(session_id)).status == CallSession.Status.CREATED


async def test_an_expired_token_is_refused(settings):
    settings.CALL_TOKEN_TTL_SECONDS = 1
    session_id, token = await start_session()
    await asyncio.sleep(2.1)
    ws = await open_socket(session_id)
    await auth(ws, token)
    assert (await receive(ws))["code"] == "token_expired"
    await assert_closed(ws, consumers.CLOSE_AUTH_FAILED)
    assert (await session_row(session_id)).status == CallSession.Status.EXPIRED


async def test_a_reused_token_is_refused_after_the_call():
    session_id, token = await start_session()
    async with ScriptedWorker():
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)
        await ws.send_json_to({"type": "hangup"})
        await receive_until(ws, "call_ended")
        again = await open_socket(session_id)
        await auth(again, token)
        assert (await receive(again))["code"] == "token_used"
        await assert_closed(again, consumers.CLOSE_AUTH_FAILED)
    assert (await session_row(session_id)).status == CallSession.Status.FAILED


async def test_a_second_connection_to_a_live_session_is_refused():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        first = await open_socket(session_id, f"?token={token}")
        await receive(first)
        second = await open_socket(session_id)
        await auth(second, token)
        assert (await receive(second))["code"] == "session_in_use"
        await assert_closed(second, consumers.CLOSE_AUTH_FAILED)
        # The first call is untouched.
        await worker.tell(protocol.MEDIA_STARTED)
        assert (await receive_until(first, "call_started"))["session_id"] == session_id
        await first.disconnect()


async def test_a_token_for_another_session_is_refused():
    session_a, token_a = await start_session()
    session_b, _ = await start_session()
    ws = await open_socket(session_b)
    await auth(ws, token_a)
    assert (await receive(ws))["code"] == "wrong_session"
    await assert_closed(ws, consumers.CLOSE_AUTH_FAILED)
    assert (await session_row(session_a)).status == CallSession.Status.CREATED


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_message"),
        ("[1, 2]", "invalid_message"),
        ('{"no_type": 1}', "invalid_message"),
        ('{"type": 7}', "invalid_message"),
        ('{"type": "dance"}', "not_authenticated"),
        ('{"type": "auth"}', "invalid_message"),
        ('{"type": "auth", "token": 42}', "invalid_message"),
    ],
)
async def test_malformed_messages_get_an_error_and_the_socket_stays_usable(raw, code):
    session_id, token = await start_session()
    async with ScriptedWorker():
        ws = await open_socket(session_id)
        await ws.send_to(text_data=raw)
        error = await receive(ws)
        assert (error["type"], error["code"]) == ("error", code)
        await auth(ws, token)
        assert (await receive(ws))["type"] == "offer"
        await ws.disconnect()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "dance"}, "unknown_message_type"),
        ({"type": "answer"}, "invalid_message"),
        ({"type": "answer", "sdp": "v=0"}, "invalid_message"),
        ({"type": "answer", "sdp": {"type": "offer", "sdp": "v=0"}}, "invalid_message"),
        ({"type": "ice-candidate", "candidate": "x"}, "invalid_message"),
        ({"type": "ice-candidate"}, "invalid_message"),
    ],
)
async def test_bad_messages_after_auth_get_an_error_and_the_call_goes_on(message, code):
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        await receive(ws)
        await ws.send_json_to(message)
        error = await receive_until(ws, "error")
        assert error["code"] == code
        await ws.send_json_to({"type": "answer", "sdp": ANSWER})
        await worker.wait_for(protocol.SIGNAL_ANSWER)
        await ws.disconnect()


async def test_binary_frames_get_an_error():
    session_id, _ = await start_session()
    ws = await open_socket(session_id)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await receive(ws))["code"] == "invalid_message"
    await ws.disconnect()


async def test_a_worker_that_stops_answering_ends_the_call_within_5_seconds():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await connected_call(worker, session_id, token)
        worker.heartbeat = False
        loop = asyncio.get_running_loop()
        went_quiet = loop.time()
        error = await receive_until(ws, "error", timeout=6)
        ended = await receive_until(ws, "call_ended", timeout=6)
        assert loop.time() - went_quiet < 5
        assert error["code"] == "media_worker_lost"
        assert ended["reason"] == "error"
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "error")
    assert row.error_message


async def test_no_media_worker_at_all_fails_the_call():
    session_id, token = await start_session()
    ws = await open_socket(session_id, f"?token={token}")
    error = await receive_until(ws, "error", timeout=4)
    assert error["code"] == "media_unavailable"
    assert (await receive_until(ws, "call_ended"))["reason"] == "error"
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.FAILED, "error")


async def test_a_call_beyond_every_workers_capacity_gets_at_capacity():
    session_id, token = await start_session()
    async with ScriptedWorker(reject=True) as worker:
        ws = await open_socket(session_id, f"?token={token}")
        error = await receive_until(ws, "error")
        assert error["code"] == "at_capacity"
        assert (await receive_until(ws, "call_ended"))["reason"] == "at_capacity"
        assert len(worker.opened) == consumers.DISPATCH_ATTEMPTS
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.FAILED, "at_capacity")


async def test_media_that_never_flows_fails_the_call(settings):
    settings.CALL_CONNECT_TIMEOUT_SECONDS = 0.5
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await open_socket(session_id, f"?token={token}")
        assert (await receive_until(ws, "error"))["code"] == "connect_timeout"
        assert (await receive_until(ws, "call_ended"))["reason"] == "media_failed"
        assert (await worker.wait_for(protocol.CALL_CLOSE))["reason"] == "media_failed"


async def test_an_unknown_session_path_is_refused_like_a_bad_token():
    ws = await open_socket("session_doesnotexist")
    await auth(ws, "whatever")
    assert (await receive(ws))["code"] == "invalid_token"
    with contextlib.suppress(Exception):
        await ws.disconnect()


async def test_a_hang_up_the_worker_never_answers_is_recorded_by_the_consumer():
    # The worker records the calls it holds; one that dies between the hang-up and its answer
    # leaves the record to the consumer, a heartbeat timeout later.
    session_id, token = await start_session()
    async with ScriptedWorker(answer_close=False) as worker:
        ws = await connected_call(worker, session_id, token)
        await ws.send_json_to({"type": "hangup"})
        assert (await worker.wait_for(protocol.CALL_CLOSE))["reason"] == "user_hangup"
        ended = await receive_until(
            ws, "call_ended", timeout=protocol.HEARTBEAT_TIMEOUT_SECONDS + 3
        )
        assert ended["reason"] == "user_hangup"
    row = await session_row(session_id)
    assert (row.status, row.end_reason) == (CallSession.Status.ENDED, "user_hangup")


async def test_a_hang_up_is_recorded_once_by_the_worker_and_relayed():
    session_id, token = await start_session()
    async with ScriptedWorker() as worker:
        ws = await connected_call(worker, session_id, token)
        await ws.send_json_to({"type": "hangup"})
        ended = await receive_until(ws, "call_ended")
        assert ended["reason"] == "user_hangup"
    row = await session_row(session_id)
    # What the (scripted) worker recorded, stats included: the consumer wrote nothing over it.
    assert row.media_stats == {"inbound_seconds": 1.0}
    assert ended["duration"] == row.duration_seconds
