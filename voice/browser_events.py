"""Transcript events the browser gets, built in one place for every pipeline.

The seed's browser code appends a line for every ``transcript`` message, so each utterance is
sent as ``transcript`` exactly once, final. Text in progress (the caller's words as they are
recognized, the agent's reply as it is voiced) goes in ``transcript_partial``, which that code
ignores and our widget shows live: each carries the whole utterance so far and replaces the
previous one with the same ``utterance_id``; an empty text takes the live line away (an agent
reply cut off before any of it was heard).
"""

from __future__ import annotations

from typing import Literal, TypedDict

Role = Literal["user", "agent"]


class TranscriptEvent(TypedDict):
    type: Literal["transcript"]
    role: Role
    text: str
    final: Literal[True]
    utterance_id: str


class TranscriptPartialEvent(TypedDict):
    type: Literal["transcript_partial"]
    role: Role
    text: str
    utterance_id: str


def transcript_final(role: Role, text: str, utterance_id: str) -> TranscriptEvent:
    return {
        "type": "transcript",
        "role": role,
        "text": text,
        "final": True,
        "utterance_id": utterance_id,
    }


def transcript_partial(role: Role, text: str, utterance_id: str) -> TranscriptPartialEvent:
    return {
        "type": "transcript_partial",
        "role": role,
        "text": text,
        "utterance_id": utterance_id,
    }


class UtteranceIds:
    """Ids for a call's utterances (``user-3``, ``agent-4``): one current utterance per role, kept
    from its first partial to its final."""

    def __init__(self) -> None:
        self._count = 0
        self._current: dict[str, str] = {}

    def current(self, role: Role) -> str:
        if role not in self._current:
            self._count += 1
            self._current[role] = f"{role}-{self._count}"
        return self._current[role]

    def has_current(self, role: Role) -> bool:
        return role in self._current

    def finish(self, role: Role) -> str:
        utterance_id = self.current(role)
        del self._current[role]
        return utterance_id
