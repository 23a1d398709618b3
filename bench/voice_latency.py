"""Voice-to-voice latency, measured at the caller: end of the caller's speech -> first agent audio.

    .venv/bin/python bench/voice_latency.py [--calls 2] [--turns 10] [--llm qwen2.5-0.5b]
        [--turn-detection silence|smart_turn] [--turn-silence-ms 600]

Starts the product on loopback (daphne + a separate media worker + a private Redis, SQLite in a
temporary directory, the default conversation pipeline and models), then, as a WebRTC caller
(aiortc; voice/testing.py), speaks recorded questions (Piper) followed by silence, and times each
answer from the moment its last speech sample left the caller to the first audible agent frame
that arrived. Prints p50/p95 over all turns, the greeting latency (call_started -> first audio),
and the server's own breakdown per turn (end-of-turn wait, STT, LLM first token, first TTS chunk),
and how many replies were prepared during the end-of-turn silence.
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

from thinnest_site import launch
from thinnest_site.launch import LocalProduct, LocalRedis

QUESTIONS = [
    "What time do you open in the morning?",
    "Do you sell gluten free bread?",
    "Can I order a birthday cake for Saturday?",
    "How much does a croissant cost?",
    "Where is the bakery?",
]


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {}
    q = statistics.quantiles(ordered, n=20) if len(ordered) > 1 else [ordered[0]] * 19
    return {"p50": round(statistics.median(ordered)), "p95": round(q[18]), "n": len(ordered)}


def start_call(base_url: str, key: str, agent_id: str) -> dict:
    return launch.start_call(base_url, key, agent_id, context={"page": "bench"})


async def heard_after(browser, moment: float, timeout: float = 30.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        later = [t for t in browser.heard_frames if t > moment]
        if later:
            return later[0]
        await asyncio.sleep(0.005)
    return None


async def quiet_for(browser, seconds: float, timeout: float = 60.0) -> None:
    """Until the agent has been silent for ``seconds`` (its answer is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = browser.heard_frames[-1] if browser.heard_frames else 0
        if time.monotonic() - last > seconds:
            return
        await asyncio.sleep(0.05)


async def one_call(base_url, key, agent_id, turns: int, questions) -> dict:
    from voice.testing import WebSocketCaller

    started = await asyncio.to_thread(start_call, base_url, key, agent_id)
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    latencies = []
    try:
        await caller.connect()
        at_started, _ = await caller.wait_for("call_started")
        first = await heard_after(caller.browser, at_started)
        greeting_ms = (first - at_started) * 1000 if first else None
        await quiet_for(caller.browser, 1.0)
        for turn in range(turns):
            caller.browser.microphone.say(questions[turn % len(questions)])
            while caller.browser.microphone.speaking:
                await asyncio.sleep(0.005)
            spoken_end = caller.browser.microphone.finished_at
            answered = await heard_after(caller.browser, spoken_end)
            if answered is not None:
                latencies.append((answered - spoken_end) * 1000)
            await quiet_for(caller.browser, 1.2)
        await caller.hangup()
    finally:
        await caller.close()
    return {
        "session_id": started["session_id"],
        "greeting_ms": greeting_ms,
        "latencies_ms": latencies,
    }


def server_timings(session_ids: list[str]) -> list[dict]:
    from sessions.models import CallSession

    deadline = time.monotonic() + 20
    while True:
        stats = list(
            CallSession.objects.filter(public_id__in=session_ids).values_list(
                "media_stats", flat=True
            )
        )
        if all(stats) or time.monotonic() > deadline:
            return [t for s in stats for t in s.get("turn_timings", [])]
        time.sleep(0.2)


async def run(args, base_url: str, key: str, agent_id: str) -> dict:
    from voice.audio import TRACK_RATE, resample
    from voice.engines import registry
    from voice.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    piper = registry.tts_get("piper")
    questions = []
    for text in QUESTIONS:
        pcm, rate = piper.synthesize(text)
        questions.append(resample(pcm, rate, TRACK_RATE))

    calls = [
        await one_call(base_url, key, agent_id, args.turns, questions) for _ in range(args.calls)
    ]
    latencies = [ms for c in calls for ms in c["latencies_ms"]]
    timings = await asyncio.to_thread(server_timings, [c["session_id"] for c in calls])
    breakdown = {
        name: percentiles([t[name] for t in timings if name in t])
        for name in (
            "end_of_turn_wait_ms",
            "stt_ms",
            "llm_first_token_ms",
            "tts_first_chunk_ms",
            "response_latency_ms",
        )
    }
    # What the server's own clock cannot see: network, jitter buffer, frame pacing and the
    # server's end-of-turn clock against the caller's.
    server = breakdown["response_latency_ms"].get("p50")
    caller = percentiles(latencies).get("p50")
    breakdown["transport_and_playout_p50_ms"] = (
        caller - server if caller is not None and server is not None else None
    )
    # Turns whose reply was prepared during the end-of-turn silence (VOICE_PREPARE_REPLY).
    breakdown["prepared_turns"] = sum(1 for t in timings if t.get("prepared"))
    return {
        "turns_answered": len(latencies),
        "turns_asked": args.calls * args.turns,
        "end_of_speech_to_first_agent_audio_ms": percentiles(latencies),
        "greeting_ms": percentiles(
            [c["greeting_ms"] for c in calls if c["greeting_ms"] is not None]
        ),
        "server_breakdown_ms": breakdown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--llm", default="", help="LLM_MODEL for the product (default: its own)")
    parser.add_argument("--turn-detection", default="silence", choices=["silence", "smart_turn"])
    parser.add_argument("--turn-silence-ms", type=int, default=600)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-latency-"))
    settings = {"START_CALL_IP_RATE": "100000/min", "LOG_LEVEL": "WARNING"}
    if args.llm:
        settings["LLM_MODEL"] = args.llm
    with LocalRedis(tmp) as redis, LocalProduct(tmp, redis_url=redis.url, env=settings) as product:
        print(f"logs in {product.log_dir}", file=sys.stderr)
        agent_id = product.manage_json(
            "create_agent",
            "--name",
            "Bakery",
            "--prompt",
            "You are the voice assistant of a bakery open 8 am to 6 pm every day.",
            "--greeting",
            "Hello, this is the bakery. How can I help?",
        )["agent_id"]
        key = product.manage_json("create_api_key", "--kind", "secret", "--rate-limit", "100000")[
            "key"
        ]
        os.environ.update({k: product.env[k] for k in ("DATABASE_URL", "VAR_DIR")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
        django.setup()
        from agents.models import Agent

        Agent.objects.filter(public_id=agent_id).update(
            turn_detection=args.turn_detection, turn_silence_ms=args.turn_silence_ms
        )
        result = asyncio.run(run(args, product.base_url, key, agent_id))
        result["setup"] = {
            "llm": product.env.get("LLM_MODEL") or "(settings default)",
            "turn_detection": args.turn_detection,
            "turn_silence_ms": args.turn_silence_ms,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
