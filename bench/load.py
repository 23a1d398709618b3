"""Calls at once: response latency, refusals and late frames as callers are added.

    .venv/bin/python bench/load.py [--levels 1,2,4,8] [--turns 4] [--modes embedded,two-workers]
        [--budget-ms 1500]

For each mode, starts the product on loopback: ``embedded`` (one daphne process with the media
worker inside, the default without Redis) or ``two-workers`` (daphne, two ``run_media_worker``
processes and Celery on a private Redis), SQLite in a temporary directory, the default models.
Then for each level N, N WebRTC callers (aiortc, voice/testing.py) start at once and each speaks
``--turns`` turns of recorded human speech (the moonshine-voice wheel's recordings, cut into
turns by bench/speech_sets.py), timing each answer at the caller from the end of its speech to
the first audible agent frame. A caller refused up front (``POST /voice/start`` 503, or an
``error`` ``at_capacity`` on the socket) counts as refused. Prints, per mode and level: callers
admitted and refused, p50/p95 latency of the admitted calls' turns, late agent frames (sent
after their time: the media worker behind), and the CPU model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.voice_latency import (
    bakery_agent_and_key,
    cpu_model,
    heard_after,
    media_stats_of,
    percentiles,
    quiet_for,
    start_call,
)
from thinnest_site.launch import BIN, LocalProduct, LocalRedis


async def one_caller(base_url: str, key: str, agent_id: str, turns: list) -> dict:
    from voice.testing import WebSocketCaller

    try:
        started = await asyncio.to_thread(start_call, base_url, key, agent_id)
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
        return {"refused": body.get("error", {}).get("code", f"http_{error.code}")}
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    latencies = []
    try:
        await caller.connect()
        try:
            at_started, _ = await caller.wait_for("call_started", timeout=60)
        except (ConnectionError, TimeoutError):
            errors = [m for _, m in caller.events if m["type"] == "error"]
            return {"refused": errors[0]["code"] if errors else "no_call_started"}
        await heard_after(caller.browser, at_started)
        await quiet_for(caller.browser, 1.0)
        for _utterance, pcm in turns:
            caller.browser.microphone.say(pcm)
            while caller.browser.microphone.speaking:
                await asyncio.sleep(0.005)
            spoken_end = caller.browser.microphone.finished_at
            answered = await heard_after(caller.browser, spoken_end, timeout=20)
            if answered is not None:
                latencies.append((answered - spoken_end) * 1000)
            await quiet_for(caller.browser, 1.2)
        await caller.hangup()
    finally:
        await caller.close()
    return {"session_id": started["session_id"], "latencies_ms": latencies, "turns": len(turns)}


def late_frames(session_ids: list[str]) -> int:
    return sum(s.get("late_outbound_frames", 0) for s in media_stats_of(session_ids))


async def level(base_url: str, key: str, agent_id: str, callers: int, turns: int, questions):
    from voice.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    # Each caller starts at a different place in the recordings: not all the same words at once.
    plans = [
        [questions[(i * 3 + t) % len(questions)] for t in range(turns)] for i in range(callers)
    ]
    results = await asyncio.gather(*(one_caller(base_url, key, agent_id, p) for p in plans))
    admitted = [r for r in results if "refused" not in r]
    latencies = [ms for r in admitted for ms in r["latencies_ms"]]
    return {
        "callers": callers,
        "admitted": len(admitted),
        "refused": sorted(r["refused"] for r in results if "refused" in r),
        "turns_answered": len(latencies),
        "turns_asked": sum(r["turns"] for r in admitted),
        "latency_ms": percentiles(latencies),
        "late_frames": await asyncio.to_thread(late_frames, [r["session_id"] for r in admitted]),
        # Each worker's admission estimates after the level (voice/admission.py).
        "admission": await asyncio.to_thread(admission_estimates),
    }


def admission_estimates() -> list[dict]:
    from sessions.selectors import media_workers_live

    return [worker.load for worker in media_workers_live()]


def product_for(mode: str, directory: Path, redis_url: str | None, env: dict) -> LocalProduct:
    product = LocalProduct(directory, redis_url=redis_url if mode != "embedded" else None, env=env)
    product.start()
    if mode == "two-workers":
        product._spawn("worker2", [str(BIN / "python"), "manage.py", "run_media_worker"])
    return product


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--modes", default="embedded,two-workers")
    parser.add_argument("--budget-ms", type=float, default=None)
    args = parser.parse_args()

    modes = args.modes.split(",")
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "turns_per_caller": args.turns}
    if len(modes) > 1:
        # One process per mode: Django's settings (the database) are read once per process.
        for mode in modes:
            argv = [sys.executable, __file__, "--modes", mode, "--levels", args.levels]
            argv += ["--turns", str(args.turns)]
            if args.budget_ms is not None:
                argv += ["--budget-ms", str(args.budget_ms)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True)
            sys.stderr.write(out.stderr[-3000:])
            result[mode] = json.loads(out.stdout)[mode]
        print(json.dumps(result, indent=2))
        return
    result[modes[0]] = run_mode(modes[0], args)
    print(json.dumps(result, indent=2))


def run_mode(mode: str, args) -> list[dict]:
    env = {"START_CALL_IP_RATE": "100000/min", "LOG_LEVEL": "WARNING"}
    if args.budget_ms is not None:
        env["RESPONSE_LATENCY_BUDGET_MS"] = str(args.budget_ms)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-load-{mode}-"))
    with LocalRedis(tmp) as redis:
        product = product_for(mode, tmp, redis.url, env)
        try:
            print(f"{mode}: logs in {product.log_dir}", file=sys.stderr)
            agent_id, key = bakery_agent_and_key(product)
            os.environ.update({k: product.env[k] for k in ("DATABASE_URL", "VAR_DIR")})
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
            import django

            django.setup()
            from bench.speech_sets import human_utterances
            from voice.audio import TRACK_RATE, resample

            questions = [(u, resample(u.pcm16k, 16000, TRACK_RATE)) for u in human_utterances()]
            product.wait_until_healthy(workers=2 if mode == "two-workers" else 1)
            levels = []
            for callers in (int(n) for n in args.levels.split(",")):
                outcome = asyncio.run(
                    level(product.base_url, key, agent_id, callers, args.turns, questions)
                )
                print(json.dumps({mode: outcome}), file=sys.stderr)
                levels.append(outcome)
                time.sleep(3)
            return levels
        finally:
            product.stop()


if __name__ == "__main__":
    main()
