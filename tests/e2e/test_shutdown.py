"""Stopping the product's processes with the signals a supervisor sends, during a real call.

SIGTERM: the process takes no new call, lets the call go on for the grace period, ends it as
``server_shutdown`` after the agent has said so, stores it, and exits within the grace period
plus 5 s (before this, a SIGTERM'd server kept running for minutes and left the call ``active``).
SIGKILL: the call it held is closed when the product starts again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import time
import urllib.error

import pytest

from tests.e2e.conftest import Product, in_own_loop
from thinnest_site import launch

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 10  # the last words start 8 s before its end: 2 s of the call go on first


async def a_call_hearing_its_greeting(product: Product):
    from voice.testing import WebSocketCaller

    started = await asyncio.to_thread(
        launch.start_call,
        product.base_url,
        product.credentials["secret_key"],
        product.credentials["agent_id"],
    )
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    await caller.connect()
    await caller.wait_for("call_started", timeout=30)
    await caller.wait_for("agent_listening", timeout=30)  # the greeting has been played
    return caller, started["session_id"]


async def process_exit(process: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``process`` exits; fails past ``timeout``."""
    t0 = time.monotonic()
    await asyncio.to_thread(process.wait, timeout)
    return time.monotonic() - t0


async def sigterm_during_a_call(product: Product, process_name: str) -> None:
    caller, session_id = await a_call_hearing_its_greeting(product)
    try:
        heard = caller.browser.heard_seconds()
        process = product.processes[process_name]
        process.send_signal(signal.SIGTERM)
        t0 = time.monotonic()

        try:
            _, ended = await caller.wait_for("call_ended", timeout=GRACE_SECONDS + 5)
        except (ConnectionError, TimeoutError) as exc:
            raise AssertionError(product.logs()) from exc
        assert ended["reason"] == "server_shutdown", product.logs()
        assert not [m for _, m in caller.events if m["type"] == "error"], caller.events
        # The call went on for a while, then the agent said why it ends.
        assert time.monotonic() - t0 > 1.5
        assert caller.browser.heard_seconds() - heard > 1.0, product.logs()
        await process_exit(process, timeout=GRACE_SECONDS + 5 - (time.monotonic() - t0))
        assert process.returncode == 0, product.logs()
    finally:
        await caller.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "server_shutdown")
    # The transcript is stored, as for any call (the worker's, or Celery after it).
    for _ in range(40):
        if transcript_of(product, session_id):
            break
        await asyncio.sleep(0.25)
    assert transcript_of(product, session_id)[0][0] == "agent", product.logs()


def transcript_of(product: Product, session_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(product.db_path) as db:
        return db.execute(
            "SELECT t.role, t.text FROM call_sessions_transcriptentry t JOIN "
            "call_sessions_callsession c ON t.call_id = c.id WHERE c.public_id = ? ORDER BY t.seq",
            (session_id,),
        ).fetchall()


@in_own_loop
async def test_sigterm_to_the_embedded_server_drains_the_call_and_exits_in_time(tmp_path):
    env = {"SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
    with Product(tmp_path, env=env) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        await sigterm_during_a_call(product, "daphne")


@in_own_loop
async def test_sigterm_to_a_media_worker_drains_the_call_and_new_calls_are_refused(
    tmp_path, redis_url
):
    env = {"SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
    with Product(tmp_path, env=env, redis_url=redis_url) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        # A warm worker first: the second call must not wait for models.
        warm, _ = await a_call_hearing_its_greeting(product)
        await warm.hangup()
        await warm.close()

        drained = asyncio.create_task(sigterm_during_a_call(product, "worker"))
        await asyncio.sleep(4)  # the worker is draining now: a new call is refused up front
        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(
                launch.start_call,
                product.base_url,
                product.credentials["secret_key"],
                product.credentials["agent_id"],
            )
        assert refused.value.code == 503
        assert json.loads(refused.value.read())["error"]["code"] == "at_capacity"
        await drained


@in_own_loop
async def test_a_call_left_active_by_a_killed_server_is_closed_when_it_starts_again(tmp_path):
    with Product(tmp_path, env={"VOICE_PIPELINE": "greeting"}) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        caller, session_id = await a_call_hearing_its_greeting(product)
        product.processes["daphne"].kill()  # SIGKILL: nothing is told or recorded
        product.processes["daphne"].wait(10)
        await caller.close()
        assert product.call_row(session_id)["status"] == "active"

        product.start()  # the same database
        for _ in range(40):  # closed as the server starts, just after it listens
            row = product.call_row(session_id)
            if row["status"] != "active":
                break
            await asyncio.sleep(0.25)
        assert (row["status"], row["end_reason"]) == ("ended", "error"), product.logs()
        assert "stopped before the call ended" in row["error_message"]


def test_the_widget_tells_the_visitor_the_service_is_restarting(tmp_path, browser):
    from tests.e2e.customer_site import Site, public_key_for
    from tests.e2e.test_widget import shop_page_html, wait_for_widget_event, widget, widget_events

    env = {"VOICE_PIPELINE": "greeting", "SHUTDOWN_GRACE_SECONDS": "2"}
    (tmp_path / "site").mkdir()
    (tmp_path / "product").mkdir()
    site = Site(tmp_path / "site")
    with Product(tmp_path / "product", env=env) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        html = shop_page_html(product, public_key_for(product, site.origin)).replace(
            "greeting: 'Click to talk to our AI assistant'",
            "greeting: 'Click to talk to our AI assistant', fallbackPhone: '+1 555 0100'",
        )
        page = browser.new_page()
        try:
            page.goto(site.page("shop.html", html))
            widget(page, ".launcher").click()
            wait_for_widget_event(page, "call:start")
            product.processes["daphne"].send_signal(signal.SIGTERM)
            wait_for_widget_event(page, "call:end")
            assert widget_events(page, "call:error") == []
            assert widget(page, ".status").inner_text() == (
                "The call ended because the service is restarting. Please call again in a minute."
            )
            assert "+1 555 0100" in widget(page, ".fallback").inner_text()
        finally:
            page.close()
            site.close()


@in_own_loop
async def test_a_killed_worker_of_two_ends_its_call_cleanly_and_new_calls_go_to_the_other(
    tmp_path, redis_url
):
    from thinnest_site.launch import BIN

    with Product(tmp_path, env={"VOICE_PIPELINE": "greeting"}, redis_url=redis_url) as product:
        product._spawn("worker2", [str(BIN / "python"), "manage.py", "run_media_worker"])
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        for _ in range(60):  # both workers have reported themselves
            if len(worker_pids(product)) == 2:
                break
            await asyncio.sleep(0.25)
        assert len(worker_pids(product)) == 2, product.logs()

        caller, session_id = await a_call_hearing_its_greeting(product)
        try:
            holder = product.call_row(session_id)["media_worker"]
            pid = worker_pids(product)[holder]
            victim = next(p for p in product.processes.values() if p.pid == pid)
            victim.kill()  # SIGKILL: nothing is told or recorded by the worker
            _, error = await caller.wait_for("error", timeout=8)
            _, ended = await caller.wait_for("call_ended", timeout=8)
            assert error["code"] == "media_worker_lost" and ended["reason"] == "error"
        finally:
            await caller.close()
        row = product.call_row(session_id)
        assert (row["status"], row["end_reason"]) == ("ended", "error")
        for _ in range(40):  # the greeting the caller heard is kept (Celery, from Redis)
            if transcript_of(product, session_id):
                break
            await asyncio.sleep(0.25)
        assert transcript_of(product, session_id)[0][0] == "agent", product.logs()

        # New calls: taken by the worker that is left, at once.
        for _ in range(2):
            caller, next_id = await a_call_hearing_its_greeting(product)
            await caller.hangup()
            await caller.close()
            assert product.call_row(next_id)["media_worker"] != holder


def worker_pids(product: Product) -> dict[str, int]:
    """Media workers seen alive lately, by channel name: their pids."""
    with sqlite3.connect(product.db_path) as db:
        return dict(
            db.execute(
                "SELECT name, pid FROM call_sessions_mediaworkerrecord "
                "WHERE seen_at > datetime('now', '-10 seconds')"
            ).fetchall()
        )
