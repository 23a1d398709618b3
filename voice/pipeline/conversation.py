"""The voice agent: VAD -> end of turn -> STT -> LLM -> speakable chunks -> TTS, with barge-in.

The conversation sits on its parts, each of which knows nothing of the ones above it:
- ``TurnListener`` (listener.py) hears the caller and reports through ``ListenerHooks``, which
  this class implements: speech (barge-in), a guess in a pause, a streaming partial, a turn.
- ``Speech`` (speech.py) is one agent utterance: play, interrupt -> what was heard and the rest.
- ``PreparedReply`` (prepared.py) is a reply written during the end-of-turn silence.
- ``ReplyWriter`` (reply.py) writes and voices replies: LLM -> chunks -> TTS.
What stays here: history, answering a turn, the greeting, hanging up, last words, barge-in.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from functools import partial

import numpy as np
from django.conf import settings

from voice.engines import registry
from voice.pipeline.base import AudioOutput, CallEvents, part_engine
from voice.pipeline.listener import TurnListener, UserTurn
from voice.pipeline.prepared import PreparedReply
from voice.pipeline.reply import Voiced, reply_writer_build
from voice.pipeline.speech import SpeakingSignal, Speech
from voice.pipeline.transcript import Transcript
from voice.protocol import REASON_AGENT_HANGUP, REASON_ERROR, CallSpec

logger = logging.getLogger(__name__)

# What the caller hears when the agent cannot answer (a model that fails mid-call), before the
# call ends with reason ``error``: never silence.
APOLOGY_LINE = "I'm sorry, something went wrong on our side. Please call again in a moment."
GOODBYE = re.compile(r"\b(good\s?bye|bye|hang up|end (the|this) call|that'?s all)\b", re.IGNORECASE)
CLOSING_LINE = "Thank you for calling. Goodbye!"

# Greeting audio by (engine, voice, speed, text): synthesized once per worker process.
_greetings: dict[tuple, tuple[np.ndarray, int]] = {}


class ConversationPipeline:
    """One call's conversation (the ``CallPipeline`` seam); the listener's ``ListenerHooks``."""

    stt = part_engine("listener", "stt")
    turn_detector = part_engine("listener", "turn_detector")
    llm = part_engine("writer", "llm")
    tts = part_engine("writer", "tts")

    def __init__(self, spec: CallSpec, output: AudioOutput, events: CallEvents) -> None:
        self.spec = spec
        self.output = output
        self.events = events
        vad = registry.vad_create()
        stt = registry.stt_get(spec.stt_engine, spec.stt_model_path)
        tts = registry.tts_get(spec.tts_engine, spec.tts_voice)
        turn_detector = registry.turn_detector_get(spec.turn_detection)
        self.listener = TurnListener(
            spec, self, call_ms=events.call_ms, vad=vad, stt=stt, turn_detector=turn_detector
        )
        self.writer = reply_writer_build(spec, tts=tts)
        self._knowledge: asyncio.Task | None = None  # loads the knowledge, evaluates the prompt
        self._greeting_voiced = asyncio.Event()
        if not spec.greeting.strip():
            self._greeting_voiced.set()
        self.transcript = Transcript(events)
        self.signal = SpeakingSignal(output, events.emit)
        self.history: list[dict] = []
        self.turn_timings: list[dict] = []
        self._timing: dict = {}  # the current turn's
        self._user_end_monotonic = 0.0  # when the caller stopped speaking, until the reply plays
        # The agent's side: its reply task, the LLM's stop, the utterance playing, a prepared reply.
        self._reply: asyncio.Task | None = None
        self._cancel = threading.Event()
        self._speech: Speech | None = None
        self._prepared: PreparedReply | None = None
        # What a barge-in kept the caller from hearing: said after all if it was only a noise.
        self._interrupted_rest = ""
        self._failed = False  # a reply failed: the call is apologizing and ending

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        # The agent's knowledge loads and its prompt is evaluated while the greeting plays; a
        # reply waits for them.
        self._knowledge = asyncio.create_task(self._prompt_prepare())
        if self.spec.greeting.strip():
            self._reply = self._watched(self._speak_greeting())

    async def _prompt_prepare(self) -> None:
        try:
            knowledge = await self.events.knowledge(self.writer.llm.count_tokens)
        except Exception:
            # The call goes on, answering from its prompt alone, rather than not at all.
            logger.exception("call %s: its knowledge could not be loaded", self.spec.session_id)
        else:
            self.writer.knowledge_attach(knowledge)
        # After the greeting's synthesis: the CPU goes to what the caller hears first.
        await self._greeting_voiced.wait()
        await self.writer.prefill()

    async def close(self) -> None:
        # A hang-up in the middle of a reply: the transcript keeps what the caller heard of it.
        self.interrupt()
        self._cancel.set()
        self._prepared_drop()
        replies = [task for task in (self._reply, self._knowledge) if task]
        for task in replies:
            task.cancel()
        await asyncio.gather(*replies, self.listener.close(), return_exceptions=True)

    def stats(self) -> dict:
        return {"turn_timings": self.turn_timings[:50]}

    def push_audio(self, pcm16k: np.ndarray) -> None:
        """Every 20 ms, on the event loop: the listener hears it and calls the hooks below."""
        self.listener.push_audio(pcm16k)

    def interrupt(self) -> None:
        """The caller cannot hear any more (the connection dropped): as in a barge-in, the
        agent stops and its transcript keeps only what was heard; it does not pick up again."""
        if self._agent_busy:
            self._barge_in()
        self._interrupted_rest = ""

    # --- what the listener hears (ListenerHooks) -------------------------------------------------

    def on_speaking(self, speech_ms: int) -> None:
        self._prepared_drop()
        if self._agent_busy and speech_ms >= settings.BARGE_IN_MIN_SPEECH_MS:
            self._barge_in()

    def on_guess(self, text: str, guess: asyncio.Future, *, whole_turn: bool) -> None:
        """The caller sees the guess at once, as a partial, while the turn may go on; and the
        reply to it is written and voiced now, so that when the silence does end the turn the
        LLM's first clause and its audio are ready instead of just starting."""
        self.transcript.partial("user", text)
        if (
            settings.VOICE_PREPARE_REPLY
            and self._prepared is None
            and whole_turn
            and not self._agent_busy
            and (self._knowledge is None or self._knowledge.done())
            and any(c.isalnum() for c in text)
            and not GOODBYE.search(text)
        ):
            history = [*self.history, {"role": "user", "content": text}]
            self._prepared = PreparedReply(guess, history, self.writer, self.spec.session_id)

    def on_partial(self, text: str) -> None:
        self.transcript.partial("user", text)
        ready = self._knowledge is None or self._knowledge.done()  # the prompt's start is in
        if settings.VOICE_PREFILL_WORDS and ready and not self._agent_busy:
            self.writer.prefill_words([*self.history, {"role": "user", "content": text}])

    def on_user_turn(self, turn: UserTurn) -> None:
        self._user_end_monotonic = turn.ended_at
        self._timing = {"end_of_turn_wait_ms": turn.silence_ms}
        if self._reply and not self._reply.done():
            self._cancel.set()
            self._reply.cancel()
            if not (self._speech and self._speech.heard()[0]):
                self.transcript.retract("agent")  # shown while being voiced, never heard
        # The reply prepared in the silence answers this turn if it came from the same
        # speculative transcript.
        prepared, self._prepared = self._prepared, None
        if prepared is not None and not prepared.answers(turn.transcription):
            prepared.drop()
            prepared = None
        self._reply = self._watched(self._answer(turn, prepared))
        if prepared is not None:
            # A barge-in or hang-up cancels the reply: the work still under way for it stops too.
            self._reply.add_done_callback(lambda _reply: prepared.drop())

    # --- the agent's side ------------------------------------------------------------------------

    @property
    def _agent_busy(self) -> bool:
        return self.output.is_playing or (self._reply is not None and not self._reply.done())

    def _barge_in(self) -> None:
        """The user talks over the agent: stop its audio now and its pending work."""
        self._cancel.set()
        if self._reply and not self._reply.done():
            self._reply.cancel()
        speech, self._speech = self._speech, None
        if speech is not None:
            heard, rest = speech.interrupt()
            dropped_ms = speech.dropped_ms
        else:
            heard, rest, dropped_ms = "", "", self.output.clear()
        self._interrupted_rest = rest
        if heard:
            self._record_agent(speech, heard)
            speech.end(heard)
        else:
            self.transcript.retract("agent")
        logger.info(
            "call %s: barge-in, dropped %d ms of agent audio", self.spec.session_id, dropped_ms
        )

    async def _answer(self, turn: UserTurn, prepared: PreparedReply | None) -> None:
        started = time.monotonic()
        text = await self.listener.transcript(turn)
        # What is left of STT once the turn has ended.
        self._timing["stt_ms"] = round((time.monotonic() - started) * 1000)
        if not text.strip() or not any(c.isalnum() for c in text):
            # No words: a cough or a noise. If it cut the agent off, let it finish its sentence.
            if self._interrupted_rest:
                rest, self._interrupted_rest = self._interrupted_rest, ""
                await self._say(self.writer.voiced([rest]))
            return
        self._interrupted_rest = ""
        self.transcript.final("user", text)
        self.transcript.record("user", text, turn.start_ms, turn.end_ms)
        self.history.append({"role": "user", "content": text})

        if GOODBYE.search(text):
            await self._say(self.writer.voiced([CLOSING_LINE]))
            await self.output.wait_idle()
            self.events.end_call(REASON_AGENT_HANGUP)
            return
        if prepared is not None:
            self._timing["prepared"] = True
            await self._say(prepared.audio(self._timing), sources=prepared.sources)
            return
        if self._knowledge is not None and not self._knowledge.done():
            waited = time.monotonic()
            await self._knowledge  # the knowledge and the prompt's evaluation, begun at start
            self._timing["prompt_wait_ms"] = round((time.monotonic() - waited) * 1000)
        self._cancel = threading.Event()
        sources: list[dict] = []
        first_token = partial(self._timing.__setitem__, "llm_first_token_ms")  # this turn's
        first_chunk = partial(self._timing.__setitem__, "tts_first_chunk_ms")
        first_text = partial(self._timing.__setitem__, "first_clause_ms")
        pieces = self.writer.pieces(
            self.history, self._cancel, first_token, sources, prompt_stats=self._timing
        )
        await self._say(self.writer.voiced(pieces, first_chunk, first_text), sources)

    def _speech_begin(self) -> Speech:
        self._speech = Speech(
            self.output, self.transcript, self.signal, start_ms=self.events.call_ms()
        )
        return self._speech

    async def _say(self, audio: AsyncIterator[Voiced], sources: list[dict] | None = None) -> None:
        """Queue each (chunk, pcm, rate) of ``audio`` for playback as soon as it is ready;
        ``sources``: the knowledge the reply was given, kept with its turn."""
        speech = self._speech_begin()
        try:
            async for chunk, pcm, rate in audio:
                speech.play(chunk, pcm, rate)
        finally:
            speech.produced()
        await speech.wait_for_playout()
        text = speech.text.strip()
        if text:
            speech.end(text)
            self._record_agent(speech, text, sources)
        self._speech = None

    async def _speak_greeting(self) -> None:
        greeting = self.spec.greeting
        key = (self.spec.tts_engine, self.spec.tts_voice, self.spec.tts_speed, greeting)
        try:
            if key not in _greetings:
                _greetings[key] = await self.writer.voice(greeting)
        finally:
            self._greeting_voiced.set()
        pcm, rate = _greetings[key]
        speech = self._speech_begin()
        speech.play(greeting, pcm, rate)
        speech.produced()
        await speech.wait_for_playout()
        speech.end(greeting)
        self.transcript.record("agent", greeting, speech.start_ms, self.events.call_ms())
        self.history.append({"role": "assistant", "content": greeting})
        self._speech = None

    def _record_agent(self, speech: Speech, text: str, sources: list[dict] | None = None) -> None:
        latency = None
        if speech.first_audio_at and self._user_end_monotonic:
            latency = round((speech.first_audio_at - self._user_end_monotonic) * 1000)
            self._timing["response_latency_ms"] = latency
            self.turn_timings.append(dict(self._timing))
            self._user_end_monotonic = 0.0
        self.history.append({"role": "assistant", "content": text})
        self.transcript.record(
            "agent", text, speech.start_ms, self.events.call_ms(), latency=latency, sources=sources
        )

    def _prepared_drop(self) -> None:
        if self._prepared is not None:
            self._prepared.drop()
            self._prepared = None

    # --- failures on the reply path, and playback callbacks ---------------------------------------

    def _watched(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        task.add_done_callback(self._on_reply_done)
        return task

    def _on_reply_done(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None or self._failed:
            return
        exc = task.exception()
        self._failed = True
        self.listener.deafen()
        logger.error("call %s: the agent's reply failed", self.spec.session_id, exc_info=exc)
        self._reply = asyncio.create_task(self._apologize_and_end(exc))

    async def _apologize_and_end(self, exc: BaseException) -> None:
        """Say sorry in the agent's voice (if that voice still works), then end the call as
        failed with what went wrong, which the caller's ``error`` event and the call record get."""
        self._cancel.set()
        self._prepared_drop()
        self.output.clear()
        self._speech = None
        self.transcript.retract("agent")
        await self._play_line(APOLOGY_LINE)
        self.events.end_call(REASON_ERROR, f"The agent could not answer: {exc}"[:500])

    async def say_last(self, text: str) -> None:
        """The call is being cut (the server shuts down): the agent stops as at a barge-in, the
        caller is no longer heard, and ``text`` is said; returns once it has been played out."""
        self.listener.deafen()
        self.interrupt()
        self._prepared_drop()
        await self._play_line(text)

    async def _play_line(self, text: str) -> None:
        try:
            await self.signal.play_alone(*await self.writer.voice(text))
        except Exception:
            logger.exception("call %s: a line could not be voiced", self.spec.session_id)

    def on_playback_start(self) -> None:
        if self._speech is not None:
            self._speech.on_playback_start()
        self.signal.playback_started()

    def on_playback_end(self) -> None:
        self.signal.playback_ended()
