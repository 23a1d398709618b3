"""The conversation pipeline's parts on their own, with fakes for the models and the track: the
listener's hooks, one agent utterance's heard/rest split, the speaking signal."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from voice.engines.vad import WINDOW
from voice.pipeline.listener import SPECULATE_AFTER_SILENCE_MS, WINDOW_MS, TurnListener, UserTurn
from voice.pipeline.speech import SpeakingSignal, Speech
from voice.pipeline.transcript import Transcript
from voice.protocol import CallSpec

VOICED = np.full(WINDOW, 1000, dtype=np.int16)
SILENT = np.zeros(WINDOW, dtype=np.int16)


class LoudnessVad:
    """Speech wherever the window is not silent."""

    def probability(self, window: np.ndarray) -> float:
        return 1.0 if np.abs(window).max() > 0 else 0.0


class InFlight:
    """Counts calls made from the inference pool, so a test can wait for them to be back."""

    started = finished = 0

    @classmethod
    async def settle(cls) -> None:
        for _ in range(1000):
            if cls.started == cls.finished:
                break
            await asyncio.sleep(0.01)
        # The results reach their futures, then the futures' callbacks, on the loop.
        await asyncio.sleep(0.02)
        await asyncio.sleep(0.02)


class FixedStt:
    def __init__(self, text: str = "I would like a cake", *, seconds: float = 0.0) -> None:
        self.text = text
        self.seconds = seconds  # how long each transcription takes
        self.inputs: list[int] = []

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        InFlight.started += 1
        time.sleep(self.seconds)
        self.inputs.append(pcm16k.size)
        InFlight.finished += 1
        return self.text


class ScriptedTurn:
    """A turn detector that answers each ask with the next of ``verdicts`` (the last repeats);
    an exception instance is raised, as a broken model would."""

    def __init__(self, *verdicts: float | Exception) -> None:
        self.verdicts = list(verdicts)
        self.asked_with_ms: list[int] = []

    def complete_probability(self, pcm16k: np.ndarray) -> float:
        InFlight.started += 1
        self.asked_with_ms.append(pcm16k.size * 1000 // 16000)
        verdict = self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]
        InFlight.finished += 1
        if isinstance(verdict, Exception):
            raise verdict
        return verdict


class RecordedHooks:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.turns: list[UserTurn] = []

    def on_speaking(self, speech_ms: int) -> None:
        self.calls.append(("speaking", speech_ms))

    def on_guess(self, text: str, guess: asyncio.Future, *, whole_turn: bool) -> None:
        self.calls.append(("guess", text, guess, whole_turn))

    def on_partial(self, text: str) -> None:
        self.calls.append(("partial", text))

    def on_user_turn(self, turn: UserTurn) -> None:
        self.calls.append(("turn", turn))
        self.turns.append(turn)

    def names(self) -> list[str]:
        names = [call[0] for call in self.calls]
        return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]  # runs as one


class Ear:
    """A listener on a fake VAD and STT, with a call clock that advances one window per window."""

    def __init__(
        self,
        *,
        turn_silence_ms: int = 600,
        stt=None,
        turn_detector=None,
        partials_ms: int | None = 0,
    ) -> None:
        self.ms = 0
        self.hooks = RecordedHooks()
        self.stt = stt or FixedStt()
        self.listener = TurnListener(
            CallSpec(
                session_id="session_parts", agent_id="agent_parts", turn_silence_ms=turn_silence_ms
            ),
            self.hooks,
            call_ms=lambda: self.ms,
            vad=LoudnessVad(),
            stt=self.stt,
            turn_detector=turn_detector,
        )
        # Partial transcripts while speech goes on: off unless a test is about them (None: as
        # the setting says).
        if partials_ms is not None:
            self.listener.partial_every_windows = -(-partials_ms // WINDOW_MS)

    def push(self, window: np.ndarray, count: int = 1) -> None:
        for _ in range(count):
            self.ms += WINDOW_MS
            self.listener.push_audio(window)

    async def settle(self) -> None:
        """Let speculative work in the inference pool finish and its callbacks run."""
        await InFlight.settle()


GUESS_WINDOWS = -(-SPECULATE_AFTER_SILENCE_MS // WINDOW_MS)


async def test_the_listener_reports_speech_then_its_guess_then_the_turn_that_reuses_it():
    ear = Ear()
    ear.push(SILENT, 5)
    ear.push(VOICED, 20)
    ear.push(SILENT, GUESS_WINDOWS)
    await ear.settle()
    assert ear.hooks.names() == ["speaking", "guess"]
    _, text, guess, whole_turn = ear.hooks.calls[-1]
    assert (text, whole_turn) == ("I would like a cake", True)

    ear.push(SILENT, 600 // WINDOW_MS)
    assert ear.hooks.names() == ["speaking", "guess", "turn"]
    turn = ear.hooks.turns[0]
    assert turn.transcription is guess
    assert (turn.start_ms, turn.end_ms) == (5 * WINDOW_MS, 25 * WINDOW_MS)  # the speech itself
    assert turn.silence_ms >= 600
    assert await ear.listener.transcript(turn) == "I would like a cake"
    assert len(ear.stt.inputs) == 1  # the guess was the turn's text: transcribed once


async def test_speech_over_the_barge_in_threshold_is_reported_window_by_window():
    ear = Ear()
    ear.push(VOICED, 10)
    speaking = [call[1] for call in ear.hooks.calls if call[0] == "speaking"]
    # Speech starts a turn after 96 ms (3 windows); each voiced window after that is reported
    # with the speech heard so far, so the conversation can decide when it is a barge-in.
    assert speaking == [WINDOW_MS * n for n in range(4, 11)]


async def test_speech_resuming_after_a_guess_voids_it():
    ear = Ear()
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    ear.push(VOICED, 5)  # before the guess is back
    await ear.settle()
    ear.push(SILENT, GUESS_WINDOWS)
    await ear.settle()
    guesses = [call for call in ear.hooks.calls if call[0] == "guess"]
    assert len(guesses) == 1 and len(ear.stt.inputs) == 2  # the first guess never surfaced
    ear.push(SILENT, 600 // WINDOW_MS)
    assert ear.hooks.turns[0].transcription is guesses[0][2]


async def test_words_not_yet_transcribed_join_the_next_turn():
    ear = Ear(turn_silence_ms=320)
    ear.push(VOICED, 10)
    ear.push(SILENT, 320 // WINDOW_MS + 1)
    first = ear.hooks.turns[0]
    # Nobody has taken the first turn's text yet when the caller goes on.
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    await ear.settle()
    guess = next(call for call in reversed(ear.hooks.calls) if call[0] == "guess")
    assert guess[3] is False  # shown, but the turn's text will not be this guess
    ear.push(SILENT, 320 // WINDOW_MS)
    second = ear.hooks.turns[1]
    assert second.start_ms == first.start_ms
    assert second.audio.size > first.audio.size
    assert second.transcription is None  # both utterances are transcribed afresh, as one
    await ear.listener.transcript(second)
    # Once a turn's text is in, the next turn stands alone.
    ear.push(VOICED, 10)
    ear.push(SILENT, 320 // WINDOW_MS + 1)
    assert ear.hooks.turns[2].start_ms > second.end_ms


async def test_smart_turn_holds_the_turn_open_until_its_maximum(settings):
    settings.SMART_TURN_MAX_WAIT_FACTOR = 2.0
    ear = Ear(turn_silence_ms=320, turn_detector=ScriptedTurn(0.0))
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    await ear.settle()
    ear.push(SILENT, 640 // WINDOW_MS - GUESS_WINDOWS - 1)
    await ear.settle()
    assert not ear.hooks.turns  # past the silence, short of twice it
    ear.push(SILENT, 1)
    assert ear.hooks.turns[0].silence_ms == 640


async def test_a_turn_smart_turn_hears_as_complete_ends_with_its_verdict_early_in_the_pause():
    detector = ScriptedTurn(0.9)
    ear = Ear(turn_silence_ms=600, turn_detector=detector)
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    assert not ear.hooks.turns  # asked, not answered yet
    await ear.settle()
    # The verdict ended the turn as it arrived, 192 ms into the pause, not at 600 ms.
    assert [turn.silence_ms for turn in ear.hooks.turns] == [GUESS_WINDOWS * WINDOW_MS]
    assert len(detector.asked_with_ms) == 1


async def test_an_unfinished_turn_is_judged_once_and_waits_out_its_maximum(settings):
    settings.SMART_TURN_MAX_WAIT_FACTOR = 2.0
    detector = ScriptedTurn(0.1, 0.9)  # a second ask would hear it as finished
    ear = Ear(turn_silence_ms=320, turn_detector=detector)
    ear.push(VOICED, 10)
    for _ in range(640 // WINDOW_MS - 1):
        ear.push(SILENT)
        await ear.settle()
    assert not ear.hooks.turns and len(detector.asked_with_ms) == 1
    ear.push(SILENT)
    assert [turn.silence_ms for turn in ear.hooks.turns] == [640]


async def test_speech_that_resumes_voids_a_verdict_still_coming():
    detector = ScriptedTurn(0.9)
    ear = Ear(turn_silence_ms=600, turn_detector=detector)
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    ear.push(VOICED, 1)  # the caller goes on before the verdict is in
    await ear.settle()
    assert not ear.hooks.turns


async def test_a_failing_smart_turn_leaves_the_turn_to_the_silence_rule(caplog):
    ear = Ear(turn_silence_ms=320, turn_detector=ScriptedTurn(RuntimeError("onnx")))
    ear.push(VOICED, 10)
    ear.push(SILENT, GUESS_WINDOWS)
    await ear.settle()
    assert not ear.hooks.turns
    ear.push(SILENT, 320 // WINDOW_MS - GUESS_WINDOWS)
    await ear.settle()
    assert [turn.silence_ms for turn in ear.hooks.turns] == [320 // WINDOW_MS * WINDOW_MS]
    # Said once for the pause, not at each of its windows.
    assert [r.message for r in caplog.records].count(
        "call session_parts: Smart Turn failed: RuntimeError('onnx')"
    ) == 1


async def test_the_caller_sees_their_words_while_they_speak(settings):
    ear = Ear(stt=FixedStt("I would like"), partials_ms=320)
    for _ in range(6):
        ear.push(VOICED, 10)
        await ear.settle()
    partials = [call[1] for call in ear.hooks.calls if call[0] == "partial"]
    assert partials and set(partials) == {"I would like"}
    # Each is the utterance so far, every 320 ms of it.
    assert len(ear.stt.inputs) >= 2 and ear.stt.inputs == sorted(set(ear.stt.inputs))
    assert ear.stt.inputs[1] - ear.stt.inputs[0] >= 320 * 16
    ear.push(SILENT, 600 // WINDOW_MS + 1)
    await ear.settle()
    (turn,) = ear.hooks.turns
    assert await ear.listener.transcript(turn) == "I would like"
    # The turn's text is the pause's guess: all the speech, not a partial's part of it.
    assert ear.stt.inputs[-1] >= turn.audio.size - turn.silence_ms * 16


async def test_partials_take_no_more_than_their_share_of_the_cpu(settings):
    ear = Ear(stt=FixedStt(seconds=0.1), partials_ms=32)  # as often as the share allows
    for _ in range(60):  # 1.9 s of speech, a window at a time
        ear.push(VOICED)
        await ear.settle()
    # 100 ms per transcription, a quarter of a thread: one per 400 ms of speech at most.
    assert 2 <= len(ear.stt.inputs) <= 6, ear.stt.inputs


@pytest.mark.parametrize("every_ms, expected_calls", [(0, 0), (640, 2)])
async def test_the_setting_sets_how_often_partials_come(settings, every_ms, expected_calls):
    settings.STT_PARTIAL_EVERY_MS = every_ms
    ear = Ear(partials_ms=None)
    for _ in range(5):  # 1.6 s of speech
        ear.push(VOICED, 10)
        await ear.settle()
    assert len(ear.stt.inputs) == expected_calls


async def test_a_deafened_listener_hears_nothing():
    ear = Ear()
    ear.listener.deafen()
    ear.push(VOICED, 20)
    ear.push(SILENT, 40)
    assert ear.hooks.calls == []


class FakeOutput:
    """A track whose playback the test moves by hand."""

    def __init__(self) -> None:
        self.played_ms = 0
        self.queued_ms = 0
        self.is_playing = False

    def play(self, pcm: np.ndarray, sample_rate: int) -> None:
        self.queued_ms += len(pcm) * 1000 // sample_rate
        self.is_playing = True

    def clear(self) -> int:
        dropped, self.queued_ms = self.queued_ms, 0
        return dropped

    def advance(self, ms: int) -> None:
        ms = min(ms, self.queued_ms)
        self.played_ms += ms
        self.queued_ms -= ms
        self.is_playing = self.queued_ms > 0

    async def wait_idle(self) -> None:
        while self.is_playing:
            await asyncio.sleep(0.001)


class Emitted:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.turns: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def record_turn(self, turn: dict) -> None:
        self.turns.append(turn)

    def end_call(self, reason: str, message: str = "") -> None:
        pass

    def call_ms(self) -> int:
        return 0

    async def knowledge(self, count_tokens):
        return None


def audio(ms: int, rate: int = 16000) -> np.ndarray:
    return np.ones(rate * ms // 1000, dtype=np.int16)


@pytest.fixture
def utterance():
    output, events = FakeOutput(), Emitted()
    output.played_ms = 5000  # earlier utterances: not this one's
    speech = Speech(output, Transcript(events), SpeakingSignal(output, events.emit), start_ms=0)
    speech.play("Hello there.", audio(1000), 16000)
    speech.play("We open at eight every morning.", audio(2000), 16000)
    speech.play("See you soon.", audio(1000), 16000)
    return speech, output, events


def test_an_interrupted_utterance_tells_what_was_heard_and_the_rest(utterance):
    speech, output, _ = utterance
    output.advance(1000 + 1000)  # the first chunk, and half of the second
    heard, rest = speech.interrupt()
    assert heard == "Hello there. We open at"
    assert rest == "eight every morning. See you soon."
    assert speech.dropped_ms == 2000 and output.queued_ms == 0


def test_nothing_played_means_nothing_heard(utterance):
    speech, _, _ = utterance
    assert speech.interrupt() == ("", "Hello there. We open at eight every morning. See you soon.")


def test_an_utterance_is_one_live_line_closed_by_one_final(utterance):
    speech, output, events = utterance
    output.advance(4000)
    speech.produced()
    speech.end(speech.text)
    lines = [e for e in events.events if e["type"].startswith("transcript")]
    assert [e["type"] for e in lines] == ["transcript_partial"] * 3 + ["transcript"]
    assert len({e["utterance_id"] for e in lines}) == 1
    assert lines[-1]["text"] == lines[-2]["text"] == speech.text


def test_the_agent_is_listening_again_only_once_all_is_produced_and_played():
    output, events = FakeOutput(), Emitted()
    signal = SpeakingSignal(output, events.emit)
    speech = Speech(output, Transcript(events), signal, start_ms=0)
    speech.play("One.", audio(500), 16000)
    signal.playback_started()
    output.advance(500)
    signal.playback_ended()  # a gap between chunks: more is coming
    speech.play("Two.", audio(500), 16000)
    output.advance(500)
    speech.produced()
    signal.playback_ended()
    speaking = [e["type"] for e in events.events if e["type"].startswith("agent_")]
    assert speaking == ["agent_speaking", "agent_listening"]
