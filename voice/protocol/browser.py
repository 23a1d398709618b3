"""The events the browser gets on the call socket (the seed's WebSocket protocol), typed once and
built by these constructors, whoever sends them: the consumer (offer, call_started, call_ended,
error) or a pipeline through its media worker (agent_speaking, transcript, ...).

The seed's browser code appends a line for every ``transcript`` message, so each utterance is
sent as ``transcript`` exactly once, final. Text in progress (the caller's words as they are
recognized, the agent's reply as it is voiced) goes in ``transcript_partial``, which that code
ignores and our widget shows live: each carries the whole utterance so far and replaces the
previous one with the same ``utterance_id``; an empty text takes the live line away (an agent
reply cut off before any of it was heard).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Role = Literal["user", "agent"]


class OfferEvent(TypedDict):
    type: Literal["offer"]
    sdp: dict  # {"type": "offer", "sdp": str}


class IceCandidateEvent(TypedDict):
    type: Literal["ice-candidate"]
    candidate: dict


class CallStartedEvent(TypedDict):
    type: Literal["call_started"]
    session_id: str
    resume_token: str
    resumed: NotRequired[bool]


class AgentSpeakingEvent(TypedDict):
    type: Literal["agent_speaking"]


class AgentListeningEvent(TypedDict):
    type: Literal["agent_listening"]


class CallEndedEvent(TypedDict):
    type: Literal["call_ended"]
    duration: float
    reason: str


class ErrorEvent(TypedDict):
    type: Literal["error"]
    code: str
    message: str


def offer(sdp: dict) -> OfferEvent:
    return {"type": "offer", "sdp": sdp}


def ice_candidate(candidate: dict) -> IceCandidateEvent:
    return {"type": "ice-candidate", "candidate": candidate}


def call_started(*, session_id: str, resume_token: str, resumed: bool) -> CallStartedEvent:
    event: CallStartedEvent = {
        "type": "call_started",
        "session_id": session_id,
        "resume_token": resume_token,
    }
    if resumed:
        event["resumed"] = True
    return event


def agent_speaking() -> AgentSpeakingEvent:
    return {"type": "agent_speaking"}


def agent_listening() -> AgentListeningEvent:
    return {"type": "agent_listening"}


def call_ended(*, duration: float, reason: str) -> CallEndedEvent:
    return {"type": "call_ended", "duration": duration, "reason": reason}


def error(code: str, message: str) -> ErrorEvent:
    return {"type": "error", "code": code, "message": message}


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
