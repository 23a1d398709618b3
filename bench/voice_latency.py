"""Voice-to-voice latency, measured at the caller: end of the caller's speech -> first agent audio.

    .venv/bin/python bench/voice_latency.py [--calls 2] [--turns 10] [--llm qwen2.5-0.5b]
        [--turn-detection silence|smart_turn] [--turn-silence-ms 600] [--speech piper,human]

Starts the product on loopback (daphne + a separate media worker + a private Redis, SQLite in a
temporary directory, the default conversation pipeline and models), then, as a WebRTC caller
(aiortc; voice/testing.py), speaks recorded questions (Piper) followed by silence, and times each
answer from the moment its last speech sample left the caller to the first audible agent frame
that arrived. Prints p50/p95 over all turns, the greeting latency (call_started -> first audio),
and the server's own breakdown per turn (end-of-turn wait, STT, LLM first token, first TTS chunk),
and how many replies were prepared during the end-of-turn silence.

Two speech sets (``--speech``): ``piper``, the questions below in the Piper voice, and ``human``,
recorded human speech from the moonshine-voice wheel cut into turns (bench/speech_sets.py). For
each: the turns' word error rate (Piper: against the question's text; human: against the
product's Whisper on the whole clip offline, in its full 30 s window), talk-over (agent audio heard while the caller was
still speaking) and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


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
    heard_texts: list[str] = []  # the caller's final transcript lines of each turn
    references: list[str] = []
    talk_over = 0
    try:
        await caller.connect()
        at_started, _ = await caller.wait_for("call_started")
        first = await heard_after(caller.browser, at_started)
        greeting_ms = (first - at_started) * 1000 if first else None
        await quiet_for(caller.browser, 1.0)
        for turn in range(turns):
            utterance, pcm = questions[turn % len(questions)]
            seen = len(caller.events)
            spoken_start = time.monotonic()
            caller.browser.microphone.say(pcm)
            while caller.browser.microphone.speaking:
                await asyncio.sleep(0.005)
            spoken_end = caller.browser.microphone.finished_at
            # The agent spoke over the caller: audio heard between the caller's first word and
            # the end of their speech (the previous answer was over before they began).
            if any(spoken_start + 0.1 < t < spoken_end for t in caller.browser.heard_frames):
                talk_over += 1
            answered = await heard_after(caller.browser, spoken_end)
            if answered is not None:
                latencies.append((answered - spoken_end) * 1000)
            await quiet_for(caller.browser, 1.2)
            references.append(utterance.reference)
            heard_texts.append(
                " ".join(
                    m["text"]
                    for _, m in caller.events[seen:]
                    if m["type"] == "transcript" and m["role"] == "user" and m.get("final")
                )
            )
        await caller.hangup()
    finally:
        await caller.close()
    return {
        "session_id": started["session_id"],
        "greeting_ms": greeting_ms,
        "latencies_ms": latencies,
        "references": references,
        "heard": heard_texts,
        "talk_over": talk_over,
    }


def media_stats_of(session_ids: list[str]) -> list[dict]:
    """The calls' media stats, once their workers have stored them (20 s at most)."""
    from sessions.models import CallSession

    deadline = time.monotonic() + 20
    while True:
        stats = list(
            CallSession.objects.filter(public_id__in=session_ids).values_list(
                "media_stats", flat=True
            )
        )
        if all(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def server_timings(session_ids: list[str]) -> list[dict]:
    return [t for s in media_stats_of(session_ids) for t in s.get("turn_timings", [])]


async def run(args, base_url: str, key: str, agent_id: str, utterances) -> dict:
    from bench.speech_sets import word_error_rate
    from voice.audio import TRACK_RATE, resample
    from voice.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    questions = [(u, resample(u.pcm16k, 16000, TRACK_RATE)) for u in utterances]
    # Each call goes on where the one before left off, so a long set is said once, not twice.
    calls = []
    for index in range(args.calls):
        shift = (index * args.turns) % len(questions)
        turns = questions[shift:] + questions[:shift]
        calls.append(await one_call(base_url, key, agent_id, args.turns, turns))
    latencies = [ms for c in calls for ms in c["latencies_ms"]]
    timings = await asyncio.to_thread(server_timings, [c["session_id"] for c in calls])
    breakdown = {
        name: percentiles([t[name] for t in timings if name in t])
        for name in (
            "end_of_turn_wait_ms",
            "prompt_wait_ms",
            "stt_ms",
            "llm_first_token_ms",
            "first_clause_ms",
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
    # The LLM's prompt and the part of it not already in llama.cpp's cache: what its first
    # token waited for (a cache lost to another generation shows as a large remainder).
    breakdown["llm_prompt_tokens"] = percentiles(
        [t["prompt_tokens"] for t in timings if "prompt_tokens" in t]
    )
    breakdown["llm_tokens_evaluated"] = percentiles(
        [t["prompt_tokens"] - t["reused_tokens"] for t in timings if "prompt_tokens" in t]
    )
    return {
        "utterance_ms": percentiles([u.seconds * 1000 for u in utterances]),
        "wer": word_error_rate(
            [r for c in calls for r in c["references"]], [h for c in calls for h in c["heard"]]
        ),
        "talk_over": sum(c["talk_over"] for c in calls),
        "misheard": sorted(
            {
                f"{ref} -> {heard}"
                for c in calls
                for ref, heard in zip(c["references"], c["heard"], strict=True)
                if word_error_rate([ref], [heard])
            }
        ),
        "turns_answered": len(latencies),
        "turns_asked": args.calls * args.turns,
        "end_of_speech_to_first_agent_audio_ms": percentiles(latencies),
        "greeting_ms": percentiles(
            [c["greeting_ms"] for c in calls if c["greeting_ms"] is not None]
        ),
        "server_breakdown_ms": breakdown,
        # Each turn as the server timed it, in order: where one slow turn's time went.
        "server_turns": [
            "/".join(
                str(t.get(name, "-"))
                for name in (
                    "response_latency_ms",
                    "end_of_turn_wait_ms",
                    "stt_ms",
                    "llm_first_token_ms",
                    "first_clause_ms",
                    "tts_first_chunk_ms",
                    "prompt_tokens",
                    "reused_tokens",
                    "pool_wait_ms",
                    "lock_wait_ms",
                    "eval_ms",
                )
            )
            + (" prepared" if t.get("prepared") else "")
            + (" repeated" if t.get("rewritten") else "")
            for t in timings
        ],
        "server_turns_legend": "latency/end-of-turn wait/STT/LLM first token/first clause's text/its TTS ms,"
        " prompt/reused tokens, LLM job's wait for a pool thread/for the model, prompt evaluation"
        " and first token ms; 'repeated': the first try repeated the previous reply",
    }


def bakery_agent_and_key(product: LocalProduct) -> tuple[str, str]:
    """The benchmarks' agent (no knowledge) and a secret key without a rate limit."""
    agent_id = product.manage_json(
        "create_agent",
        "--name",
        "Bakery",
        "--prompt",
        "You are the voice assistant of a bakery open 8 am to 6 pm every day.",
        "--greeting",
        "Hello, this is the bakery. How can I help?",
    )["agent_id"]
    key = product.manage_json("create_api_key", "--kind", "secret", "--rate-limit", "100000")
    return agent_id, key["key"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--llm", default="", help="LLM_MODEL for the product (default: its own)")
    parser.add_argument("--turn-detection", default="smart_turn", choices=["silence", "smart_turn"])
    parser.add_argument("--turn-silence-ms", type=int, default=600)
    parser.add_argument(
        "--speech", default="piper,human", help="speech sets, comma-separated: piper, human"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-latency-"))
    settings = {"START_CALL_IP_RATE": "100000/min", "LOG_LEVEL": "WARNING"}
    if args.llm:
        settings["LLM_MODEL"] = args.llm
    with LocalRedis(tmp) as redis, LocalProduct(tmp, redis_url=redis.url, env=settings) as product:
        print(f"logs in {product.log_dir}", file=sys.stderr)
        agent_id, key = bakery_agent_and_key(product)
        os.environ.update({k: product.env[k] for k in ("DATABASE_URL", "VAR_DIR")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
        django.setup()
        from agents.models import Agent

        Agent.objects.filter(public_id=agent_id).update(
            turn_detection=args.turn_detection, turn_silence_ms=args.turn_silence_ms
        )
        from bench.speech_sets import human_utterances, piper_utterances

        result = {"cpu": cpu_model()}
        for speech in args.speech.split(","):
            utterances = piper_utterances(QUESTIONS) if speech == "piper" else human_utterances()
            result[speech] = asyncio.run(run(args, product.base_url, key, agent_id, utterances))
        result["setup"] = {
            "llm": product.env.get("LLM_MODEL") or "(settings default)",
            "turn_detection": args.turn_detection,
            "turn_silence_ms": args.turn_silence_ms,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
