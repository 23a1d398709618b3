"""What the language model reads for one reply: the agent's prompt, the rules of a voice call, the
caller's details, the conversation, and the facts retrieved for the caller's latest words.

Small local models answer from what sits next to the question: the facts go in the caller's
latest message, not in the system prompt, and only for that turn (earlier turns keep their plain
words, so the history stays short). The same builder serves a call, the text chat and the
benchmark (bench/answers.py), so what is measured is what callers get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voice.engines.text import fill_placeholders

VOICE_RULES = (
    "You are speaking on a voice call: answer in one or two short sentences of plain spoken "
    "text, without lists, markdown or emojis."
)
# Said when the facts do not hold the answer; the agent's hand-off line follows when it has one.
DONT_KNOW = "I'm sorry, I don't know that."
# Tokens the chat template adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 8

# Worked turns shown before the conversation of an agent with knowledge. A 0.5B model follows an
# example better than a rule: with them it answered 27-29 of 42 bench questions, without 22
# (bench/answers.py). They teach the three moves it got wrong most: answer "no" from a negative
# fact, say it does not know when the facts are about something else, and read a figure off a
# list. Their facts are about a ferry, far from a shop's or a clinic's: with examples about a
# workshop's parking, the model told a bakery's caller to park "behind the workshop". The prefix
# never changes, so the model's prompt cache keeps it between turns.
EXAMPLE_TURNS: tuple[dict, ...] = (
    {
        "role": "user",
        "content": "Facts:\n- The ferry does not run on Sundays or public holidays.\n\n"
        "Caller: Can I take the ferry on Sunday?",
    },
    {"role": "assistant", "content": "No, sorry, the ferry doesn't run on Sundays."},
    {
        "role": "user",
        "content": "Facts:\n- Bicycles travel free on the ferry.\n\n"
        "Caller: Do you sell season tickets?",
    },
    {"role": "assistant", "content": DONT_KNOW},
    {
        "role": "user",
        "content": "Facts:\n- A single ticket costs 6 dollars and a return ticket 10 dollars."
        "\n\nCaller: How much is a return ticket?",
    },
    {"role": "assistant", "content": "A return ticket is 10 dollars."},
)


@dataclass(frozen=True)
class Fact:
    """A retrieved passage as the prompt shows it and the transcript cites it."""

    text: str
    document_id: str
    document_title: str
    chunk_id: int

    def source(self) -> dict:
        return {
            "document_id": self.document_id,
            "title": self.document_title,
            "chunk_id": self.chunk_id,
        }


@dataclass(frozen=True)
class ReplyPrompt:
    """An agent's fixed part of the prompt, built once per call."""

    system: str
    grounded: bool  # the agent has knowledge: answer from the facts, or say it does not know
    handoff_line: str

    @classmethod
    def build(
        cls, *, template: str, context: dict, handoff_line: str = "", grounded: bool = False
    ) -> ReplyPrompt:
        persona = fill_placeholders(template, context).strip() or (
            "You are a helpful voice assistant."
        )
        parts = [persona, VOICE_RULES]
        if grounded:
            # The hand-off line is not in the prompt: small models recite it in every reply.
            # The writer adds it after a reply that says it does not know.
            parts.append(
                "Answer questions about the business only from the facts given with the "
                "caller's question. If those facts do not contain the answer, say "
                f'"{DONT_KNOW}" Never make up prices, times, names or rules.'
            )
        caller = "; ".join(
            f"{key}: {value}" for key, value in context.items() if value not in (None, "")
        )
        if caller:
            # Values the caller's page passed: who they are, where they came from. Stated as
            # facts about the caller, so the model addresses them with it rather than offering
            # it as an answer ("Jane Doe is opening tomorrow").
            parts.append(
                "About the caller (to address them, never an answer to their questions): "
                + caller
                + "."
            )
        return cls(system="\n\n".join(parts), grounded=grounded, handoff_line=handoff_line)

    def messages(
        self,
        history: Sequence[dict],
        facts: Sequence[Fact],
        *,
        budget_tokens: int,
        count: Callable[[str], int],
    ) -> list[dict]:
        """System message, the worked examples (grounded agents), the newest turns that fit
        ``budget_tokens`` with them, and the facts in the last caller message. Older turns go
        first; the latest is always kept."""
        fixed = self.prefix()
        if not history:
            return fixed[:1]
        *earlier, latest = history
        latest = dict(latest)
        if latest["role"] == "user" and (facts or self.grounded):
            listed = "\n".join(f"- {fact.text}" for fact in facts) or "- (none)"
            latest["content"] = f"Facts:\n{listed}\n\nCaller: {latest['content']}"
        remaining = (
            budget_tokens
            - self.fixed_tokens(count)
            - count(latest["content"])
            - MESSAGE_OVERHEAD_TOKENS
        )
        kept: list[dict] = []
        for turn in reversed(earlier):
            cost = count(turn["content"]) + MESSAGE_OVERHEAD_TOKENS
            if cost > remaining:
                break
            kept.append(turn)
            remaining -= cost
        return [*fixed, *reversed(kept), latest]

    def prefix(self, greeting: str = "") -> list[dict]:
        """The messages every reply of a call starts with: the system message, the examples and
        the greeting (the first turn of the history), for the model to evaluate ahead."""
        examples = list(EXAMPLE_TURNS) if self.grounded else []
        said = [{"role": "assistant", "content": greeting}] if greeting.strip() else []
        return [{"role": "system", "content": self.system}, *examples, *said]

    def fixed_tokens(self, count: Callable[[str], int]) -> int:
        """Tokens of the part sent with every reply: the system message and the examples."""
        return sum(count(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in self.prefix())
