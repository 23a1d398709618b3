"""The first call after a server starts is as quick as the ones after it.

Before, the embedded media worker and every model loaded on the first call: 3.4-4.2 s from the
socket opening to ``call_started`` (warm calls: 0.4 s), and a slower first reply. Now the web
process loads and warms its models before it listens. A fresh daphne (the default, embedded
mode), real aiortc callers, the real conversation pipeline."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import in_own_loop
from thinnest_site.launch import LocalProduct, start_call
from voice.audio import resample

pytestmark = pytest.mark.e2e

QUESTION = "What time do you open on Saturday?"


async def one_call(product: LocalProduct, question_48k) -> tuple[float, float]:
    """(socket open -> call_started, end of the caller's question -> first agent audio) in s."""
    from voice.testing import WebSocketCaller

    credentials = product.credentials
    started = await asyncio.to_thread(
        start_call, product.base_url, credentials["secret_key"], credentials["agent_id"]
    )
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    try:
        opened = time.monotonic()
        await caller.connect()
        at_started, _ = await caller.wait_for("call_started", timeout=30)
        # After the greeting: the agent listens.
        await caller.wait_for("agent_listening", timeout=30)
        caller.browser.microphone.say(question_48k)
        deadline = time.monotonic() + 30
        while caller.browser.microphone.finished_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        spoken = caller.browser.microphone.finished_at
        heard_before = len(caller.browser.heard_frames)
        while time.monotonic() < deadline:
            later = [t for t in caller.browser.heard_frames[heard_before:] if t > spoken]
            if later:
                break
            await asyncio.sleep(0.01)
        assert later, "the agent never answered"
        await caller.hangup()
        return at_started - opened, later[0] - spoken
    finally:
        await caller.close()


@in_own_loop
async def test_the_first_call_after_a_start_connects_and_answers_like_later_ones(tmp_path):
    from voice.engines import registry

    pcm, rate = registry.tts_get("piper").synthesize(QUESTION)
    question = resample(pcm, rate, 48000)
    with LocalProduct(tmp_path) as product:  # embedded: the web process holds the worker
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        first_connect, first_reply = await one_call(product, question)
        later_connect, later_reply = await one_call(product, question)
    print(
        f"connect: first {first_connect:.2f} s, later {later_connect:.2f} s; "
        f"reply: first {first_reply:.2f} s, later {later_reply:.2f} s"
    )
    assert first_connect < 1.0, product.logs()
    # "Like later ones": a cold first reply used to pay for loading the models.
    assert first_reply < 2 * later_reply + 1.0
