"""Hearing the caller: VAD, pre-roll, speculative transcription, Smart Turn, end of turn and
streaming STT, reported through a small hooks object (LiveKit Agents' ``audio_recognition.py``).

The listener knows nothing of the agent's side: what it hears goes up through ``ListenerHooks``,
and the conversation answers; the one thing it is asked in return is a turn's text
(``transcript``), which also tells it the turn's words are no longer waiting to join the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from django.conf import settings

from voice.engines.stt.base import StreamingSpeechToText, SttStream
from voice.engines.vad import WINDOW
from voice.pipeline.inference import inference_pool
from voice.protocol import CallSpec

if TYPE_CHECKING:
    from voice.engines.stt.base import SpeechToText
    from voice.engines.turn import TurnDetector
    from voice.engines.vad import SileroVad

logger = logging.getLogger(__name__)

SPEECH_PROBABILITY = 0.5
WINDOW_MS = WINDOW * 1000 // 16000
# Speech shorter than this never starts a user turn (clicks, a cough).
MIN_SPEECH_MS = 96
PRE_ROLL_WINDOWS = 10  # 320 ms kept from before speech was detected: first syllables
# Smart Turn is asked this far into a pause: pipecat runs it ~200 ms in, the operating point its
# model was trained for, and a turn it judges complete ends with its verdict.
SPECULATE_AFTER_SILENCE_MS = 192
# After this much silence the utterance so far is transcribed speculatively (the guess), and the
# reply to it is begun: speech resuming discards both. Earlier than Smart Turn's ask: the reply's
# LLM starts once the guess is in, so every ms of it before the verdict is a ms off the answer
# (measured at 192 ms: the turn often ended before the guess was in, and nothing was prepared).
GUESS_AFTER_SILENCE_MS = 96
# Smart Turn probability at or above which a pause ends the turn.
SMART_TURN_COMPLETE = 0.5
# A partial transcript (an engine without streaming: Whisper) takes at most this share of an
# inference thread per call: the next waits out this many times the last one's duration.
PARTIAL_MAX_SHARE = 0.25


@dataclass(frozen=True, eq=False)
class UserTurn:
    """A turn the caller has finished: its audio, where it sits on the call's clock, and where
    its text will come from (``TurnListener.transcript`` gets it)."""

    audio: np.ndarray
    start_ms: int
    end_ms: int
    silence_ms: int  # the silence that ended it
    ended_at: float  # time.monotonic() when the caller stopped speaking
    # The speculative transcription or the stream that heard the turn; None: transcribe ``audio``.
    transcription: asyncio.Future | None


class ListenerHooks(Protocol):
    def on_speaking(self, speech_ms: int) -> None:
        """A voiced window inside a turn, ``speech_ms`` of speech heard in it so far: any guess
        made in a pause is void (barge-in is decided here)."""

    def on_guess(self, text: str, guess: asyncio.Future, *, whole_turn: bool) -> None:
        """A speculative transcript of the turn so far, made in a pause that may end it: if the
        turn ends now, ``guess`` is its text, unless earlier words still waiting for their text
        join this turn (``whole_turn`` false)."""

    def on_partial(self, text: str) -> None:
        """A streaming engine's text so far, while the caller speaks."""

    def on_user_turn(self, turn: UserTurn) -> None:
        """The caller has finished a turn."""


class TurnListener:
    def __init__(
        self,
        spec: CallSpec,
        hooks: ListenerHooks,
        *,
        call_ms: Callable[[], int],
        vad: SileroVad,
        stt: SpeechToText,
        turn_detector: TurnDetector | None,
    ) -> None:
        self.session_id = spec.session_id
        self.language = spec.language
        self.hooks = hooks
        self.call_ms = call_ms
        self.vad = vad
        self.stt = stt
        self.turn_detector = turn_detector
        # The agent's end-of-turn silence; the setting only for a spec that has none.
        self.turn_silence_ms = spec.turn_silence_ms or settings.TURN_SILENCE_MS
        # Smart Turn may hold a turn open past the silence, but never longer than this.
        self.turn_max_silence_ms = round(self.turn_silence_ms * settings.SMART_TURN_MAX_WAIT_FACTOR)
        self._deaf = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_WINDOWS)
        self._utterance: list[np.ndarray] = []
        self._in_speech = False
        self._speech_ms = 0
        self._silence_ms = 0
        self._speech_started_ms = 0
        self._speculation: asyncio.Future | None = None
        self._turn_check: asyncio.Future | None = None
        # Partial transcripts while the caller speaks (engines without streaming): the one in
        # flight, the utterance length (windows) at which the next is due, and when it started.
        self.partial_every_windows = -(-settings.STT_PARTIAL_EVERY_MS // WINDOW_MS)
        self._partial: asyncio.Future | None = None
        self._partial_due = 0
        self._partial_started = 0.0
        # Streaming STT (an engine with ``stream``): the utterance is recognized as it is spoken.
        self._stt_stream: asyncio.Task | None = None
        self._stt_audio: asyncio.Queue[np.ndarray | None] | None = None
        # The audio and start of a turn whose words are not transcribed yet: if the caller speaks
        # again before they are, the two utterances become one turn instead of the first being
        # dropped with the reply it started.
        self._untranscribed: tuple[np.ndarray, int] | None = None

    def push_audio(self, pcm16k: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, pcm16k]) if self._pending.size else pcm16k
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            self._on_window(window)

    def deafen(self) -> None:
        """The call is ending: nothing the caller says now can be answered."""
        self._deaf = True

    async def transcript(self, turn: UserTurn) -> str:
        """The turn's text: its speculation's or stream's, or transcribed now. Once it is in,
        the turn's words no longer wait to join the next turn."""
        transcription = turn.transcription
        if transcription is None:
            loop = asyncio.get_running_loop()
            transcription = loop.run_in_executor(
                inference_pool(), self.stt.transcribe, turn.audio, self.language
            )
        text = await transcription
        self._untranscribed = None
        return text

    async def close(self) -> None:
        if self._stt_stream is not None:
            self._stt_stream.cancel()
            await asyncio.gather(self._stt_stream, return_exceptions=True)

    # --- every 32 ms window, on the event loop -------------------------------------------------

    def _on_window(self, window: np.ndarray) -> None:
        if self._deaf:
            return
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
                self._speech_started_ms = self.call_ms() - self._speech_ms
                if isinstance(self.stt, StreamingSpeechToText):
                    self._stream_start(self._utterance)
            return

        self._utterance.append(window)
        if self._stt_audio is not None:
            self._stt_audio.put_nowait(window)
        if voiced:
            self._speculation = None
            self._turn_check = None
            self.hooks.on_speaking(self._speech_ms)
            self._partial_if_due()
        elif self._silence_ms >= GUESS_AFTER_SILENCE_MS:
            loop = asyncio.get_running_loop()
            check_due = (
                self.turn_detector is not None
                and self._turn_check is None
                and self._silence_ms >= SPECULATE_AFTER_SILENCE_MS
            )
            # Not while a partial transcript runs: it holds Whisper's lock, and a guess queued
            # behind it would hold the pool's other thread, which Smart Turn's verdict then
            # waits for. The guess goes out when the partial is in.
            guess_due = (
                self._speculation is None and self._stt_stream is None and self._partial is None
            )
            audio = np.concatenate(self._utterance) if check_due or guess_due else None
            if check_due:
                self._turn_check = loop.run_in_executor(
                    inference_pool(), self.turn_detector.complete_probability, audio
                )
                self._turn_check.add_done_callback(self._on_turn_verdict)
            if guess_due:
                self._speculation = loop.run_in_executor(
                    inference_pool(), self.stt.transcribe, audio, self.language
                )
                self._speculation.add_done_callback(self._on_guess)
        if self._turn_may_end():
            self._end_of_turn()

    def _partial_if_due(self) -> None:
        """Transcribes the utterance so far every STT_PARTIAL_EVERY_MS of it, one at a time and
        no more often than PARTIAL_MAX_SHARE of a thread allows, so the caller sees their words
        as they speak (the streaming engines' partials do this by their nature). The turn's own
        text never comes from these: it is the whole utterance's, at the pause."""
        if (
            not self.partial_every_windows
            or self._stt_stream is not None
            or self._partial is not None
            or len(self._utterance) < self._partial_due
        ):
            return
        if not self._partial_due:  # the utterance's first: due once it is long enough
            self._partial_due = self.partial_every_windows
            return
        self._partial_started = time.monotonic()
        self._partial = asyncio.get_running_loop().run_in_executor(
            inference_pool(), self.stt.transcribe, np.concatenate(self._utterance), self.language
        )
        self._partial.add_done_callback(self._on_partial_transcript)

    def _on_partial_transcript(self, partial: asyncio.Future) -> None:
        if partial is not self._partial:
            return  # the turn ended meanwhile: its final text is coming
        self._partial = None
        took_windows = (time.monotonic() - self._partial_started) * 1000 / WINDOW_MS
        self._partial_due = len(self._utterance) + max(
            self.partial_every_windows, round(took_windows / PARTIAL_MAX_SHARE)
        )
        if partial.cancelled() or partial.exception() is not None:
            return
        text = partial.result().strip()
        # In a pause the guess is newer than this partial and is shown instead.
        if text and self._in_speech and self._speculation is None:
            self.hooks.on_partial(text)

    def _on_guess(self, guess: asyncio.Future) -> None:
        if guess is not self._speculation or guess.cancelled() or guess.exception() is not None:
            return
        text = guess.result().strip()
        if text:
            self.hooks.on_guess(text, guess, whole_turn=self._untranscribed is None)

    # --- end of turn -----------------------------------------------------------------------------

    def _turn_may_end(self) -> bool:
        """Whether the turn ends now. By silence alone at the agent's end-of-turn silence. With
        Smart Turn, as soon as it judges the utterance complete (asked at 192 ms, about 45 ms
        to answer on two cores; 300-350 ms into the pause in the benchmark); if unfinished, at
        the maximum wait; if it failed, by the silence rule. It is asked once per pause: asked
        again later in the pause, it hears more silence as more finished, and a synthetic "I
        wanted to ask about..." left for a second then ended the turn mid-sentence."""
        if self._silence_ms >= self.turn_max_silence_ms:
            return True
        if self.turn_detector is None:
            return self._silence_ms >= self.turn_silence_ms
        check = self._turn_check
        if check is None or not check.done():
            return False
        verdict = self._verdict(check)
        return verdict if verdict is not None else self._silence_ms >= self.turn_silence_ms

    def _verdict(self, check: asyncio.Future) -> bool | None:
        """Smart Turn's answer: complete or not; None when the model failed."""
        if check.cancelled():
            return None
        if check.exception() is not None:
            return None  # a failing model must not hold every turn open: silence decides
        return check.result() >= SMART_TURN_COMPLETE

    def _on_turn_verdict(self, check: asyncio.Future) -> None:
        """A verdict ends a complete turn the moment it arrives (it was asked in a pause)."""
        if not check.cancelled() and check.exception() is not None:
            # Logged here, once per pause: _verdict runs at every window after it.
            logger.warning("call %s: Smart Turn failed: %r", self.session_id, check.exception())
        if check is self._turn_check and self._in_speech and self._turn_may_end():
            self._end_of_turn()

    def _end_of_turn(self) -> None:
        audio = np.concatenate(self._utterance)
        self._utterance = []
        self._in_speech = False
        self._speech_ms = 0
        ended_at = time.monotonic() - self._silence_ms / 1000
        end_ms = self.call_ms() - self._silence_ms
        start_ms = self._speech_started_ms
        self._turn_check = None
        self._partial, self._partial_due = None, 0
        # Nothing but silence followed the speculative snapshot, so its text is the turn's text.
        transcription, self._speculation = self._speculation, None
        if self._stt_stream is not None:
            # A streaming engine has heard the whole utterance: its final text is the turn's.
            self._stt_audio.put_nowait(None)
            transcription, self._stt_stream, self._stt_audio = self._stt_stream, None, None
        if self._untranscribed is not None:
            # The caller went on before their previous words were transcribed (the reply they
            # started was cancelled): transcribe both as one turn.
            earlier, start_ms = self._untranscribed
            audio = np.concatenate([earlier, audio])
            if transcription is not None:
                transcription.cancel()
            transcription = None
        self._untranscribed = (audio, start_ms)
        self.hooks.on_user_turn(
            UserTurn(audio, start_ms, end_ms, self._silence_ms, ended_at, transcription)
        )

    # --- streaming STT ---------------------------------------------------------------------------

    def _stream_start(self, windows: list[np.ndarray]) -> None:
        """Recognize the utterance while it is spoken: its windows go through a queue to one task
        that feeds the engine in the inference pool, in order, as many at a time as have come
        (recognition costs a good part of real time: it must stay off the event loop)."""
        assert isinstance(self.stt, StreamingSpeechToText)
        self._stt_audio = queue = asyncio.Queue()
        for window in windows:
            queue.put_nowait(window)
        stream = self.stt.stream(self.language)
        self._stt_stream = asyncio.create_task(self._stream_feed(stream, queue))

    async def _stream_feed(self, stream: SttStream, queue: asyncio.Queue) -> str:
        """Feeds ``stream`` until the end of turn (None); returns the final text. Each new
        partial text goes up as ``on_partial``."""
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
                    self.hooks.on_partial(partial)
        return await loop.run_in_executor(inference_pool(), stream.finish)
