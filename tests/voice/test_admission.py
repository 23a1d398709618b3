"""Admission by measured load (voice/admission.py): the arithmetic on given measurements, the
meters on real inputs, and two real workers sharing the dispatch channel."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from channels.db import database_sync_to_async

from sessions.models import MediaWorkerRecord
from tests.voice.test_worker import StandInConsumer, new_session
from voice import protocol
from voice import worker as worker_module
from voice.admission import Admission, CpuMeter
from voice.testing import FakeBrowser, tone
from voice.worker import MediaWorker


def test_the_predicted_latency_grows_with_the_load_and_decides_how_many_calls_fit():
    admission = Admission(budget_ms=1500, base_ms=1000, capacity=8)
    admission.per_call = 0.15
    assert admission.predicted_ms(1) == pytest.approx(1000 / 0.85)
    assert admission.predicted_ms(2) == pytest.approx(1000 / 0.70)
    # 1000/(1-0.15k) <= 1500 for k <= 2: two calls on an idle machine, one more with one in.
    assert admission.free(0) == 2
    assert admission.free(1) == 1
    assert admission.free(2) == 0 and not admission.admits(2)
    # Other processes' load on the machine leaves less room.
    admission.others = 0.2
    assert admission.free(1) == 0
    # The first call is not forced onto a machine where another worker holds calls.
    crowded = Admission(budget_ms=1500, base_ms=1000, capacity=8)
    crowded.others, crowded.calls_beside = 0.6, 2
    assert crowded.free(0) == 0
    crowded.calls_beside = 0
    assert crowded.free(0) == 1
    # A machine too slow for the budget still answers one caller at a time.
    slow = Admission(budget_ms=1500, base_ms=2000, capacity=8)
    assert slow.free(0) == 1 and slow.free(1) == 0
    # Never past the capacity setting, whatever the CPU could do.
    fast = Admission(budget_ms=1500, base_ms=100, capacity=3)
    fast.per_call = 0.01
    assert fast.free(0) == 3 and fast.free(3) == 0


def test_the_estimates_learn_from_measured_load_and_latency():
    admission = Admission(budget_ms=1500, base_ms=1000, capacity=8)
    # Two calls: this process used 40% of the machine, everything together 70%.
    for _ in range(50):
        admission.observe_load(machine=0.7, own=0.4, calls=2)
    assert admission.per_call == pytest.approx(0.2, rel=0.01)
    assert admission.others == pytest.approx(0.3, rel=0.01)
    # Replies took 2 s at that load (0.3 + 2 x 0.2): 600 ms on an idle machine.
    for _ in range(50):
        admission.observe_latency(2000)
    assert admission.base_ms == pytest.approx(600, rel=0.01)
    assert admission.predicted_ms(0) == pytest.approx(2000, rel=0.01)


def test_the_cpu_meter_reads_the_machines_load_and_this_process_part(tmp_path):
    machine, process = tmp_path / "stat", tmp_path / "self-stat"
    # cpu: user nice system idle iowait ...; the process: utime and stime after the command.
    machine.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    process.write_text("42 (python (x)) S " + " ".join(["0"] * 10) + " 10 5 0 0\n")
    meter = CpuMeter(str(machine), str(process))
    machine.write_text("cpu  160 0 120 820 0 0 0 0 0 0\n")  # 80 busy of 100 jiffies
    process.write_text("42 (python (x)) S " + " ".join(["0"] * 10) + " 40 15 0 0\n")  # 40 own
    assert meter.read() == pytest.approx((0.8, 0.4))
    real = CpuMeter()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # this process busy on one core
        pass
    machine_load, own = real.read()
    assert 0.0 < own <= machine_load <= 1.0
    assert own > 0.2 / os.cpu_count()


@pytest.fixture
def loopback(media_on_loopback):
    pass


async def connected(spec) -> tuple[StandInConsumer, FakeBrowser]:
    consumer, browser = StandInConsumer(spec), FakeBrowser()
    await consumer.open()
    browser.microphone.say(tone(0.5))
    await consumer.connect(browser)
    return consumer, browser


@pytest.fixture
def redis_layer(settings, redis_url):
    """Workers sharing a dispatch channel, as in production: on Redis (the in-memory layer is
    for one process and one reader per channel)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": None}],
                "prefix": "test-admission",
            },
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
async def test_a_worker_at_its_budget_leaves_the_next_call_to_another_worker(loopback, redis_layer):
    busy, spare = MediaWorker(capacity=4), MediaWorker(capacity=4)
    await busy.start()
    held = []
    try:
        held.append(await connected(await new_session()))  # `busy` alone takes the first call
        # Its machine is loaded: one more call would answer past the budget. (The CPU meter's
        # readings are kept out: this machine's real load would move the figure.)
        busy.admission.observe_load = lambda **_: None
        busy.admission.others = 0.9
        assert busy.free() == 0
        await spare.start()

        for _ in range(3):
            held.append(await connected(await new_session()))
        assert len(busy.calls) == 1 and len(spare.calls) == 3  # none offered to `busy`

        # What each reports, for /healthz and for the start-call API (now, not at the next tick).
        await busy._report()
        await spare._report()
        rows = {
            r.name: r for r in await database_sync_to_async(list)(MediaWorkerRecord.objects.all())
        }
        assert rows[busy.channel].free == 0 and rows[busy.channel].load["others"] == 0.9
    finally:
        for consumer, browser in held:
            await browser.close()
            await consumer.close()
        await busy.stop()
        await spare.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_worker_alone_declines_a_call_past_its_budget_at_once(loopback):
    worker = MediaWorker(capacity=4, embedded=True)  # nobody else to leave the call to
    await worker.start()
    held = None
    try:
        held = await connected(await new_session())
        worker.admission.observe_load = lambda **_: None
        worker.admission.others = 0.9
        late = StandInConsumer(await new_session())
        await late.open()
        rejected = await late.wait_type(protocol.WORKER_REJECTED, timeout=3)
        assert rejected["code"] == "at_capacity" and "budget" in rejected["message"]
        await late.close()
    finally:
        if held:
            await held[1].close()
            await held[0].close()
        await worker.stop()


@pytest.mark.django_db(transaction=True)
async def test_of_two_callers_at_once_where_one_fits_the_first_to_answer_gets_in(loopback):
    worker = MediaWorker(capacity=4, embedded=True)
    await worker.start()
    worker.admission.observe_load = lambda **_: None
    worker.admission.others = 0.9  # one call fits (the first is always taken), two do not
    pairs = [(StandInConsumer(await new_session()), FakeBrowser()) for _ in range(2)]
    try:
        for consumer, _ in pairs:
            await consumer.open()
        offers = [(await c.wait_type(protocol.SIGNAL_OFFER))["sdp"] for c, _ in pairs]
        for (consumer, browser), offer in zip(pairs, offers, strict=True):
            browser.microphone.say(tone(0.5))
            await consumer.to_worker(protocol.SIGNAL_ANSWER, sdp=await browser.answer(offer))
        outcomes = [
            (
                await c.wait_for(
                    lambda m: m["type"] in (protocol.MEDIA_STARTED, protocol.MEDIA_ENDED),
                    timeout=15,
                )
            )["type"]
            for c, _ in pairs
        ]
        assert outcomes == [protocol.MEDIA_STARTED, protocol.MEDIA_ENDED]
        ended = await pairs[1][0].wait_type(protocol.MEDIA_ENDED)
        assert ended["reason"] == "at_capacity"
    finally:
        for consumer, browser in pairs:
            await browser.close()
            await consumer.close()
        await worker.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_hang_up_frees_the_place_for_the_next_caller_at_once(loopback, monkeypatch):
    monkeypatch.setattr(worker_module, "SUPERVISE_INTERVAL_SECONDS", 5.0)  # no tick to help
    worker = MediaWorker(capacity=4, embedded=True)
    await worker.start()
    worker.admission.observe_load = lambda **_: None
    worker.admission.others = 0.9  # one call fits
    try:
        consumer, browser = await connected(await new_session())

        async def reported_free() -> int:
            return (await database_sync_to_async(MediaWorkerRecord.objects.get)()).free

        await worker._report()  # what its next tick would say: full
        assert await reported_free() == 0
        await consumer.to_worker(protocol.CALL_CLOSE, reason="user_hangup")
        await consumer.wait_type(protocol.MEDIA_ENDED)
        await browser.close()
        await consumer.close()
        deadline = asyncio.get_running_loop().time() + 2
        while await reported_free() == 0:
            assert asyncio.get_running_loop().time() < deadline, "still reported full"
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
