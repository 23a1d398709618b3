"""The real media worker, over the real channel layer, with a real aiortc peer as the browser.

A stand-in consumer speaks voice/protocol.py; tests/sessions/test_call_consumer.py pins the
consumer's side, and tests/e2e runs both with Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from agents.services import agent_create
from sessions.models import CallSession
from sessions.services import call_session_start
from voice import call as call_module
from voice import protocol
from voice.protocol import CallSpec
from voice.testing import FakeBrowser, tone
from voice.worker import MediaWorker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_only(media_on_loopback):
    """Transport tests: the greeting pipeline needs no models (tests/voice/test_conversation.py
    runs the conversation pipeline through this same worker)."""


@database_sync_to_async
def new_session(greeting: str = "", **limits) -> CallSpec:
    """A call session row and its spec; ``limits`` go straight into the spec (below what an
    agent may be saved with, to keep the test short)."""
    agent = agent_create(name="Worker test", greeting=greeting)
    session = call_session_start(agent=agent, api_key=None).session
    return CallSpec(
        session_id=session.public_id, agent_id=agent.public_id, greeting=greeting, **limits
    )


class StandInConsumer:
    """The consumer's side of voice/protocol.py, recording everything the worker says."""

    def __init__(self, spec: CallSpec) -> None:
        self.spec = spec
        self.layer = get_channel_layer()
        self.channel = ""
        self.messages: list[dict] = []
        self._reader: asyncio.Task | None = None
        self._arrived = asyncio.Event()

    async def open(self) -> None:
        self.channel = await self.layer.new_channel()
        self._reader = asyncio.create_task(self._read())
        await self.layer.send(
            settings.MEDIA_DISPATCH_CHANNEL,
            {
                "type": protocol.CALL_OPEN,
                "session_id": self.spec.session_id,
                "reply_to": self.channel,
                "expires_at": time.time() + 5,
                "call": self.spec.to_message(),
            },
        )

    async def _read(self) -> None:
        while True:
            self.messages.append(await self.layer.receive(self.channel))
            self._arrived.set()

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError([m["type"] for m in self.messages])
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_type(self, kind: str, timeout: float = 10.0) -> dict:
        return await self.wait_for(lambda m: m["type"] == kind, timeout)

    async def to_worker(self, kind: str, **fields) -> None:
        worker = (await self.wait_type(protocol.WORKER_ATTACHED))["worker"]
        await self.layer.send(worker, {"type": kind, "session_id": self.spec.session_id, **fields})

    async def connect(self, browser: FakeBrowser) -> None:
        offer = (await self.wait_type(protocol.SIGNAL_OFFER))["sdp"]
        await self.to_worker(protocol.SIGNAL_ANSWER, sdp=await browser.answer(offer))
        await self.wait_type(protocol.MEDIA_STARTED)

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


@pytest.fixture
async def worker():
    media_worker = MediaWorker(capacity=2)
    await media_worker.start()
    yield media_worker
    await media_worker.stop()


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("pipeline", ["conversation", "greeting"])
async def test_a_call_gets_an_offer_media_and_the_spoken_greeting(worker, settings, pipeline):
    settings.VOICE_PIPELINE = pipeline
    spec = await new_session(greeting="Welcome to the test.")
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        offer = (await consumer.wait_type(protocol.SIGNAL_OFFER))["sdp"]
        assert offer["type"] == "offer" and "m=audio" in offer["sdp"]
        assert "127.0.0.1" in offer["sdp"]
        browser.microphone.say(tone(1.0))
        await consumer.connect(browser)

        await consumer.wait_for(lambda m: m.get("event", {}).get("type") == "agent_speaking")
        transcript = await consumer.wait_for(
            lambda m: m.get("event", {}).get("type") == "transcript"
        )
        assert transcript["event"] == {
            "type": "transcript",
            "role": "agent",
            "text": "Welcome to the test.",
            "final": True,
            "utterance_id": "agent-1",
        }
        await consumer.wait_for(lambda m: m.get("event", {}).get("type") == "agent_listening")
        await consumer.wait_type(protocol.WORKER_HEARTBEAT)
        assert browser.heard_seconds() > 0.5
        assert browser.received_rms > 100

        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()

    session = await database_sync_to_async(CallSession.objects.get)(public_id=spec.session_id)
    stats = session.media_stats
    assert stats["inbound_seconds"] > 0.9
    assert stats["speech_segments"] and stats["speech_segments"][0]["end_ms"] >= 900
    assert stats["outbound_seconds"] > 0.5


async def connected_calls(count: int) -> list[tuple[StandInConsumer, FakeBrowser]]:
    """``count`` calls whose media flows."""
    calls = []
    for _ in range(count):
        consumer, browser = StandInConsumer(await new_session()), FakeBrowser()
        await consumer.open()
        await consumer.connect(browser)
        calls.append((consumer, browser))
    return calls


async def hang_up(calls: list[tuple[StandInConsumer, FakeBrowser | None]]) -> None:
    for consumer, browser in calls:
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await consumer.close()
        if browser is not None:
            await browser.close()


async def test_a_call_beyond_capacity_is_rejected(worker):
    # Its token issued first: once the worker reports itself full, the start-call API refuses.
    extra_spec = await new_session()
    held = await connected_calls(2)
    try:
        extra = StandInConsumer(extra_spec)
        await extra.open()
        rejected = await extra.wait_type(protocol.WORKER_REJECTED)
        assert rejected["code"] == "at_capacity"
        assert len(worker.calls) == 2
        await extra.close()
    finally:
        await hang_up(held)
    await wait_until(lambda: not worker.calls)


async def test_calls_that_never_answer_do_not_take_a_real_callers_place(worker):
    # What a stranger with a published public key did: sockets that authenticate and never
    # answer the offer. They used to fill the worker (capacity 2 here) and refuse the next caller.
    strangers = []
    try:
        for _ in range(5):
            stranger = StandInConsumer(await new_session())
            await stranger.open()
            await stranger.wait_type(protocol.SIGNAL_OFFER)
            strangers.append((stranger, None))
        [(caller, _)] = calls = await connected_calls(1)  # MEDIA_STARTED, not WORKER_REJECTED
        assert not [m for m in caller.messages if m["type"] == protocol.WORKER_REJECTED]
        assert worker.calls_with_media() == 1
        await hang_up(calls)
    finally:
        await hang_up(strangers)
    await wait_until(lambda: not worker.calls)


async def test_a_call_whose_media_starts_after_the_places_filled_gets_at_capacity(worker):
    waiting, waiting_browser = StandInConsumer(await new_session()), FakeBrowser()
    await waiting.open()
    offer = (await waiting.wait_type(protocol.SIGNAL_OFFER))["sdp"]
    held = await connected_calls(2)
    try:
        await waiting.to_worker(protocol.SIGNAL_ANSWER, sdp=await waiting_browser.answer(offer))
        ended = await waiting.wait_type(protocol.MEDIA_ENDED)
        assert ended["reason"] == protocol.REASON_AT_CAPACITY
        assert worker.calls_with_media() == 2
    finally:
        await hang_up(held)
        await waiting_browser.close()
        await waiting.close()
    await wait_until(lambda: not worker.calls)


async def test_an_expired_call_open_is_ignored(worker):
    spec = await new_session()
    consumer = StandInConsumer(spec)
    consumer.channel = await consumer.layer.new_channel()
    await consumer.layer.send(
        settings.MEDIA_DISPATCH_CHANNEL,
        {
            "type": protocol.CALL_OPEN,
            "session_id": spec.session_id,
            "reply_to": consumer.channel,
            "expires_at": time.time() - 1,
            "call": spec.to_message(),
        },
    )
    await asyncio.sleep(0.3)
    assert not worker.calls


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"max_duration_seconds": 1}, "max_duration"),
        ({"silence_timeout_seconds": 1, "greeting": "Hi."}, "silence_timeout"),
    ],
)
async def test_the_worker_ends_calls_at_their_limits(worker, fields, reason):
    spec = await new_session(**fields)
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        await consumer.connect(browser)
        ended = await consumer.wait_type(protocol.MEDIA_ENDED, timeout=10)
        assert ended["reason"] == reason
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()


async def test_a_browser_that_trickles_its_candidates_connects(worker):
    spec = await new_session()
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        offer = (await consumer.wait_type(protocol.SIGNAL_OFFER))["sdp"]
        answer, candidates = await browser.answer_trickled(offer)
        assert "a=candidate" not in answer["sdp"] and candidates[-1]["candidate"] == ""
        browser.microphone.say(tone(0.5))
        await consumer.to_worker(protocol.SIGNAL_ANSWER, sdp=answer)
        for candidate in [{"candidate": "candidate:garbage"}, *candidates]:
            await consumer.to_worker(protocol.SIGNAL_CANDIDATE, candidate=candidate)
        # A second answer (the browser answered a re-sent offer too) changes nothing.
        await consumer.to_worker(protocol.SIGNAL_ANSWER, sdp=answer)
        await consumer.wait_type(protocol.MEDIA_STARTED)
        assert len(worker.calls) == 1
        assert not [m for m in consumer.messages if m["type"] == protocol.MEDIA_ENDED]
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()


async def test_a_call_that_never_connects_fails_at_the_connect_timeout(worker, settings):
    settings.CALL_CONNECT_TIMEOUT_SECONDS = 0.3
    consumer = StandInConsumer(await new_session())
    await consumer.open()
    try:
        await consumer.wait_type(protocol.SIGNAL_OFFER)
        ended = await consumer.wait_type(protocol.MEDIA_ENDED)
        assert ended["reason"] == "media_failed"
        await wait_until(lambda: not worker.calls)
    finally:
        await consumer.close()


class BrokenPipeline:
    def __init__(self, spec, output, events) -> None:
        pass

    async def start(self) -> None:
        pass

    def push_audio(self, pcm16k) -> None:
        raise RuntimeError("pipeline bug")

    async def close(self) -> None:
        pass

    def stats(self) -> dict:
        return {}


def missing_model(spec, output, events):
    raise RuntimeError("no model here")


@pytest.mark.parametrize(
    ("factory", "message"),
    [(missing_model, "no model here"), (BrokenPipeline, "pipeline bug")],
)
async def test_a_failing_pipeline_ends_its_call_and_the_worker_goes_on(
    worker, monkeypatch, factory, message
):
    monkeypatch.setattr(call_module, "pipeline_create", factory)
    spec = await new_session()
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        if factory is BrokenPipeline:
            browser.microphone.say(tone(0.5))
            await consumer.connect(browser)
        ended = await consumer.wait_type(protocol.MEDIA_ENDED)
        assert ended["reason"] == "error" and message in ended["message"]
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()

    monkeypatch.undo()
    await one_call(await new_session())
    assert worker.calls_served == (2 if factory is BrokenPipeline else 1)


async def test_stopping_the_worker_tells_every_call(settings):
    media_worker = MediaWorker(capacity=2)
    await media_worker.start()
    consumer = StandInConsumer(await new_session())
    await consumer.open()
    await consumer.wait_type(protocol.WORKER_ATTACHED)
    await media_worker.stop()
    ended = await consumer.wait_type(protocol.MEDIA_ENDED)
    assert ended["reason"] == "server_shutdown" and "stopped" in ended["message"]
    assert not media_worker.calls
    await consumer.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_peer_connections() -> int:
    gc.collect()
    # type(), not isinstance(): isinstance() on a dead weak proxy raises ReferenceError.
    return sum(1 for o in gc.get_objects() if type(o) is RTCPeerConnection)


async def one_call(spec: CallSpec) -> None:
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        browser.microphone.say(tone(0.1))
        await consumer.connect(browser)
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
    finally:
        await browser.close()
        await consumer.close()


async def test_200_sequential_calls_leave_no_peer_task_or_file_descriptor_behind(worker):
    specs = [await new_session(greeting="Hi.") for _ in range(201)]
    await one_call(specs[0])  # warm up: imports, greeting cache, DB connections of the thread pool
    await wait_until(lambda: not worker.calls)
    await asyncio.sleep(0.2)
    fds, tasks, peers = open_fds(), len(asyncio.all_tasks()), live_peer_connections()

    for spec in specs[1:]:
        await one_call(spec)
        await wait_until(lambda: not worker.calls)
    await asyncio.sleep(0.5)

    assert worker.calls_served == 201
    assert not worker.calls
    assert live_peer_connections() <= peers
    assert len(asyncio.all_tasks()) <= tasks
    # A few descriptors come and go with the database thread pool and aioice's sockets closing.
    assert open_fds() <= fds + 4, (fds, open_fds())


# --- dropped connections -------------------------------------------------------------------------


async def test_a_dropped_call_resumes_on_a_new_peer_with_the_same_conversation(worker, settings):
    settings.CALL_RESUME_GRACE_SECONDS = 10
    spec = await new_session(greeting="Welcome back to the test.")
    first, browser = StandInConsumer(spec), FakeBrowser()
    await first.open()
    second = None
    second_browser = FakeBrowser()
    try:
        browser.microphone.say(tone(1.0))
        await first.connect(browser)
        await first.wait_for(lambda m: m.get("event", {}).get("type") == "agent_listening")
        call = worker.calls[spec.session_id]
        played_before = call.track.played_ms

        # The network goes: the browser's peer and socket are gone; the consumer says so.
        await browser.close()
        await first.to_worker(protocol.CALL_DETACH)
        await wait_until(lambda: call.detached_at is not None)

        second = StandInConsumer(spec)
        second.channel = await second.layer.new_channel()
        second._reader = asyncio.create_task(second._read())
        worker_channel = (await first.wait_type(protocol.WORKER_ATTACHED))["worker"]
        await second.layer.send(
            worker_channel,
            {
                "type": protocol.CALL_RESUME,
                "session_id": spec.session_id,
                "reply_to": second.channel,
            },
        )
        second_browser.microphone.say(tone(1.0))
        await second.connect(second_browser)
        # The same call object and pipeline, on a new peer; the old socket heard it was taken.
        assert worker.calls[spec.session_id] is call and call.detached_at is None
        await first.wait_type(protocol.CALL_TAKEN_OVER)
        await second.wait_type(protocol.WORKER_HEARTBEAT)

        # The agent's track goes on in the new peer: agent audio reaches the new browser.
        call.track.play(tone(0.6), 48000)
        await wait_until(lambda: second_browser.heard_seconds() > 0.4)
        assert second_browser.received_rms > 100
        assert call.track.played_ms > played_before

        await second.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await second_browser.close()
        await first.close()
        if second:
            await second.close()


async def test_a_dropped_call_nobody_resumes_ends_as_connection_lost(worker, settings):
    settings.CALL_RESUME_GRACE_SECONDS = 0.5
    spec = await new_session(greeting="Hi.")
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        browser.microphone.say(tone(1.0))
        await consumer.connect(browser)
        await database_sync_to_async(CallSession.objects.filter(public_id=spec.session_id).update)(
            status=CallSession.Status.ACTIVE, started_at=timezone.now()
        )
        await consumer.to_worker(protocol.CALL_DETACH)
        dropped_at = timezone.now()
        await browser.close()
        await wait_until(lambda: not worker.calls, timeout=5)
    finally:
        await consumer.close()
    session = await database_sync_to_async(CallSession.objects.get)(public_id=spec.session_id)
    assert (session.status, session.end_reason) == (CallSession.Status.ENDED, "connection_lost")
    # The call ended when the connection dropped, not when the grace period ran out.
    assert abs((session.ended_at - dropped_at).total_seconds()) < 0.3


async def test_resuming_a_call_the_worker_no_longer_has_ends_it(worker):
    spec = await new_session()
    consumer = StandInConsumer(spec)
    consumer.channel = await consumer.layer.new_channel()
    consumer._reader = asyncio.create_task(consumer._read())
    try:
        await consumer.layer.send(
            worker.channel,
            {
                "type": protocol.CALL_RESUME,
                "session_id": spec.session_id,
                "reply_to": consumer.channel,
            },
        )
        ended = await consumer.wait_type(protocol.MEDIA_ENDED, timeout=3)
        assert ended["reason"] == "connection_lost"
    finally:
        await consumer.close()


async def test_a_recorded_call_stores_both_sides_mixed_in_one_opus_file(worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    spec = await new_session(greeting="Welcome to the recorded line.", recording_enabled=True)
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        browser.microphone.say(tone(1.0, frequency=5000))
        await consumer.connect(browser)
        await consumer.wait_for(lambda m: m.get("event", {}).get("type") == "agent_listening")
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()

    session = await database_sync_to_async(CallSession.objects.get)(public_id=spec.session_id)
    assert session.recording.name.endswith(f"{spec.session_id}.ogg")
    path = tmp_path / session.recording.name
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        pcm = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        ).astype(np.float32)
        rate = stream.rate
    assert len(pcm) / rate >= 1.5  # the caller's second and the greeting
    # Both sides are in it: the caller's 5 kHz tone (a sharp peak no voice makes) and the
    # agent's voice (energy between 200 Hz and 4 kHz, where the tone has none).
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    near_tone = spectrum[(freqs > 4500) & (freqs < 5500)]
    assert spectrum[(freqs > 4990) & (freqs < 5010)].max() > 20 * np.median(near_tone)
    assert spectrum[(freqs > 200) & (freqs < 4000)].sum() > 0.3 * spectrum.sum()


async def test_an_unrecorded_call_stores_no_recording(worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    spec = await new_session(greeting="Welcome.")
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    try:
        browser.microphone.say(tone(0.5))
        await consumer.connect(browser)
        await consumer.wait_for(lambda m: m.get("event", {}).get("type") == "agent_listening")
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await wait_until(lambda: not worker.calls)
    finally:
        await browser.close()
        await consumer.close()
    session = await database_sync_to_async(CallSession.objects.get)(public_id=spec.session_id)
    assert not session.recording
    assert not any(tmp_path.rglob("*.ogg"))
