"""The voice agent: VAD -> end of turn -> STT -> LLM -> speakable chunks -> TTS, with barge-in.

Everything per frame happens on the event loop and is cheap (a 32 ms Silero window is ~0.2 ms);
STT, LLM and TTS run in a small thread pool shared by the worker's calls, so one call's model
work never holds up another call's audio frames.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from django.conf import settings

from voice.browser_events import Role, UtteranceIds, transcript_final, transcript_partial
from voice.engines import registry
from voice.engines.stt import StreamingSpeechToText, SttStream
from voice.engines.text import history_trim, speakable_chunks, system_prompt_build
from voice.engines.vad import WINDOW
from voice.pipeline.base import AudioOutput, CallEvents
from voice.protocol import REASON_AGENT_HANGUP, REASON_ERROR, CallSpec

logger = logging.getLogger(__name__)

SPEECH_PROBABILITY = 0.5
WINDOW_MS = WINDOW * 1000 // 16000
# Speech shorter than this never starts a user turn (clicks, a cough).
MIN_SPEECH_MS = 96
PRE_ROLL_WINDOWS = 10  # 320 ms kept from before speech was detected: first syllables
# After this much silence the utterance so far is transcribed speculatively: when the turn does
# end (the agent's turn_silence_ms), its text is ready or nearly so. Speech resuming discards the
# guess. Smart Turn is asked at the same moment: pipecat runs it ~200 ms into a pause, the
# operating point its model was trained for, and its verdict is then ready at the threshold.
SPECULATE_AFTER_SILENCE_MS = 192
# Smart Turn probability at or above which a pause ends the turn.
SMART_TURN_COMPLETE = 0.5
# What the caller hears when the agent cannot answer (a model that fails mid-call), before the
# call ends with reason ``error``: never silence.
APOLOGY_LINE = "I'm sorry, something went wrong on our side. Please call again in a moment."
GOODBYE = re.compile(r"\b(good\s?bye|bye|hang up|end (the|this) call|that'?s all)\b", re.IGNORECASE)
CLOSING_LINE = "Thank you for calling. Goodbye!"


@dataclass(eq=False)
class PreparedReply:
    """A reply written and voiced from the speculative transcript while the caller is silent but
    the turn has not ended: if the turn then ends on that transcript, its audio is ready (or on
    its way) and plays at once; if the caller speaks on, it is dropped unheard."""

    speculation: asyncio.Future
    cancel: threading.Event = field(default_factory=threading.Event)
    chunks: asyncio.Queue = field(default_factory=asyncio.Queue)  # (text, pcm, rate), then None
    task: asyncio.Task | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None

    def drop(self) -> None:
        self.cancel.set()
        if self.task is not None:
            self.task.cancel()


@cache
def inference_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        settings.VOICE_INFERENCE_THREADS, thread_name_prefix="voice-inference"
    )


def engines_preload(spec: CallSpec | None = None, *, warm: bool = True) -> dict[str, int]:
    """Load the default models (call from a thread at worker start, not on the event loop), and
    with ``warm`` run each once: a first inference pays for memory mapping, kernel selection and
    allocation, which would otherwise land on the first caller's first reply. Returns the ms
    each stage took."""
    timings: dict[str, int] = {}

    def timed(stage: str, work: Callable[[], object]) -> object:
        started = time.monotonic()
        result = work()
        timings[stage] = round((time.monotonic() - started) * 1000)
        return result

    vad = timed("vad", registry.vad_create)
    stt = timed(
        "stt",
        lambda: registry.stt_get(
            spec.stt_engine if spec else "whisper", spec.stt_model_path if spec else ""
        ),
    )
    tts = timed(
        "tts",
        lambda: registry.tts_get(
            spec.tts_engine if spec else "piper", spec.tts_voice if spec else ""
        ),
    )
    llm = timed("llm", lambda: registry.llm_get(spec.llm_model if spec else ""))
    turn = registry.turn_detector_get(spec.turn_detection) if spec else None
    if warm:
        started = time.monotonic()
        vad.probability(np.zeros(WINDOW, dtype=np.int16))
        stt.transcribe(np.zeros(16000, dtype=np.int16), spec.language if spec else "en")
        tts.synthesize("Hello.", voice=spec.tts_voice if spec else "")
        for _ in llm.stream_reply(
            [{"role": "user", "content": "Hi"}],
            temperature=0.0,
            max_tokens=1,
            cancel=threading.Event(),
        ):
            pass
        if turn is not None:
            turn.complete_probability(np.zeros(16000 * 2, dtype=np.int16))
        timings["warm_up"] = round((time.monotonic() - started) * 1000)
    return timings


_greetings: dict[tuple, tuple[np.ndarray, int]] = {}


class ConversationPipeline:
    def __init__(self, spec: CallSpec, output: AudioOutput, events: CallEvents) -> None:
        self.spec = spec
        self.output = output
        self.events = events
        self.vad = registry.vad_create()
        self.stt = registry.stt_get(spec.stt_engine, spec.stt_model_path)
        self.tts = registry.tts_get(spec.tts_engine, spec.tts_voice)
        self.llm = registry.llm_get(spec.llm_model)
        self.turn_detector = registry.turn_detector_get(spec.turn_detection)
        # The agent's end-of-turn silence; the setting only for a spec that has none.
        self.turn_silence_ms = spec.turn_silence_ms or settings.TURN_SILENCE_MS
        # Smart Turn may hold a turn open past the silence, but never longer than this.
        self.turn_max_silence_ms = round(self.turn_silence_ms * settings.SMART_TURN_MAX_WAIT_FACTOR)
        self.system_prompt = system_prompt_build(spec.system_prompt, spec.context)
        self.history: list[dict] = []
        self.seq = 0
        self._utterance_ids = UtteranceIds()
        # Listening state.
        self._pending = np.zeros(0, dtype=np.int16)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_WINDOWS)
        self._utterance: list[np.ndarray] = []
        self._in_speech = False
        self._speech_ms = 0
        self._silence_ms = 0
        self._speech_started_ms = 0
        self._speculation: asyncio.Future | None = None
        self._turn_check: asyncio.Future | None = None
        # Streaming STT (an engine with ``stream``): the utterance is recognized as it is spoken.
        self._stt_stream: asyncio.Task | None = None
        self._stt_audio: asyncio.Queue[np.ndarray | None] | None = None
        # Speaking state: the current reply and what of it has been heard.
        self._reply: asyncio.Task | None = None
        self._cancel = threading.Event()
        self._spoken: list[tuple[str, int]] = []  # (chunk text, its audio ms), in order queued
        self._reply_started_played_ms = 0
        self._reply_start_ms = 0
        self._user_end_monotonic = 0.0
        self._first_audio_monotonic: float | None = None
        self._interrupted_rest = ""
        # The audio and start of a turn whose words are not transcribed yet: if the caller speaks
        # again before they are, the two utterances become one turn instead of the first being
        # dropped with the reply it started.
        self._untranscribed: tuple[np.ndarray, int] | None = None
        self._prepared: PreparedReply | None = None
        self._hangup_after_reply = False
        self._failed = False  # a reply failed: the call is apologizing and ending
        self.turn_timings: list[dict] = []
        self._timing: dict = {}
        # The track goes quiet between chunks too; the caller hears one agent turn.
        self._producing = False
        self._announced = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.spec.greeting.strip():
            self._reply = self._watched(self._speak_greeting())

    async def close(self) -> None:
        # A hang-up in the middle of a reply: the transcript keeps what the caller heard of it.
        self.interrupt()
        self._cancel.set()
        self._prepared_drop()
        tasks = [task for task in (self._reply, self._stt_stream) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict:
        return {"turn_timings": self.turn_timings[:50]}

    # --- audio in (every 20 ms, on the event loop) ---------------------------------------------

    def push_audio(self, pcm16k: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, pcm16k]) if self._pending.size else pcm16k
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            self._on_window(window)

    def _on_window(self, window: np.ndarray) -> None:
        if self._failed:
            return  # the call is ending: nothing the caller says now can be answered
        voiced = self.vad.probability(window) > SPEECH_PROBABILITY
        if voiced:
            self._speech_ms += WINDOW_MS
            self._silence_ms = 0
        else:
            self._silence_ms += WINDOW_MS
            if not self._in_speech:
                self._speech_ms = 0

        if not self._in_speech:
            self._pre_roll.append(window)
            if self._speech_ms >= MIN_SPEECH_MS:
                self._in_speech = True
                self._utterance = list(self._pre_roll)
                self._speech_started_ms = self.events.call_ms() - self._speech_ms
                if isinstance(self.stt, StreamingSpeechToText):
                    self._stream_start(self._utterance)
            return

        self._utterance.append(window)
        if self._stt_audio is not None:
            self._stt_audio.put_nowait(window)
        if voiced:
            self._speculation = None
            self._prepared_drop()
            self._turn_check = None
            if self._agent_busy and self._speech_ms >= settings.BARGE_IN_MIN_SPEECH_MS:
                self._barge_in()
        elif self._silence_ms >= SPECULATE_AFTER_SILENCE_MS:
            loop = asyncio.get_running_loop()
            if self._speculation is None and self._stt_stream is None:
                audio = np.concatenate(self._utterance)
                self._speculation = loop.run_in_executor(
                    inference_pool(), self.stt.transcribe, audio, self.spec.language
                )
                self._speculation.add_done_callback(self._show_guess)
            if self.turn_detector is not None and self._turn_check is None:
                audio = np.concatenate(self._utterance)
                self._turn_check = loop.run_in_executor(
                    inference_pool(), self.turn_detector.complete_probability, audio
                )
                self._turn_check.add_done_callback(self._on_turn_verdict)
        if self._silence_ms >= self.turn_silence_ms and self._turn_may_end():
            self._end_of_turn()

    def _turn_may_end(self) -> bool:
        """At the silence threshold: whether the turn ends now. With Smart Turn, only if it
        judged the utterance complete (if its verdict is still coming, ``_on_turn_verdict``
        decides), or once the silence has run to the maximum whatever it said."""
        if self.turn_detector is None or self._silence_ms >= self.turn_max_silence_ms:
            return True
        check = self._turn_check
        return check is not None and check.done() and self._turn_complete(check)

    def _turn_complete(self, check: asyncio.Future) -> bool:
        if check.cancelled():
            return True
        if check.exception() is not None:
            # A failing model must not hold every turn open: fall back to the silence rule.
            logger.warning(
                "call %s: Smart Turn failed: %r", self.spec.session_id, check.exception()
            )
            return True
        return check.result() >= SMART_TURN_COMPLETE

    def _on_turn_verdict(self, check: asyncio.Future) -> None:
        """A verdict that arrives after the silence threshold ends a complete turn at once."""
        if (
            check is self._turn_check
            and self._in_speech
            and self._silence_ms >= self.turn_silence_ms
            and self._turn_complete(check)
        ):
            self._end_of_turn()

    # --- streaming STT ---------------------------------------------------------------------------

    def _stream_start(self, windows: list[np.ndarray]) -> None:
        """Recognize the utterance while it is spoken: its windows go through a queue to one task
        that feeds the engine in the inference pool, in order, as many at a time as have come
        (recognition costs a good part of real time: it must stay off the event loop)."""
        assert isinstance(self.stt, StreamingSpeechToText)
        self._stt_audio = queue = asyncio.Queue()
        for window in windows:
            queue.put_nowait(window)
        stream = self.stt.stream(self.spec.language)
        self._stt_stream = asyncio.create_task(self._stream_feed(stream, queue))

    async def _stream_feed(self, stream: SttStream, queue: asyncio.Queue) -> str:
        """Feeds ``stream`` until the end of turn (None); returns the final text. Each new
        partial text is shown to the caller as a transcript with final: false."""
        loop = asyncio.get_running_loop()
        shown = ""
        done = False
        while not done:
            chunks = [await queue.get()]
            while not queue.empty():
                chunks.append(queue.get_nowait())
            if chunks[-1] is None:
                chunks.pop()
                done = True
            if chunks:
                partial = await loop.run_in_executor(
                    inference_pool(), stream.accept, np.concatenate(chunks)
                )
                if partial and partial != shown and not done:
                    shown = partial
                    self._show_partial("user", partial)
        return await loop.run_in_executor(inference_pool(), stream.finish)

    def _show_guess(self, guess: asyncio.Future) -> None:
        """The caller sees the speculative text at once, as a partial, while the turn may go on."""
        if guess is not self._speculation or guess.cancelled() or guess.exception() is not None:
            return
        text = guess.result().strip()
        if text:
            self._show_partial("user", text)
            self._reply_prepare(guess, text)

    # --- a reply prepared during the end-of-turn wait ------------------------------------------

    def _reply_prepare(self, guess: asyncio.Future, text: str) -> None:
        """Start writing and voicing the reply to the speculative text now, during the silence
        that has yet to end the turn: by the time it does, the LLM's first clause and its audio
        are ready instead of just starting. Nothing is heard, shown or kept unless the turn ends
        on this very text (``_end_of_turn`` adopts it)."""
        if (
            not settings.VOICE_PREPARE_REPLY
            or self._prepared is not None
            or not self._in_speech
            or self._agent_busy
            or self._untranscribed is not None
            or not any(c.isalnum() for c in text)
            or GOODBYE.search(text)
        ):
            return
        prepared = PreparedReply(speculation=guess)
        history = [*self.history, {"role": "user", "content": text}]
        prepared.task = asyncio.create_task(self._prepare(prepared, history))
        # A dropped preparation is never awaited: its failure is logged, not lost. (An adopted
        # one re-raises it in the reply, which ends the call below.)
        prepared.task.add_done_callback(self._log_prepared_failure)
        self._prepared = prepared

    async def _prepare(self, prepared: PreparedReply, history: list[dict]) -> None:
        loop = asyncio.get_running_loop()

        def first_token(_ms: int) -> None:
            prepared.first_token_at = time.monotonic()

        try:
            pieces = self._llm_pieces(history, prepared.cancel, on_first_token=first_token)
            async for chunk in _chunks(pieces):
                pcm, rate = await loop.run_in_executor(inference_pool(), self._synthesize, chunk)
                if prepared.first_audio_at is None:
                    prepared.first_audio_at = time.monotonic()
                prepared.chunks.put_nowait((chunk, pcm, rate))
        finally:
            prepared.chunks.put_nowait(None)

    def _prepared_drop(self) -> None:
        if self._prepared is not None:
            self._prepared.drop()
            self._prepared = None

    async def _prepared_audio(self, prepared: PreparedReply) -> AsyncIterator[tuple]:
        """The prepared chunks as they come; the breakdown counts only what was left to wait for
        after the turn ended (0 when the first chunk was ready before)."""
        adopted = time.monotonic()
        first = True
        while (item := await prepared.chunks.get()) is not None:
            if first:
                first = False
                token_at = prepared.first_token_at or adopted
                audio_at = prepared.first_audio_at or time.monotonic()
                self._timing["llm_first_token_ms"] = round(max(0.0, token_at - adopted) * 1000)
                self._timing["tts_first_chunk_ms"] = round(
                    max(0.0, audio_at - max(token_at, adopted)) * 1000
                )
            yield item
        await prepared.task  # an LLM or TTS failure surfaces as it would in a live reply

    @property
    def _agent_busy(self) -> bool:
        return self.output.is_playing or (self._reply is not None and not self._reply.done())

    # --- turns -----------------------------------------------------------------------------------

    def _barge_in(self) -> None:
        """The user talks over the agent: stop its audio now and its pending work."""
        self._cancel.set()
        dropped_ms = self.output.clear()
        if self._reply and not self._reply.done():
            self._reply.cancel()
        heard, rest = self._split_heard()
        self._interrupted_rest = rest
        if heard:
            self._record_agent(heard, interrupted=True)
        else:
            self._retract_partial("agent")
        self._spoken = []
        logger.info(
            "call %s: barge-in, dropped %d ms of agent audio", self.spec.session_id, dropped_ms
        )

    def interrupt(self) -> None:
        """The caller cannot hear any more (the connection dropped): as in a barge-in, the
        agent stops and its transcript keeps only what was heard; it does not pick up again."""
        if self._agent_busy:
            self._barge_in()
        self._interrupted_rest = ""

    def _split_heard(self) -> tuple[str, str]:
        """The agent text actually played so far in this reply, and the rest."""
        played = self.output.played_ms - self._reply_started_played_ms
        heard, rest = [], []
        for text, ms in self._spoken:
            if played >= ms:
                heard.append(text)
                played -= ms
            elif played > 0:
                words = text.split()
                cut = round(len(words) * played / ms)
                heard.append(" ".join(words[:cut]))
                rest.append(" ".join(words[cut:]))
                played = 0
            else:
                rest.append(text)
        return " ".join(h for h in heard if h).strip(), " ".join(r for r in rest if r).strip()

    def _end_of_turn(self) -> None:
        audio = np.concatenate(self._utterance)
        self._utterance = []
        self._in_speech = False
        self._speech_ms = 0
        self._user_end_monotonic = time.monotonic() - self._silence_ms / 1000
        self._timing = {"end_of_turn_wait_ms": self._silence_ms}
        end_ms = self.events.call_ms() - self._silence_ms
        start_ms = self._speech_started_ms
        if self._reply and not self._reply.done():
            self._cancel.set()
            self._reply.cancel()
            if not self._split_heard()[0]:
                self._retract_partial("agent")  # shown while being voiced, never heard
        self._turn_check = None
        # Nothing but silence followed the speculative snapshot, so its text is the turn's text.
        speculation, self._speculation = self._speculation, None
        if self._stt_stream is not None:
            # A streaming engine has heard the whole utterance: its final text is the turn's.
            self._stt_audio.put_nowait(None)
            speculation, self._stt_stream, self._stt_audio = self._stt_stream, None, None
        if self._untranscribed is not None:
            # The caller went on before their previous words were transcribed (the reply they
            # started was cancelled): transcribe both as one turn.
            earlier, start_ms = self._untranscribed
            audio = np.concatenate([earlier, audio])
            if speculation is not None:
                speculation.cancel()
            speculation = None
        # The reply prepared in the silence answers this turn if it came from the same
        # speculative transcript.
        prepared, self._prepared = self._prepared, None
        if prepared is not None and (
            speculation is None or prepared.speculation is not speculation
        ):
            prepared.drop()
            prepared = None
        self._untranscribed = (audio, start_ms)
        self._reply = self._watched(self._answer(audio, start_ms, end_ms, speculation, prepared))
        if prepared is not None:
            # A barge-in or hang-up cancels the reply: the work still under way for it stops too.
            self._reply.add_done_callback(lambda _reply: prepared.drop())

    async def _answer(
        self,
        audio: np.ndarray,
        start_ms: int,
        end_ms: int,
        speculation: asyncio.Future | None,
        prepared: PreparedReply | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        if speculation is None:
            speculation = loop.run_in_executor(
                inference_pool(), self.stt.transcribe, audio, self.spec.language
            )
        text = await speculation
        self._untranscribed = None
        # What is left of STT once the turn has ended.
        self._timing["stt_ms"] = round((time.monotonic() - started) * 1000)
        if not text.strip() or not any(c.isalnum() for c in text):
            # No words: a cough or a noise. If it cut the agent off, let it finish its sentence.
            if self._interrupted_rest:
                rest, self._interrupted_rest = self._interrupted_rest, ""
                await self._say(self._synthesized([rest]), record=True)
            return
        self._interrupted_rest = ""
        self._show_final("user", text)
        self._record_turn("user", text, start_ms, end_ms)
        self.history.append({"role": "user", "content": text})

        if GOODBYE.search(text):
            self._hangup_after_reply = True
            await self._say(self._synthesized([CLOSING_LINE]), record=True)
            await self.output.wait_idle()
            self.events.end_call(REASON_AGENT_HANGUP)
            return
        if prepared is not None:
            self._timing["prepared"] = True
            await self._say(self._prepared_audio(prepared), record=True)
            return
        self._cancel = threading.Event()
        pieces = self._llm_pieces(self.history, self._cancel, on_first_token=self._first_token)
        await self._say(self._synthesized(pieces, timed=True), record=True)

    def _first_token(self, ms: int) -> None:
        self._timing["llm_first_token_ms"] = ms

    async def _llm_pieces(
        self, history: list[dict], cancel: threading.Event, on_first_token: Callable[[int], None]
    ):
        """The LLM's reply to ``history`` as an async stream of text pieces (generated in a
        thread, which stops at the next token once ``cancel`` is set)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        messages = history_trim(
            self.system_prompt,
            history,
            budget_tokens=self.llm.context_tokens - self.spec.llm_max_tokens - 64,
            count=self.llm.count_tokens,
        )
        started = time.monotonic()

        def generate() -> None:
            try:
                for piece in self.llm.stream_reply(
                    messages,
                    temperature=self.spec.llm_temperature,
                    max_tokens=self.spec.llm_max_tokens,
                    cancel=cancel,
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        future = loop.run_in_executor(inference_pool(), generate)
        try:
            first = True
            while (piece := await queue.get()) is not None:
                if first:
                    on_first_token(round((time.monotonic() - started) * 1000))
                    first = False
                yield piece
        finally:
            cancel.set()
            await asyncio.shield(future)

    def _synthesize(self, chunk: str) -> tuple[np.ndarray, int]:
        return self.tts.synthesize(chunk, voice=self.spec.tts_voice, speed=self.spec.tts_speed)

    async def _synthesized(self, pieces, *, timed: bool = False) -> AsyncIterator[tuple]:
        """(chunk, pcm, rate) for each speakable chunk of ``pieces``, synthesized as it comes."""
        loop = asyncio.get_running_loop()
        async for chunk in _chunks(pieces):
            started = time.monotonic()
            pcm, rate = await loop.run_in_executor(inference_pool(), self._synthesize, chunk)
            if timed and "tts_first_chunk_ms" not in self._timing:
                self._timing["tts_first_chunk_ms"] = round((time.monotonic() - started) * 1000)
            yield chunk, pcm, rate

    async def _say(self, audio: AsyncIterator[tuple], *, record: bool) -> None:
        """Queue each (chunk, pcm, rate) of ``audio`` for playback as soon as it is ready."""
        self._spoken = []
        self._reply_started_played_ms = self.output.played_ms
        self._reply_start_ms = self.events.call_ms()
        self._first_audio_monotonic = None
        said: list[str] = []
        self._producing = True
        try:
            async for chunk, pcm, rate in audio:
                self.output.play(pcm, rate)
                self._spoken.append((chunk, len(pcm) * 1000 // rate))
                said.append(chunk)
                self._show_partial("agent", " ".join(said))
        finally:
            self._production_done()
        await self.output.wait_idle()
        text = " ".join(said).strip()
        if text:
            self._show_final("agent", text)
            if record:
                self._record_agent(text)
        self._spoken = []

    def _record_agent(self, text: str, *, interrupted: bool = False) -> None:
        latency = None
        if self._first_audio_monotonic and self._user_end_monotonic:
            latency = round((self._first_audio_monotonic - self._user_end_monotonic) * 1000)
            self._timing["response_latency_ms"] = latency
            self.turn_timings.append(dict(self._timing))
            self._user_end_monotonic = 0.0
        self.history.append({"role": "assistant", "content": text})
        self._record_turn(
            "agent", text, self._reply_start_ms, self.events.call_ms(), latency=latency
        )
        if interrupted:
            self._show_final("agent", text)

    # --- failures on the reply path ----------------------------------------------------------

    def _watched(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        task.add_done_callback(self._on_reply_done)
        return task

    def _on_reply_done(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None or self._failed:
            return
        exc = task.exception()
        self._failed = True
        logger.error("call %s: the agent's reply failed", self.spec.session_id, exc_info=exc)
        self._reply = asyncio.create_task(self._apologize_and_end(exc))

    async def _apologize_and_end(self, exc: BaseException) -> None:
        """Say sorry in the agent's voice (if that voice still works), then end the call as
        failed with what went wrong, which the caller's ``error`` event and the call record get."""
        self._cancel.set()
        self._prepared_drop()
        self.output.clear()
        self._spoken = []
        self._retract_partial("agent")
        try:
            loop = asyncio.get_running_loop()
            pcm, rate = await loop.run_in_executor(inference_pool(), self._synthesize, APOLOGY_LINE)
            self._producing = True
            self.output.play(pcm, rate)
            self._production_done()
            await self.output.wait_idle()
        except Exception:
            logger.exception("call %s: the apology could not be voiced", self.spec.session_id)
        self.events.end_call(REASON_ERROR, f"The agent could not answer: {exc}"[:500])

    def _log_prepared_failure(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "call %s: a reply prepared in the pause failed",
                self.spec.session_id,
                exc_info=task.exception(),
            )

    def _show_partial(self, role: Role, text: str) -> None:
        self.events.emit(transcript_partial(role, text, self._utterance_ids.current(role)))

    def _show_final(self, role: Role, text: str) -> None:
        self.events.emit(transcript_final(role, text, self._utterance_ids.finish(role)))

    def _retract_partial(self, role: Role) -> None:
        """A live line whose utterance ended with nothing to keep (a reply cut off unheard)."""
        if self._utterance_ids.has_current(role):
            self.events.emit(transcript_partial(role, "", self._utterance_ids.finish(role)))

    def _record_turn(
        self, role: str, text: str, start_ms: int, end_ms: int, latency: int | None = None
    ) -> None:
        self.seq += 1
        turn = {
            "seq": self.seq,
            "role": role,
            "text": text,
            "start_ms": max(0, start_ms),
            "end_ms": end_ms,
        }
        if latency is not None:
            turn["latency_ms"] = max(0, latency)
        self.events.record_turn(turn)

    async def _speak_greeting(self) -> None:
        key = (self.spec.tts_engine, self.spec.tts_voice, self.spec.tts_speed, self.spec.greeting)
        if key not in _greetings:
            loop = asyncio.get_running_loop()
            _greetings[key] = await loop.run_in_executor(
                inference_pool(),
                self._synthesize,
                self.spec.greeting,
            )
        pcm, rate = _greetings[key]
        self._spoken = [(self.spec.greeting, len(pcm) * 1000 // rate)]
        self._reply_started_played_ms = self.output.played_ms
        self._reply_start_ms = self.events.call_ms()
        self._producing = True
        self.output.play(pcm, rate)
        self._show_partial("agent", self.spec.greeting)
        self._production_done()
        await self.output.wait_idle()
        self._show_final("agent", self.spec.greeting)
        self._record_turn("agent", self.spec.greeting, self._reply_start_ms, self.events.call_ms())
        self.history.append({"role": "assistant", "content": self.spec.greeting})
        self._spoken = []

    # --- playback callbacks --------------------------------------------------------------------

    def on_playback_start(self) -> None:
        if self._first_audio_monotonic is None:
            self._first_audio_monotonic = time.monotonic()
        if not self._announced:
            self._announced = True
            self.events.emit({"type": "agent_speaking"})

    def on_playback_end(self) -> None:
        if not self._producing:
            self._finish_speaking()

    def _production_done(self) -> None:
        self._producing = False
        if not self.output.is_playing:
            self._finish_speaking()

    def _finish_speaking(self) -> None:
        if self._announced:
            self._announced = False
            self.events.emit({"type": "agent_listening"})


async def _chunks(pieces):
    """speakable_chunks over a sync list or an async stream of pieces."""
    if isinstance(pieces, list):
        for chunk in speakable_chunks(pieces):
            yield chunk
        return
    buffer: list[str] = []
    async for piece in pieces:
        buffer.append(piece)
        # Re-chunk what has arrived; hold back the unfinished tail.
        text = "".join(buffer)
        chunks = list(speakable_chunks([text]))
        if len(chunks) > 1:
            for chunk in chunks[:-1]:
                yield chunk
            buffer = [chunks[-1]]
    tail = "".join(buffer).strip()
    if tail:
        for chunk in speakable_chunks([tail]):
            yield chunk
