"""Text chat with an agent: the same prompt, knowledge, model and guard as a call's reply, without
a microphone (``manage.py agent_ask``, the dashboard's chat box, bench/answers.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from agents.selectors import agent_get
from sessions.selectors import agent_spec_build
from thinnest_site.ids import random_token
from voice.pipeline.knowledge import knowledge_load
from voice.pipeline.reply import reply_writer_build

# Turns of an earlier conversation a chat request may carry.
MAX_HISTORY_TURNS = 20


class ChatError(ValueError):
    """What the caller of the chat must fix; ``str()`` says what."""


@dataclass(frozen=True)
class ChatReply:
    reply: str
    sources: list[dict]
    latency_ms: int

    def as_json(self) -> dict:
        return {"reply": self.reply, "sources": self.sources, "latency_ms": self.latency_ms}


def agent_chat_reply(
    *,
    agent_public_id: str,
    question: str,
    history: list[dict] | None = None,
    context: dict | None = None,
) -> ChatReply:
    """The agent's reply to ``question`` after ``history`` (``[{"role": "user"|"assistant",
    "content": str}, ...]``), ``context`` filling its prompt's placeholders as a call's would.
    Blocking: the model runs in this thread (and takes turns with calls on it)."""
    if not question.strip():
        raise ChatError("Ask a question.")
    turns = _history_validate(history or [])
    agent = agent_get(public_id=agent_public_id)
    if agent is None:
        raise ChatError(f"There is no agent {agent_public_id}.")
    spec = agent_spec_build(
        agent=agent, session_id=f"chat_{random_token(12)}", context=dict(context or {})
    )
    writer = reply_writer_build(spec, tts=None)
    writer.knowledge_attach(
        knowledge_load(agent_public_id=agent.public_id, count_tokens=writer.llm.count_tokens)
    )
    # From the question on, as a call's reply is timed from the end of the caller's turn (the
    # model and the index load once per process, before).
    started = time.monotonic()
    sources: list[dict] = []
    reply = "".join(
        writer.write(
            [*turns, {"role": "user", "content": question.strip()}], threading.Event(), sources
        )
    ).strip()
    return ChatReply(
        reply=reply, sources=sources, latency_ms=round((time.monotonic() - started) * 1000)
    )


def _history_validate(history: list) -> list[dict]:
    if not isinstance(history, list) or len(history) > MAX_HISTORY_TURNS:
        raise ChatError(f"history must be a list of at most {MAX_HISTORY_TURNS} turns.")
    turns = []
    for turn in history:
        if not (
            isinstance(turn, dict)
            and turn.get("role") in ("user", "assistant")
            and isinstance(turn.get("content"), str)
        ):
            raise ChatError(
                'Each history turn is {"role": "user" or "assistant", "content": text}.'
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns
