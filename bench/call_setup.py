"""Call setup time, and how many idle calls one media worker holds before its audio runs late.

    .venv/bin/python bench/call_setup.py [--calls 20] [--levels 5,10,20,30,40] [--hold 6]

Starts the product on loopback (daphne + one separate `run_media_worker` + a private Redis, SQLite
in a temporary directory), then, as a WebRTC caller speaking the product's WebSocket protocol
(aiortc; voice/testing.py):

1. makes --calls sequential calls and measures, at the caller, POST /voice/start -> `call_started`
   and -> first audible agent audio (the greeting);
2. holds N concurrent idle calls for --hold seconds at each level and reads what the worker
   recorded: the share of outbound 20 ms frames handed to the sender more than 10 ms late.

The callers run in this process on the same 2 cores as the worker, so level figures are a lower
bound for a worker with a machine to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

from thinnest_site.launch import LocalProduct, LocalRedis, start_call

LATE_SHARE_LIMIT = 0.01


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=20) if len(ordered) > 1 else [ordered[0]] * 19
    return {"p50": round(statistics.median(ordered), 1), "p95": round(q[18], 1), "n": len(ordered)}


async def one_call(base_url: str, key: str, agent_id: str) -> dict:
    from voice.testing import WebSocketCaller

    t0 = time.monotonic()
    started = await asyncio.to_thread(start_call, base_url, key, agent_id)
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    try:
        await caller.connect()
        at_started, _ = await caller.wait_for("call_started")
        deadline = time.monotonic() + 10
        while caller.browser.first_heard_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await caller.hangup()
        return {
            "to_call_started_ms": (at_started - t0) * 1000,
            "to_first_audio_ms": ((caller.browser.first_heard_at or float("nan")) - t0) * 1000,
        }
    finally:
        await caller.close()


async def hold_calls(base_url: str, key: str, agent_id: str, count: int, hold: float) -> list[str]:
    from voice.testing import WebSocketCaller

    callers = []
    for _ in range(count):
        started = await asyncio.to_thread(start_call, base_url, key, agent_id)
        caller = WebSocketCaller(started["websocket_url"], started["token"])
        await caller.connect()
        callers.append((started["session_id"], caller))
    try:
        await asyncio.gather(*(c.wait_for("call_started", timeout=60) for _, c in callers))
        await asyncio.sleep(hold)
        await asyncio.gather(*(c.hangup() for _, c in callers))
    finally:
        await asyncio.gather(*(c.close() for _, c in callers), return_exceptions=True)
    return [session_id for session_id, _ in callers]


def late_share(session_ids: list[str]) -> tuple[float, float]:
    from sessions.models import CallSession

    deadline = time.monotonic() + 15
    while True:
        stats = list(
            CallSession.objects.filter(public_id__in=session_ids).values_list(
                "media_stats", flat=True
            )
        )
        if all(s for s in stats) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    frames = sum(s.get("outbound_frames", 0) for s in stats)
    late = sum(s.get("late_outbound_frames", 0) for s in stats)
    worst = max((s.get("max_outbound_lateness_ms", 0) for s in stats), default=0)
    return (late / frames if frames else 1.0), worst


async def main_async(args, base_url: str, key: str, agent_id: str) -> dict:
    from voice.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    await one_call(base_url, key, agent_id)  # warm up (greeting cache, imports)
    setup = [await one_call(base_url, key, agent_id) for _ in range(args.calls)]
    result = {
        "sequential_calls": args.calls,
        "start_to_call_started_ms": percentiles([s["to_call_started_ms"] for s in setup]),
        "start_to_first_agent_audio_ms": percentiles([s["to_first_audio_ms"] for s in setup]),
        "idle_calls": [],
    }
    for level in args.levels:
        session_ids = await hold_calls(base_url, key, agent_id, level, args.hold)
        share, worst = await asyncio.to_thread(late_share, session_ids)
        result["idle_calls"].append(
            {"concurrent": level, "late_frame_share": round(share, 4), "worst_lateness_ms": worst}
        )
        print(json.dumps(result["idle_calls"][-1]), file=sys.stderr)
        if share > LATE_SHARE_LIMIT:
            break
    within = [
        r["concurrent"] for r in result["idle_calls"] if r["late_frame_share"] <= LATE_SHARE_LIMIT
    ]
    result["max_idle_calls_on_time"] = max(within, default=0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--levels", default="1,2,5,10,15,20,30")
    parser.add_argument("--hold", type=float, default=6.0)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="bench-call-setup-"))
    settings = {
        "MEDIA_WORKER_CAPACITY": "200",
        "START_CALL_IP_RATE": "100000/min",
        "LOG_LEVEL": "WARNING",
    }
    with LocalRedis(tmp) as redis, LocalProduct(tmp, redis_url=redis.url, env=settings) as product:
        print(f"logs in {product.log_dir}", file=sys.stderr)
        agent_id = product.manage_json(
            "create_agent", "--name", "Bench", "--greeting", "Hello, how can I help?"
        )["agent_id"]
        key = product.manage_json("create_api_key", "--kind", "secret", "--rate-limit", "100000")[
            "key"
        ]
        # This process reads the calls' media stats from the product's database.
        os.environ.update({k: product.env[k] for k in ("DATABASE_URL", "VAR_DIR")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
        os.environ.setdefault("LOG_LEVEL", "WARNING")  # the callers' aiortc chatter
        django.setup()
        result = asyncio.run(main_async(args, product.base_url, key, agent_id))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
