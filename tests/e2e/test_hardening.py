"""What a stranger with the published public key, a slow webhook receiver or a broken client did
to a real server, tried again against one: daphne with the media worker inside it (the default,
no-Redis mode), callers that are real aiortc peers over the real WebSocket.

Each test failed on the code before the hardening issue: the slow receiver ended a live call
(media_worker_lost) and stalled a new caller's handshake; eight unanswered sockets refused the
next real caller with at_capacity; a candidate flood grew the server by tens of MB and crashed
the consumer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import in_own_loop
from thinnest_site import launch
from thinnest_site.launch import LocalProduct, free_port

pytestmark = pytest.mark.e2e

GREETING_ONLY = {"VOICE_PIPELINE": "greeting", "WEBHOOK_ALLOW_HTTP_LOCALHOST": "true"}


def start_call(product: LocalProduct, key: str, agent_id: str, origin: str | None = None) -> dict:
    return launch.start_call(product.base_url, key, agent_id, origin=origin)


def daphne_rss_kb(product: LocalProduct) -> int:
    status = Path(f"/proc/{product.processes['daphne'].pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


class HangingReceiver:
    """A webhook receiver that accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def greeting_product(tmp_path):
    with LocalProduct(tmp_path, env=GREETING_ONLY) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        yield product


@in_own_loop
async def test_a_receiver_that_never_answers_stalls_no_call(greeting_product):
    from voice.testing import WebSocketCaller

    product = greeting_product
    receiver = HangingReceiver()
    agent_id = product.credentials["agent_id"]
    product.manage(
        "shell",
        "-c",
        "from agents.models import Agent; from agents.services import webhook_endpoint_create; "
        f"webhook_endpoint_create(agent=Agent.objects.get(public_id='{agent_id}'), "
        f"url='http://127.0.0.1:{receiver.port}/hook')",
    )
    key = product.credentials["secret_key"]
    live = new = None
    try:
        started = await asyncio.to_thread(start_call, product, key, agent_id)
        live = WebSocketCaller(started["websocket_url"], started["token"])
        await live.connect()
        await live.wait_for("call_started")  # emits call.started: its send hangs for 5 s
        deadline = time.monotonic() + 5
        while receiver.accepted == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert receiver.accepted >= 1, product.logs()

        # A new caller while the send hangs: its handshake is as quick as ever.
        t0 = time.monotonic()
        started_new = await asyncio.to_thread(start_call, product, key, agent_id)
        new = WebSocketCaller(started_new["websocket_url"], started_new["token"])
        await new.connect()
        at_started, _ = await new.wait_for("call_started", timeout=10)
        assert at_started - t0 < 3.0, product.logs()

        # The first call outlives the hanging send (the webhook timeout is 5 s).
        await asyncio.sleep(6)
        assert not [m for _, m in live.events if m["type"] in ("error", "call_ended")]
        assert (await live.hangup())["reason"] == "user_hangup"
        assert (await new.hangup())["reason"] == "user_hangup"
    finally:
        for caller in (live, new):
            if caller is not None:
                await caller.close()
        receiver.close()


@in_own_loop
async def test_unanswered_sockets_of_the_public_key_do_not_lock_a_real_caller_out(tmp_path):
    import websockets

    from voice.testing import WebSocketCaller

    # A stranger with many addresses: the per-IP cap is out of the way here, so what is tested
    # is that the media worker counts only calls with media.
    env = {**GREETING_ONLY, "MAX_CONCURRENT_CALLS_PER_IP": "0", "MEDIA_WORKER_CAPACITY": "8"}
    with LocalProduct(tmp_path, env=env) as product:
        credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        public_key, agent_id = credentials["public_key"], credentials["agent_id"]
        strangers = []
        caller = None
        try:
            for _ in range(8):
                started = await asyncio.to_thread(
                    start_call, product, public_key, agent_id, product.base_url
                )
                ws = await websockets.connect(started["websocket_url"])
                await ws.send(json.dumps({"type": "auth", "token": started["token"]}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "offer"
                strangers.append(ws)  # ... and never answers

            started = await asyncio.to_thread(
                start_call, product, public_key, agent_id, product.base_url
            )
            caller = WebSocketCaller(started["websocket_url"], started["token"])
            await caller.connect()
            await caller.wait_for("call_started", timeout=10)
            assert not [m for _, m in caller.events if m["type"] == "error"]
            assert (await caller.hangup())["reason"] == "user_hangup"
        finally:
            if caller is not None:
                await caller.close()
            for ws in strangers:
                await ws.close()


def test_one_address_gets_429_past_its_share_of_live_calls(greeting_product):
    product = greeting_product
    public_key = product.credentials["public_key"]
    agent_id = product.credentials["agent_id"]
    for _ in range(3):
        start_call(product, public_key, agent_id, product.base_url)
    with pytest.raises(urllib.error.HTTPError) as refused:
        start_call(product, public_key, agent_id, product.base_url)
    assert refused.value.code == 429
    assert json.loads(refused.value.read())["error"]["code"] == "concurrent_call_limit"


@in_own_loop
async def test_a_candidate_flood_leaves_memory_bounded_and_calls_working(greeting_product):
    import websockets

    from voice.testing import WebSocketCaller

    product = greeting_product
    key, agent_id = product.credentials["secret_key"], product.credentials["agent_id"]

    async def a_real_call() -> None:
        started = await asyncio.to_thread(start_call, product, key, agent_id)
        caller = WebSocketCaller(started["websocket_url"], started["token"])
        try:
            await caller.connect()
            await caller.wait_for("call_started", timeout=10)
            assert (await caller.hangup())["reason"] == "user_hangup"
        finally:
            await caller.close()

    await a_real_call()  # the embedded worker and its voice load on the first call
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host " + "x" * 900,
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    message = json.dumps({"type": "ice-candidate", "candidate": candidate})

    async def flood() -> int:
        """20,000 candidates of 1 KB as fast as loopback takes them; the server's close code."""
        started = await asyncio.to_thread(start_call, product, key, agent_id)
        async with websockets.connect(started["websocket_url"], max_size=2**20) as flooder:
            await flooder.send(json.dumps({"type": "auth", "token": started["token"]}))
            with pytest.raises(websockets.ConnectionClosed) as closed:  # the server closes it
                for _ in range(20_000):
                    await flooder.send(message)
                while True:
                    await asyncio.wait_for(flooder.recv(), 10)
        return closed.value.rcvd.code

    # Daphne queues what arrives while the consumer is busy (here: authenticating), so a flood
    # raises the allocator's high-water mark by however much queued in that run (CI once saw
    # 19 MB, then 13 MB, then nothing). What must not happen is growth with every flood: a
    # flood is 20 MB of candidates, so a server that kept them (before: each socket buffered
    # every candidate for its lifetime) would add 60 MB or more over the three floods that
    # follow the first; here they add less than one flood's worth together.
    rss = [daphne_rss_kb(product)]
    for _ in range(4):
        assert await flood() == 4011  # the call ended as failed (rate_limited)
        await asyncio.sleep(3)  # daphne lets a closed connection's queue go within seconds
        rss.append(daphne_rss_kb(product))
    print(f"daphne RSS (kB) before and after each of 4 floods: {rss}")
    assert rss[4] - rss[1] < 20_000, rss

    await a_real_call()
