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
    MEDIA_ENDED      {"reason": str, "message": str}        the worker ended the call itself
    WORKER_HEARTBEAT {}                                     every HEARTBEAT_SECONDS while it holds
                                                            the call

consumer -> worker
    SIGNAL_ANSWER    {"sdp": {"type": "answer", "sdp": str}}
    SIGNAL_CANDIDATE {"candidate": RTCIceCandidateInit dict}
    CALL_CLOSE       {"reason": str}                        the browser hung up, or went away
                                                            before media flowed
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


@dataclass(frozen=True)
class CallSpec:
    """What a worker needs to run a call; built from the session and its agent by the consumer."""

    session_id: str
    agent_id: str
    greeting: str = ""
    system_prompt: str = ""
    language: str = "en"
    stt_engine: str = "whisper"
    stt_model_path: str = ""
    tts_engine: str = "piper"
    tts_voice: str = ""
    tts_speed: float = 1.0
    llm_model: str = ""
    llm_temperature: float = 0.7
    llm_max_tokens: int = 160
    max_duration_seconds: float = 600
    silence_timeout_seconds: float = 30
    turn_detection: str = "silence"
    turn_silence_ms: int = 600
    recording_enabled: bool = False
    context: dict = field(default_factory=dict)

    def to_message(self) -> dict:
        return asdict(self)

    @classmethod
    def from_message(cls, data: dict) -> CallSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
