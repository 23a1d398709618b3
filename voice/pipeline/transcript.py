"""A call's transcript: the lines the browser shows as they form, and the turns the call keeps."""

from __future__ import annotations

from voice.pipeline.base import CallEvents
from voice.protocol.browser import Role, UtteranceIds, transcript_final, transcript_partial


class Transcript:
    """One live line per role (the caller's words as they are recognized, the agent's reply as
    it is voiced), each closed by one final; and the numbered turns kept for the call record."""

    def __init__(self, events: CallEvents) -> None:
        self.events = events
        self._ids = UtteranceIds()
        self._seq = 0

    def partial(self, role: Role, text: str) -> None:
        self.events.emit(transcript_partial(role, text, self._ids.current(role)))

    def final(self, role: Role, text: str) -> None:
        self.events.emit(transcript_final(role, text, self._ids.finish(role)))

    def retract(self, role: Role) -> None:
        """A live line whose utterance ended with nothing to keep (a reply cut off unheard)."""
        if self._ids.has_current(role):
            self.events.emit(transcript_partial(role, "", self._ids.finish(role)))

    def record(
        self,
        role: Role,
        text: str,
        start_ms: int,
        end_ms: int,
        latency: int | None = None,
        sources: list[dict] | None = None,
    ) -> None:
        self._seq += 1
        turn = {
            "seq": self._seq,
            "role": role,
            "text": text,
            "start_ms": max(0, start_ms),
            "end_ms": end_ms,
        }
        if latency is not None:
            turn["latency_ms"] = max(0, latency)
        if sources:
            turn["sources"] = sources
        self.events.record_turn(turn)
