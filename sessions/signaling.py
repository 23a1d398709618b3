"""What the call socket accepts from a browser: the shape of each message, and how many.

The consumer (sessions/consumers.py) relays what passes to the call's media worker; everything
here is pure, so a hostile message is refused before it reaches anything that holds state.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from channels.exceptions import ChannelFull
from django.conf import settings

from voice import protocol

MAX_MESSAGE_BYTES = 64 * 1024
# A browser gathers a handful of ICE candidates per call (Chromium: 2-10); more than this is a
# flood, and each one would be relayed to the media worker.
MAX_CANDIDATES_PER_CALL = 50
MAX_CANDIDATE_CHARS = 1024
# Messages a socket may send: a burst, then a steady rate. A real call sends a few dozen in all.
MESSAGE_BURST = 60
MESSAGES_PER_SECOND = 20.0

CANDIDATE_SHAPE = (
    'ice-candidate needs a "candidate" object: {"candidate": "candidate:…" (at most '
    f'{MAX_CANDIDATE_CHARS} characters), "sdpMid": string or null, '
    '"sdpMLineIndex": 0-255 or null}.'
)


class InvalidMessage(ValueError):
    """A message the socket refuses; ``str()`` is what the browser's ``error`` event says."""


def message_parse(text_data: str | None) -> dict:
    """A browser message as a dict with a string ``type``, or InvalidMessage."""
    if text_data is None or len(text_data) > MAX_MESSAGE_BYTES:
        raise InvalidMessage("Messages must be JSON text of at most 64 KB.")
    try:
        message = json.loads(text_data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise InvalidMessage("The message is not valid JSON.") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise InvalidMessage('Messages are JSON objects with a "type".')
    return message


def token_field(message: dict, kind: str) -> str:
    """The ``token`` of an ``auth`` or ``resume`` message."""
    token = message.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidMessage(f'{kind} needs a "token" string.')
    return token


def answer_sdp(message: dict) -> str:
    """The SDP text of an ``answer`` message."""
    sdp = message.get("sdp")
    if not (
        isinstance(sdp, dict) and sdp.get("type") == "answer" and isinstance(sdp.get("sdp"), str)
    ):
        raise InvalidMessage('answer needs "sdp": {"type": "answer", "sdp": "..."}.')
    return sdp["sdp"]


def candidate_validate(candidate: Any) -> dict | None:
    """The fields of a browser's ``RTCIceCandidate`` JSON that the worker uses, or None when they
    are not of the shape a browser sends (``candidate`` "" is the end-of-candidates marker)."""
    if not isinstance(candidate, dict):
        return None
    text, mid, index = (
        candidate.get("candidate", ""),
        candidate.get("sdpMid"),
        candidate.get("sdpMLineIndex"),
    )
    if not isinstance(text, str) or len(text) > MAX_CANDIDATE_CHARS:
        return None
    if text and not text.startswith(("candidate:", "a=candidate:")):
        return None
    if mid is not None and not (isinstance(mid, str) and len(mid) <= 64):
        return None
    if index is not None and not (
        isinstance(index, int) and not isinstance(index, bool) and 0 <= index <= 255
    ):
        return None
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}


class CandidateRelay:
    """The browser's ICE candidates on their way to the media worker: held until the answer has
    gone (the worker cannot use them before it), and at most MAX_CANDIDATES_PER_CALL per call."""

    def __init__(self) -> None:
        self.held: list[dict] = []
        self.received = 0
        self.answered = False

    def add(self, candidate: dict) -> list[dict]:
        """What to relay now; TooManyCandidates once, for the first candidate over the limit."""
        self.received += 1
        if self.received > MAX_CANDIDATES_PER_CALL:
            if self.received == MAX_CANDIDATES_PER_CALL + 1:
                raise TooManyCandidates(
                    f"At most {MAX_CANDIDATES_PER_CALL} ICE candidates per call; the rest are "
                    "ignored."
                )
            return []
        if not self.answered:
            self.held.append(candidate)
            return []
        return [candidate]

    def release(self) -> list[dict]:
        """The answer has gone: what was held goes now."""
        self.answered = True
        held, self.held = self.held, []
        return held


class TooManyCandidates(ValueError):
    pass


class MessageBudget:
    """A token bucket per socket. A library would be one more dependency for a few lines."""

    def __init__(self, burst: int = MESSAGE_BURST, per_second: float = MESSAGES_PER_SECOND) -> None:
        self.burst = float(burst)
        self.per_second = per_second
        self.allowance = self.burst
        self.checked_at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.allowance = min(self.burst, self.allowance + (now - self.checked_at) * self.per_second)
        self.checked_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True


# What the browser's ``error`` event says when a call cannot go on: (code, message).
ErrorEvent = tuple[str, str]
AT_CAPACITY: ErrorEvent = (
    "at_capacity",
    "All media workers are busy. Please try again in a moment.",
)
MEDIA_UNAVAILABLE: ErrorEvent = (
    "media_unavailable",
    "No media worker is available to take the call.",
)
MEDIA_WORKER_LOST: ErrorEvent = (
    "media_worker_lost",
    "The media server handling this call stopped responding.",
)
CONNECT_TIMEOUT: ErrorEvent = ("connect_timeout", "The audio connection could not be established.")
RATE_LIMITED: ErrorEvent = ("rate_limited", "Too many messages on this socket.")


def worker_end_error(reason: str, message: str) -> ErrorEvent | None:
    """What the browser is told when the media worker ended the call itself: an error for a
    failure, nothing for a normal end (max duration, the agent's goodbye)."""
    if reason in (protocol.REASON_ERROR, protocol.REASON_MEDIA_FAILED, protocol.REASON_AT_CAPACITY):
        return reason, message or "The call failed on the media server."
    return None


@dataclass
class CallSocketClock:
    """When things last happened on one call socket (time.monotonic()), and the timeouts that
    end its call: no worker takes it, its worker goes quiet, the browser never answers the offer
    (its worker holds a peer meanwhile), or media never flows."""

    dispatch_timeout: float
    heartbeat_timeout: float
    authenticated_at: float = 0.0
    dispatched_at: float = 0.0
    last_heartbeat: float = 0.0
    offer_sent_at: float = 0.0

    def overdue(
        self, now: float, *, has_worker: bool, awaiting_answer: bool, started: bool
    ) -> tuple[str, ErrorEvent] | None:
        """(end reason, error) when a timeout has run out, else None."""
        if not has_worker:
            if now - self.dispatched_at > self.dispatch_timeout:
                return protocol.REASON_ERROR, MEDIA_UNAVAILABLE
            return None
        if now - self.last_heartbeat > self.heartbeat_timeout:
            return protocol.REASON_ERROR, MEDIA_WORKER_LOST
        answer_timeout = settings.CALL_ANSWER_TIMEOUT_SECONDS
        if awaiting_answer and now - self.offer_sent_at > answer_timeout:
            return protocol.REASON_MEDIA_FAILED, (
                "answer_timeout",
                f"No answer to the offer within {answer_timeout:g} s.",
            )
        if not started and now - self.authenticated_at > settings.CALL_CONNECT_TIMEOUT_SECONDS:
            return protocol.REASON_MEDIA_FAILED, CONNECT_TIMEOUT
        return None


async def channel_send_patiently(layer, channel: str, message: dict, *, patience: float) -> bool:
    """Send on the channel layer, waiting out a full channel (its reader is behind) for up to
    ``patience`` seconds; False when it stayed full (ChannelFull must not crash a socket)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await layer.send(channel, message)
            return True
        except ChannelFull:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
