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
            fallback = f'say "{DONT_KNOW}"' + (
                f' and then "{handoff_line}"' if handoff_line else ""
            )
            parts.append(
                "Answer questions about the business only from the facts given with the "
                f"caller's question. If those facts do not contain the answer, {fallback}. "
                "Never make up prices, times, names or rules."
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
        """System message, the newest turns that fit ``budget_tokens`` with it, and the facts
        in the last caller message. Older turns go first; the latest is always kept."""
        if not history:
            return [{"role": "system", "content": self.system}]
        *earlier, latest = history
        latest = dict(latest)
        if latest["role"] == "user" and (facts or self.grounded):
            listed = "\n".join(f"- {fact.text}" for fact in facts) or "- (none)"
            latest["content"] = f"Facts:\n{listed}\n\nCaller: {latest['content']}"
        remaining = (
            budget_tokens
            - count(self.system)
            - count(latest["content"])
            - 2 * MESSAGE_OVERHEAD_TOKENS
        )
        kept: list[dict] = []
        for turn in reversed(earlier):
            cost = count(turn["content"]) + MESSAGE_OVERHEAD_TOKENS
            if cost > remaining:
                break
            kept.append(turn)
            remaining -= cost
        return [{"role": "system", "content": self.system}, *reversed(kept), latest]
