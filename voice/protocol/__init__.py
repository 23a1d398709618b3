"""Messages between the signaling consumer (web process) and a media worker, over the channel layer.

A call's first message goes to the shared channel ``settings.MEDIA_DISPATCH_CHANNEL``, which every
media worker reads; the worker that takes it answers from its own channel name, and every later
message of that call goes to that channel. All messages carry ``session_id``.

consumer -> dispatch channel
    CALL_OPEN      {"reply_to": consumer channel, "expires_at": epoch seconds, "call": CallSpec dict}
                   A worker drops a CALL_OPEN it receives after ``expires_at``.

worker -> consumer (``reply_to``)
    WORKER_ATTACHED  {"worker": worker channel}             the worker took the call
    WORKER_REJECTED  {"code": "at_capacity", "message"}     the worker is full; try again
    SIGNAL_OFFER     {"sdp": {"type": "offer", "sdp": str}}
    SIGNAL_CANDIDATE {"candidate": RTCIceCandidateInit dict} (aiortc puts all its candidates in the
                                                             SDP, so this is rare)
    MEDIA_STARTED    {}                                     ICE connected and first inbound audio
    MEDIA_EVENT      {"event": dict}                        forwarded to the browser as is
                                                            (agent_speaking, transcript, ...)
    MEDIA_ENDED      {"reason", "message", "recorded": bool, "duration": s}
                                                            the call is over: a worker that held
                                                            it has recorded it (recorded: true);
                                                            one that never held it has not
    WORKER_HEARTBEAT {}                                     every HEARTBEAT_SECONDS while it holds
                                                            the call

consumer -> worker
    SIGNAL_ANSWER    {"sdp": {"type": "answer", "sdp": str}}
    SIGNAL_CANDIDATE {"candidate": RTCIceCandidateInit dict}
    CALL_CLOSE       {"reason": str, "message": str}        the browser hung up, went away
                                                            before media flowed, or a timeout
                                                            ran out: the worker closes the call,
                                                            records it, answers MEDIA_ENDED
    CALL_DETACH      {}                                     the browser's socket dropped during
                                                            the call: keep it for a resume
    CALL_RESUME      {"reply_to": consumer channel}         a new socket resumes the call: answer
                                                            it there, with a fresh peer and offer

worker -> the consumer a call was taken from
    CALL_TAKEN_OVER  {}                                     another socket resumed this call

A call whose socket dropped stays alive on its worker for ``settings.CALL_RESUME_GRACE_SECONDS``
(its agent falls silent); a browser that comes back with the ``resume_token`` of its
``call_started`` event gets the same conversation on a new peer connection. Otherwise the worker
ends the call as ``connection_lost`` and records it, since no consumer is left to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, TypedDict

CALL_OPEN = "call.open"
CALL_CLOSE = "call.close"
CALL_DETACH = "call.detach"
CALL_RESUME = "call.resume"
CALL_TAKEN_OVER = "call.taken_over"
WORKER_ATTACHED = "worker.attached"
WORKER_REJECTED = "worker.rejected"
WORKER_HEARTBEAT = "worker.heartbeat"
SIGNAL_OFFER = "signal.offer"
SIGNAL_ANSWER = "signal.answer"
SIGNAL_CANDIDATE = "signal.candidate"
MEDIA_STARTED = "media.started"
MEDIA_EVENT = "media.event"
MEDIA_ENDED = "media.ended"

# A worker that has not been heard from for this long is taken for dead.
HEARTBEAT_SECONDS = 1.0
HEARTBEAT_TIMEOUT_SECONDS = 3.5

# Why a call ended (CallSession.end_reason).
REASON_USER_HANGUP = "user_hangup"
REASON_CONNECTION_LOST = "connection_lost"
REASON_AGENT_HANGUP = "agent_hangup"
REASON_MAX_DURATION = "max_duration"
REASON_SILENCE_TIMEOUT = "silence_timeout"
REASON_MEDIA_FAILED = "media_failed"
REASON_ERROR = "error"
REASON_AT_CAPACITY = "at_capacity"
REASON_SERVER_SHUTDOWN = "server_shutdown"


@dataclass(frozen=True)
class CallSpec:
    """What a worker needs to run a call; built from the session and its agent by the consumer."""

    session_id: str
    agent_id: str
    greeting: str = ""
    system_prompt: str = ""
    handoff_line: str = ""
    language: str = "en"
    stt_engine: str = "whisper"
    stt_model_path: str = ""
    tts_engine: str = "piper"
    tts_voice: str = ""
    tts_speed: float = 1.0
    llm_model: str = ""
    llm_temperature: float = 0.2
    llm_max_tokens: int = 160
    max_duration_seconds: float = 600
    silence_timeout_seconds: float = 30
    turn_detection: str = "smart_turn"
    turn_silence_ms: int = 600
    recording_enabled: bool = False
    context: dict = field(default_factory=dict)

    def to_message(self) -> dict:
        return asdict(self)

    @classmethod
    def from_message(cls, data: dict) -> CallSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- the messages, typed once and built by these constructors on both sides ---------------------
# Channels routes a message by its "type" to the handler of that name with dots as underscores
# (``media.started`` -> ``media_started``), so the kinds above are also the handlers' names.


class CallOpen(TypedDict):
    type: Literal["call.open"]
    session_id: str
    reply_to: str
    expires_at: float
    call: dict


class CallClose(TypedDict):
    type: Literal["call.close"]
    session_id: str
    reason: str
    message: str  # what went wrong, for the call's record, when the consumer ends it on a fault


class CallDetach(TypedDict):
    type: Literal["call.detach"]
    session_id: str


class CallResume(TypedDict):
    type: Literal["call.resume"]
    session_id: str
    reply_to: str


class CallTakenOver(TypedDict):
    type: Literal["call.taken_over"]
    session_id: str


class WorkerAttached(TypedDict):
    type: Literal["worker.attached"]
    session_id: str
    worker: str


class WorkerRejected(TypedDict):
    type: Literal["worker.rejected"]
    session_id: str
    code: str
    message: str


class WorkerHeartbeat(TypedDict):
    type: Literal["worker.heartbeat"]
    session_id: str


class SignalOffer(TypedDict):
    type: Literal["signal.offer"]
    session_id: str
    sdp: dict


class SignalAnswer(TypedDict):
    type: Literal["signal.answer"]
    session_id: str
    sdp: dict


class SignalCandidate(TypedDict):
    type: Literal["signal.candidate"]
    session_id: str
    candidate: dict


class MediaStarted(TypedDict):
    type: Literal["media.started"]
    session_id: str


class MediaEvent(TypedDict):
    type: Literal["media.event"]
    session_id: str
    event: dict


class MediaEnded(TypedDict):
    type: Literal["media.ended"]
    session_id: str
    reason: str
    message: str
    recorded: bool  # the worker has recorded the end (else the consumer does)
    duration: float  # as recorded, seconds


def call_open(session_id: str, *, reply_to: str, expires_at: float, spec: CallSpec) -> CallOpen:
    return {
        "type": CALL_OPEN,
        "session_id": session_id,
        "reply_to": reply_to,
        "expires_at": expires_at,
        "call": spec.to_message(),
    }


def call_close(session_id: str, *, reason: str, message: str = "") -> CallClose:
    return {"type": CALL_CLOSE, "session_id": session_id, "reason": reason, "message": message}


def call_detach(session_id: str) -> CallDetach:
    return {"type": CALL_DETACH, "session_id": session_id}


def call_resume(session_id: str, *, reply_to: str) -> CallResume:
    return {"type": CALL_RESUME, "session_id": session_id, "reply_to": reply_to}


def call_taken_over(session_id: str) -> CallTakenOver:
    return {"type": CALL_TAKEN_OVER, "session_id": session_id}


def worker_attached(session_id: str, *, worker: str) -> WorkerAttached:
    return {"type": WORKER_ATTACHED, "session_id": session_id, "worker": worker}


def worker_rejected(session_id: str, *, code: str, message: str) -> WorkerRejected:
    return {"type": WORKER_REJECTED, "session_id": session_id, "code": code, "message": message}


def worker_heartbeat(session_id: str) -> WorkerHeartbeat:
    return {"type": WORKER_HEARTBEAT, "session_id": session_id}


def signal_offer(session_id: str, *, sdp: str) -> SignalOffer:
    return {"type": SIGNAL_OFFER, "session_id": session_id, "sdp": {"type": "offer", "sdp": sdp}}


def signal_answer(session_id: str, *, sdp: str) -> SignalAnswer:
    return {"type": SIGNAL_ANSWER, "session_id": session_id, "sdp": {"type": "answer", "sdp": sdp}}


def signal_candidate(session_id: str, *, candidate: dict) -> SignalCandidate:
    return {"type": SIGNAL_CANDIDATE, "session_id": session_id, "candidate": candidate}


def media_started(session_id: str) -> MediaStarted:
    return {"type": MEDIA_STARTED, "session_id": session_id}


def media_event(session_id: str, *, event: dict) -> MediaEvent:
    return {"type": MEDIA_EVENT, "session_id": session_id, "event": event}


def media_ended(
    session_id: str,
    *,
    reason: str,
    message: str = "",
    recorded: bool = False,
    duration: float = 0.0,
) -> MediaEnded:
    return {
        "type": MEDIA_ENDED,
        "session_id": session_id,
        "reason": reason,
        "message": message,
        "recorded": recorded,
        "duration": duration,
    }
