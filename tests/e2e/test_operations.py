"""What an operator reads from real processes: /healthz and /metrics of daphne + a separate media
worker on Redis, with prometheus-client's multiprocess mode (the worker counts, the web process
serves), around a real call whose caller asks a question and gets an answer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import Product, in_own_loop
from thinnest_site import launch

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def metric(text: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def answered_latencies(product: Product, call_id: int) -> list[int]:
    with sqlite3.connect(product.db_path) as db:
        return [
            latency
            for (latency,) in db.execute(
                "SELECT latency_ms FROM call_sessions_transcriptentry WHERE call_id = ? "
                "AND role = 'agent' AND latency_ms IS NOT NULL",
                (call_id,),
            )
        ]


@in_own_loop
async def test_health_and_metrics_follow_a_real_call(tmp_path, redis_url, speech_wav):
    from voice.testing import WebSocketCaller, read_wav

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_ALLOWED_ADDRESSES": "127.0.0.1",
    }
    with Product(tmp_path, env=env, redis_url=redis_url) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        base = product.base_url
        for _ in range(100):  # the worker reports itself once its models are loaded
            status, body = await asyncio.to_thread(get, f"{base}/healthz")
            if status == 200:
                break
            await asyncio.sleep(0.3)
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok", health
        capacity = health["free_capacity"]
        assert capacity >= 1 and len(health["media_workers"]) == 1

        started = await asyncio.to_thread(
            launch.start_call,
            base,
            product.credentials["secret_key"],
            product.credentials["agent_id"],
        )
        caller = WebSocketCaller(started["websocket_url"], started["token"])
        try:
            caller.browser.microphone.say(read_wav(speech_wav.path))
            await caller.connect()
            await caller.wait_for("call_started", timeout=30)
            # During the call: one call held, in /healthz and /metrics alike (the places left are
            # what the worker's admission allows with it: tests/voice/test_admission.py).
            for _ in range(30):
                health = json.loads((await asyncio.to_thread(get, f"{base}/healthz"))[1])
                if health["media_workers"][0]["calls"] == 1:
                    break
                await asyncio.sleep(0.3)
            assert health["media_workers"][0]["calls"] == 1, health
            text = (await asyncio.to_thread(get, f"{base}/metrics"))[1].decode()
            assert metric(text, "thinnest_calls_active") == 1, text

            # The caller's question is answered, then the caller hangs up.
            deadline = asyncio.get_running_loop().time() + 60
            while not any(
                m["type"] == "transcript"
                and m.get("role") == "agent"
                and m.get("final")
                and not m["text"].startswith("Hello")
                for _, m in caller.events
            ):
                assert asyncio.get_running_loop().time() < deadline, caller.events[-5:]
                await asyncio.sleep(0.2)
            await caller.wait_for("agent_listening")
            await caller.hangup()
        finally:
            await caller.close()

        row = product.call_row(started["session_id"])
        for _ in range(40):  # Celery stores the transcript after the call
            answered = answered_latencies(product, row["id"])
            if answered:
                break
            await asyncio.sleep(0.25)
        assert answered, product.logs()
        status, body = await asyncio.to_thread(get, f"{base}/metrics")
        text = body.decode()
        assert status == 200
        # Counted by the worker process, served by the web process: one per answered turn.
        assert metric(text, "thinnest_response_latency_seconds_count") == len(answered), text
        total = metric(text, "thinnest_response_latency_seconds_sum")
        assert total == pytest.approx(sum(answered) / 1000, abs=0.01)
        assert "thinnest_late_audio_frames_total" in text
        for _ in range(20):  # the worker reports within a second that the call has gone
            if metric(text, "thinnest_calls_active") == 0:
                break
            await asyncio.sleep(0.25)
            text = (await asyncio.to_thread(get, f"{base}/metrics"))[1].decode()
        assert metric(text, "thinnest_calls_active") == 0


@in_own_loop
async def test_the_embedded_server_is_healthy_before_its_first_call(tmp_path):
    with Product(tmp_path, env={"VOICE_PIPELINE": "greeting"}) as product:
        for _ in range(40):  # its media worker starts with it, not with the first call
            status, body = await asyncio.to_thread(get, f"{product.base_url}/healthz")
            if status == 200:
                break
            await asyncio.sleep(0.25)
        health = json.loads(body)
        assert status == 200, health
        assert [w["embedded"] for w in health["media_workers"]] == [True]
        assert product.call_count() == 0
