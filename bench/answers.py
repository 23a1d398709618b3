"""How useful the agent's answers are: three small businesses, their facts in a knowledge base,
questions with the facts an answer must hold, and questions their facts cannot answer.

    .venv/bin/python bench/answers.py [--llm qwen2.5-0.5b|smollm2|PATH.gguf]
        [--temperature 0.2] [--repeat-penalty 1.0] [--passages 2] [--voice 3] [--show]

Text mode: each business's questions are asked in order as one conversation, through
``manage.py agent_ask`` (the same prompt, retrieval, model and reply guard as a call), the
conversation so far passed along as a call's history would be. Voice mode (``--voice N``): the
first N questions of each business are spoken (Piper) by a WebRTC caller into a real call on the
product started on loopback (daphne with its embedded media worker), and the agent's transcript
lines are graded the same way.

Prints JSON: accuracy on answerable questions, "don't know" accuracy on the unanswerable ones,
replies that repeated the one before, replies that borrowed a fact from the prompt's examples,
latency (text mode: question -> whole reply; voice mode: end of the caller's speech -> the first
agent audio the caller hears), and the CPU it ran on.
Data: bench/answers/businesses.json (an answer is right when every group of accepted spellings
has a match; an unanswerable question is right when the reply says it does not know or gives
the hand-off line, and names no number the facts lack).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = json.loads((ROOT / "bench" / "answers" / "businesses.json").read_text())
# Turns of history passed with each question, as a call's window would hold them.
HISTORY_TURNS = 6


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def grade(question: dict, reply: str, business: dict) -> bool:
    from voice.pipeline.prompt import DONT_KNOW

    text = reply.lower()

    def has(phrase: str) -> bool:
        # Whole words, a plural too ("tuesday" in "Tuesdays").
        return re.search(r"(?<![a-z0-9])" + re.escape(phrase.lower()) + r"s?(?![a-z0-9])", text)

    says_dont_know = any(
        has(p)
        for p in (
            DONT_KNOW.rstrip(".").lower(),
            "don't know",
            "do not know",
            "not sure",
            "no information",
            "i don't have",
        )
    ) or " ".join(words(business["handoff"])) in " ".join(words(reply))
    if borrowed_from_examples(reply, question, business):
        return False
    if question.get("unanswerable"):
        # A made-up figure is an invention, whatever else the reply says.
        invented = set(re.findall(r"\d+", reply)) - set(re.findall(r"\d+", business["document"]))
        return says_dont_know and not invented
    if any(has(f) for f in question.get("forbid", [])):
        return False
    return all(any(has(alt) for alt in group) for group in question["expect"])


def borrowed_from_examples(reply: str, question: dict, business: dict) -> bool:
    """Whether the reply took a word of the prompt's worked examples' facts (about a ferry)
    that neither the business's facts nor the question hold: a fact borrowed, not found."""
    from voice.pipeline.prompt import DONT_KNOW, EXAMPLE_TURNS

    example_facts = [
        line
        for turn in EXAMPLE_TURNS
        for line in turn["content"].splitlines()
        if turn["role"] == "user" and line.startswith("- ")
    ]
    example_words = {w for line in example_facts for w in words(line) if len(w) > 4}
    own = set(words(business["document"])) | set(words(question["q"])) | set(words(DONT_KNOW))
    return bool((example_words - own) & set(words(reply)))


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = statistics.quantiles(ordered, n=20)[18] if len(ordered) > 1 else ordered[0]
    return {"p50": round(statistics.median(ordered)), "p95": round(p95), "n": len(ordered)}


def summarize(rows: list[dict]) -> dict:
    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    return {
        "correct": f"{sum(r['correct'] for r in answerable)}/{len(answerable)}",
        "accuracy": round(sum(r["correct"] for r in answerable) / max(len(answerable), 1), 3),
        "dont_know_correct": f"{sum(r['correct'] for r in unanswerable)}/{len(unanswerable)}",
        "repeated_replies": sum(r["repeated"] for r in rows),
        "borrowed_from_examples": sum(r["borrowed"] for r in rows),
        "latency_ms": percentiles([r["latency_ms"] for r in rows if r["latency_ms"] is not None]),
    }


def setup_agents(manage) -> list[tuple[dict, str]]:
    """One agent per business, its document in its knowledge base (indexed by the command)."""
    agents = []
    for business in DATA["businesses"]:
        agent_id = manage(
            "create_agent", "--name", business["name"], "--prompt", business["prompt"], "--json"
        )["agent_id"]
        suffix = ".html" if business.get("kind") == "html" else ".md"
        path = Path(tempfile.mkdtemp()) / (re.sub(r"\W+", "-", business["name"]) + suffix)
        path.write_text(business["document"])
        manage("knowledge_add", agent_id, str(path), "--json")
        from agents.models import Agent

        Agent.objects.filter(public_id=agent_id).update(handoff_line=business["handoff"])
        agents.append((business, agent_id))
    return agents


def run_text(args, agents) -> list[dict]:
    from django.core.management import call_command

    rows = []
    for business, agent_id in agents:
        history: list[dict] = []
        previous = ""
        for question in business["questions"]:
            out = io.StringIO()
            call_command(
                "agent_ask",
                agent_id,
                question["q"],
                "--history",
                json.dumps(history[-HISTORY_TURNS:]),
                "--json",
                stdout=out,
            )
            answer = json.loads(out.getvalue())
            reply = answer["reply"]
            rows.append(
                graded(business, question, reply, previous, answer["latency_ms"], args.show, "")
            )
            history += [
                {"role": "user", "content": question["q"]},
                {"role": "assistant", "content": reply},
            ]
            previous = reply
    return rows


def graded(business, question, reply, previous, latency_ms, show: bool, mode: str) -> dict:
    row = {
        "business": business["name"],
        "q": question["q"],
        "reply": reply,
        "unanswerable": bool(question.get("unanswerable")),
        "correct": bool(grade(question, reply, business)),
        "repeated": bool(previous) and words(reply) == words(previous),
        "borrowed": borrowed_from_examples(reply, question, business),
        "latency_ms": latency_ms,
    }
    if show:
        mark = "OK" if row["correct"] else "XX"
        print(f"{mode}{mark} {question['q']} -> {reply}", file=sys.stderr)
    return row


async def agent_quiet(caller, seconds: float = 1.0) -> None:
    """Until no agent audio has arrived for ``seconds``: its greeting or answer is over."""
    while caller.browser.heard_frames and (
        time.monotonic() - caller.browser.heard_frames[-1] < seconds
    ):
        await asyncio.sleep(0.05)


async def run_voice(args, base_url: str, key: str, agents) -> list[dict]:
    from thinnest_site.launch import start_call
    from voice.audio import TRACK_RATE, resample
    from voice.engines import registry
    from voice.ice import restrict_host_addresses
    from voice.testing import WebSocketCaller

    restrict_host_addresses(["127.0.0.1"])
    piper = registry.tts_get("piper")
    rows = []
    for business, agent_id in agents:
        started = await asyncio.to_thread(start_call, base_url, key, agent_id)
        caller = WebSocketCaller(started["websocket_url"], started["token"])
        previous = ""
        try:
            await caller.connect()
            await caller.wait_for("call_started")
            await asyncio.sleep(0.5)  # the greeting starts; the first question waits it out
            await agent_quiet(caller)
            for question in business["questions"][: args.voice]:
                pcm, rate = piper.synthesize(question["q"])
                seen = len(caller.events)
                caller.browser.microphone.say(resample(pcm, rate, TRACK_RATE))
                while caller.browser.microphone.speaking:
                    await asyncio.sleep(0.01)
                spoken_end = caller.browser.microphone.finished_at
                reply, at = await agent_line_after(caller, seen)
                # The first agent audio the caller heard after their speech: what they wait for.
                heard = [t for t in caller.browser.heard_frames if t > spoken_end]
                at = heard[0] if at and heard else None
                latency = round((at - spoken_end) * 1000) if at else None
                rows.append(
                    graded(business, question, reply, previous, latency, args.show, "voice ")
                )
                previous = reply
                await agent_quiet(caller)  # the answer is over before the next question
            await caller.hangup()
        finally:
            await caller.close()
    return rows


async def agent_line_after(caller, seen: int, timeout: float = 60.0) -> tuple[str, float | None]:
    """The agent's next final transcript line after the caller's (ignoring the greeting)."""
    deadline = time.monotonic() + timeout
    user_done = False
    while time.monotonic() < deadline:
        for at, message in caller.events[seen:]:
            if message["type"] != "transcript":
                continue
            if message["role"] == "user":
                user_done = True
            elif user_done:
                return message["text"], at
        await asyncio.sleep(0.05)
    return "", None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm", default="", help="LLM_MODEL: a packaged name or a GGUF path")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--repeat-penalty", type=float, default=None)
    parser.add_argument("--passages", type=int, default=None, help="KNOWLEDGE_PASSAGES")
    parser.add_argument("--voice", type=int, default=0, help="questions per business by voice")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--show", action="store_true", help="each answer on stderr")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-answers-"))
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp),
        # The joined default model is reused rather than joined again for this directory.
        "MODEL_CACHE_DIR": os.environ.get("MODEL_CACHE_DIR", str(ROOT / "var" / "models")),
        "LOG_LEVEL": "WARNING",
        "START_CALL_IP_RATE": "100000/min",
    }
    if args.llm:
        env["LLM_MODEL"] = args.llm
    if args.repeat_penalty is not None:
        env["LLM_REPEAT_PENALTY"] = str(args.repeat_penalty)
    if args.passages is not None:
        env["KNOWLEDGE_PASSAGES"] = str(args.passages)
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    def manage(*command: str) -> dict:
        out = io.StringIO()
        call_command(*command, stdout=out)
        return json.loads(out.getvalue())

    call_command("migrate", "--noinput", verbosity=0)
    agents = setup_agents(manage)
    if args.temperature is not None:
        from agents.models import Agent

        Agent.objects.update(llm_temperature=args.temperature)
    temperature = args.temperature if args.temperature is not None else "agent default"
    result = {
        "cpu": cpu_model(),
        "llm": settings.LLM_MODEL_PATH or settings.LLM_MODEL,
        "temperature": temperature,
        "repeat_penalty": settings.LLM_REPEAT_PENALTY,
        "knowledge_passages": settings.KNOWLEDGE_PASSAGES,
    }
    if not args.no_text:
        rows = run_text(args, agents)
        result["text"] = summarize(rows)
        result["text"]["wrong"] = [f"{r['q']} -> {r['reply']}" for r in rows if not r["correct"]]
    if args.voice:
        from thinnest_site.launch import LocalProduct

        key = manage("create_api_key", "--kind", "secret", "--rate-limit", "100000", "--json")
        product_env = {**env, "DATABASE_URL": env["DATABASE_URL"]}
        with LocalProduct(tmp, env=product_env) as product:
            rows = asyncio.run(run_voice(args, product.base_url, key["key"], agents))
        result["voice"] = summarize(rows)
        result["voice"]["wrong"] = [f"{r['q']} -> {r['reply']}" for r in rows if not r["correct"]]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
