"""A pipeline that only speaks the agent's greeting, with espeak-ng.

It is what calls get when no speech pipeline is configured, so that a call is never silent and
the transport can be tested end to end without models.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from voice.engines.tts.espeak import EspeakTts
from voice.pipeline.base import AudioOutput, CallEvents
from voice.protocol import CallSpec, browser
from voice.protocol.browser import transcript_final

logger = logging.getLogger(__name__)

DEFAULT_GREETING = "Hello! You are connected to the voice agent."


# Greeting audio by (text, language, speed): the same agent's greeting is synthesized once per
# worker process, so it starts the moment media flows.
_greetings: dict[tuple, tuple[np.ndarray, int]] = {}
_MAX_GREETINGS = 256


class GreetingPipeline:
    def __init__(self, spec: CallSpec, output: AudioOutput, events: CallEvents) -> None:
        self.spec = spec
        self.output = output
        self.events = events
        self.text = spec.greeting.strip() or DEFAULT_GREETING
        self._speaking_since_ms: int | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._speak())

    async def _speak(self) -> None:
        key = (self.text, self.spec.language, self.spec.tts_speed)
        if key not in _greetings:
            if len(_greetings) >= _MAX_GREETINGS:
                _greetings.clear()
            espeak = EspeakTts()
            try:
                _greetings[key] = await asyncio.to_thread(
                    espeak.synthesize,
                    self.text,
                    voice=self.spec.language,
                    speed=self.spec.tts_speed,
                )
            except (OSError, RuntimeError) as exc:
                logger.error("call %s: greeting synthesis failed: %s", self.spec.session_id, exc)
                return
        pcm, rate = _greetings[key]
        self.output.play(pcm, rate)

    def push_audio(self, pcm16k: np.ndarray) -> None:
        pass

    def interrupt(self) -> None:
        self.output.clear()

    async def say_last(self, text: str) -> None:
        # This pipeline speaks its greeting only; a call cut short just falls silent.
        self.output.clear()

    def on_playback_start(self) -> None:
        self._speaking_since_ms = self.events.call_ms()
        self.events.emit(browser.agent_speaking())
        self.events.emit(transcript_final("agent", self.text, "agent-1"))

    def on_playback_end(self) -> None:
        start = self._speaking_since_ms or 0
        self.events.record_turn(
            {
                "seq": 0,
                "role": "agent",
                "text": self.text,
                "start_ms": start,
                "end_ms": self.events.call_ms(),
            }
        )
        self.events.emit(browser.agent_listening())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def stats(self) -> dict:
        return {}
