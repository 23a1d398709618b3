"""The seam between the media worker and the speech pipeline.

The worker owns transport (peer, tracks, timers) and knows no engine; a pipeline owns the
conversation. The worker feeds each inbound 20 ms frame to ``push_audio`` as 16 kHz mono int16 and
gives the pipeline an ``AudioOutput`` to speak through and ``CallEvents`` to report through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from voice.protocol import CallSpec

if TYPE_CHECKING:
    from voice.pipeline.knowledge import KnowledgeSource


class AudioOutput(Protocol):
    """The agent's voice (voice.audio.AgentAudioTrack)."""

    def play(self, pcm: np.ndarray, sample_rate: int) -> None: ...

    def clear(self) -> int: ...

    @property
    def is_playing(self) -> bool: ...

    @property
    def played_ms(self) -> int: ...

    async def wait_idle(self) -> None: ...


class CallEvents(Protocol):
    """How a pipeline talks to the rest of the product."""

    def emit(self, event: dict) -> None:
        """Send a seed event to the browser (``agent_speaking``, ``transcript``, ...)."""

    def record_turn(self, turn: dict) -> None:
        """Keep a finished transcript turn: ``seq, role, text, start_ms, end_ms[, latency_ms]``."""

    def end_call(self, reason: str, message: str = "") -> None:
        """Ask the worker to end the call (e.g. ``agent_hangup`` after the closing line);
        ``message`` says what failed, for ``error``: the caller's error event and the call's
        record get it."""

    def call_ms(self) -> int:
        """Milliseconds since media started: the clock transcript offsets use."""

    async def knowledge(self, count_tokens: Callable[[str], int]) -> KnowledgeSource | None:
        """The agent's knowledge base, searched for each reply; None when it has none."""


class CallPipeline(Protocol):
    def __init__(self, spec: CallSpec, output: AudioOutput, events: CallEvents) -> None: ...

    async def start(self) -> None:
        """Media is flowing: e.g. speak the greeting."""

    def push_audio(self, pcm16k: np.ndarray) -> None:
        """One inbound frame. Called on the event loop for every frame: must not block."""

    def interrupt(self) -> None:
        """The caller's connection dropped: stop speaking and drop pending reply work."""

    def on_playback_start(self) -> None:
        """Agent audio started coming out of an idle track."""

    def on_playback_end(self) -> None:
        """All queued agent audio has been sent."""

    async def say_last(self, text: str) -> None:
        """The call is being cut (the server shuts down): stop the agent and say ``text`` in its
        voice; return once it has been played out."""

    async def close(self) -> None:
        """The call is over: stop and release per-call work."""

    def stats(self) -> dict:
        """Figures for the call's media stats."""


def part_engine(part: str, name: str) -> property:
    """A pipeline property for an engine held by one of its parts (``listener``, ``writer``):
    read and swapped through the pipeline, as tests do."""
    return property(
        lambda self: getattr(getattr(self, part), name),
        lambda self, engine: setattr(getattr(self, part), name, engine),
    )
