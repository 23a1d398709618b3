"""After a call: a two-sentence summary written by the local model, and the call's outcome, read
from its turns by rules (sessions/summaries.py stores both and sends ``call.ended``).

Why rules for the outcome and not the model: whether the caller spoke, whether the agent gave its
hand-off line and whether it said it did not know are plain facts of the transcript, because the
agent says those lines word for word (voice/pipeline/prompt.py). A 0.5B model asked to classify
the same call guesses: it calls a polite "I don't know" answered and misses a hand-off buried in
a long call. Rules are certain, free and the same on every run; the model is kept for what only
it can do, saying in words what the call was about.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voice.engines.text import ends_sentence
from voice.pipeline.guard import says_line
from voice.pipeline.prompt import DONT_KNOW, MESSAGE_OVERHEAD_TOKENS

# CallSession.Outcome's values (sessions/models.py; a test holds the two together).
ANSWERED = "answered"
NOT_ANSWERED = "not_answered"
HANDED_OFF = "handed_off"
ABANDONED = "abandoned"

# Said without the model: there is nothing to summarize, and a small model would invent a call.
SILENT_CALL_SUMMARY = "The caller did not say anything."

SUMMARY_SENTENCES = 2
SUMMARY_MAX_TOKENS = 90  # two short sentences, with room for a model that starts with a label
SUMMARY_TEMPERATURE = 0.1  # the same call gets nearly the same notes
SUMMARY_MAX_CHARS = 600
# Each turn as the model reads it, at most this long: a long monologue must not crowd out the rest.
TURN_MAX_CHARS = 600

SYSTEM_PROMPT = (
    "You write short notes about phone calls for the staff of a business. Write two short "
    "sentences in your own words, without quotes: what the caller wanted, then what the agent "
    "told the caller."
)
# Asked to start with "The caller", small models summarize rather than copy the call's first
# line (measured on Qwen2.5-0.5B and SmolLM2-135M; the call between tags, for the same reason).
INSTRUCTION = 'Write the notes: two sentences, starting with "The caller".'


@dataclass(frozen=True)
class Turn:
    role: str  # "user" (the caller) or "agent"
    text: str


def call_outcome(*, turns: Sequence[Turn], handoff_line: str = "") -> str:
    """How the call went, from what was said:

    - ``abandoned``: the caller said nothing, or nothing the agent answered (left before it did);
    - ``handed_off``: an agent turn holds the agent's hand-off line;
    - ``not_answered``: an agent turn says the agent does not know (and none hands off);
    - ``answered``: otherwise.
    """
    first_caller = next((i for i, turn in enumerate(turns) if turn.role == "user"), None)
    if first_caller is None:
        return ABANDONED
    replies = [turn.text for turn in turns[first_caller + 1 :] if turn.role == "agent"]
    if not replies:
        return ABANDONED
    if handoff_line.strip() and any(says_line(reply, handoff_line) for reply in replies):
        return HANDED_OFF
    if any(says_line(reply, DONT_KNOW) for reply in replies):
        return NOT_ANSWERED
    return ANSWERED


class SummaryInterrupted(Exception):
    """``cancel`` was set while the model wrote: nothing was written."""


def call_summarize(
    *,
    turns: Sequence[Turn],
    handoff_line: str = "",
    llm_model: str = "",
    cancel: threading.Event | None = None,
) -> tuple[str, str]:
    """``(summary, outcome)`` of a call. The summary is the model's (``llm_model``: the agent's
    model, "" = the server's), at most two sentences; a call without caller words gets a fixed
    line and no model run. Raises what loading or running the model raises
    (``ModelUnavailable`` when it is not on this machine), and ``SummaryInterrupted`` when
    ``cancel`` was set before the model finished (it stops at its next token)."""
    cancel = cancel or threading.Event()
    outcome = call_outcome(turns=turns, handoff_line=handoff_line)
    if not any(turn.role == "user" and turn.text.strip() for turn in turns):
        return SILENT_CALL_SUMMARY, outcome
    from voice.engines import registry

    llm = registry.llm_get(llm_model)
    messages = summary_messages(
        turns,
        budget_tokens=llm.context_tokens - SUMMARY_MAX_TOKENS,
        count=llm.count_tokens,
    )
    text = "".join(
        llm.stream_reply(
            messages,
            temperature=SUMMARY_TEMPERATURE,
            max_tokens=SUMMARY_MAX_TOKENS,
            cancel=cancel,
            repeat_penalty=1.1,
        )
    )
    if cancel.is_set():
        raise SummaryInterrupted
    return summary_clean(text), outcome


def summary_messages(
    turns: Sequence[Turn], *, budget_tokens: int, count: Callable[[str], int]
) -> list[dict]:
    """The model's input: the call as "Caller:"/"Agent:" lines. A call too long for the window
    keeps its first caller turn (what they called about) and as many of the last turns as fit."""
    lines = [
        f"{'Caller' if turn.role == 'user' else 'Agent'}: {' '.join(turn.text.split())[:TURN_MAX_CHARS]}"
        for turn in turns
        if turn.text.strip()
    ]
    remaining = (
        budget_tokens
        - count(SYSTEM_PROMPT)
        - count(INSTRUCTION)
        - 3 * MESSAGE_OVERHEAD_TOKENS
        - 8  # the tags around the call
    )
    first_caller = next((line for line in lines if line.startswith("Caller:")), "")
    reserved = count(first_caller) + 2 if first_caller else 0  # it, and the "…" after it
    kept: list[str] = []
    for line in reversed(lines):
        cost = count(line) + 1
        if line == first_caller:
            reserved = 0
        if cost > remaining - reserved:
            break
        kept.append(line)
        remaining -= cost
    kept.reverse()
    if first_caller and first_caller not in kept:
        kept = [first_caller, "…", *kept]
    call = "\n".join(kept)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"<call>\n{call}\n</call>\n{INSTRUCTION}"},
    ]


# A label a model may start with, or the heading of the call it was given, echoed.
_LABEL = re.compile(r"^\s*(?:notes?|summary|the call)\s*:\s*", re.IGNORECASE)


def summary_clean(text: str) -> str:
    """One paragraph of at most two sentences, without a leading "Summary:" label or markup."""
    text = _LABEL.sub("", " ".join(text.replace("*", "").split())).strip().strip('"').strip()
    sentences = 0
    for index, char in enumerate(text):
        if char in ".!?" and ends_sentence(text, index):
            sentences += 1
            if sentences == SUMMARY_SENTENCES:
                text = text[: index + 1]
                break
    if text.count('"') % 2:
        text += '"'  # a quotation the cut ended inside
    if len(text) > SUMMARY_MAX_CHARS:
        text = text[:SUMMARY_MAX_CHARS].rsplit(" ", 1)[0] + "…"
    return text
