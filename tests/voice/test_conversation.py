"""The conversation pipeline with the real models (Silero, Whisper tiny.en, SmolLM2, Piper) on
real speech, its audio played out by a real AgentAudioTrack paced as aiortc's sender paces it."""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest

from tests.voice.engines.speech import cut_after, steady_speech
from voice.audio import AgentAudioTrack, resample
from voice.engines import registry
from voice.pipeline.conversation import ConversationPipeline
from voice.pipeline.prompt import Fact
from voice.protocol import CallSpec

FRAME = 320  # 20 ms at 16 kHz


@pytest.fixture(autouse=True)
def small_model(settings):
    settings.LLM_MODEL = "smollm2"
    settings.LLM_MODEL_PATH = ""
    settings.BARGE_IN_MIN_SPEECH_MS = 120


@pytest.fixture(scope="module")
def speech():
    piper = registry.tts_get("piper")

    def make(text: str) -> np.ndarray:
        pcm, rate = piper.synthesize(text)
        return resample(pcm, rate, 16000)

    return make


class RecordedEvents:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.events: list[tuple[float, dict]] = []
        self.turns: list[dict] = []
        self.ended: str | None = None
        self.knowledge_source = None  # the agent's knowledge base: none unless a test gives one

    def emit(self, event: dict) -> None:
        self.events.append((time.monotonic(), event))

    def record_turn(self, turn: dict) -> None:
        self.turns.append(turn)

    def end_call(self, reason: str, message: str = "") -> None:
        self.ended = reason
        self.end_message = message

    def call_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def knowledge(self, count_tokens):
        return self.knowledge_source

    def types(self) -> list[str]:
        return [e["type"] + (f":{e['role']}" if "role" in e else "") for _, e in self.events]

    async def wait_for(self, predicate, timeout: float = 30) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.events:
                if predicate(event):
                    return at, event
            await asyncio.sleep(0.01)
        raise TimeoutError(self.types())


class Call:
    """A pipeline, its track and a task that pulls frames from the track like aiortc's sender."""

    def __init__(self, greeting: str = "", **spec_fields) -> None:
        self.events = RecordedEvents()
        self.track = AgentAudioTrack(
            on_playback_start=lambda: self.pipeline.on_playback_start(),
            on_playback_end=lambda: self.pipeline.on_playback_end(),
        )
        spec = CallSpec(
            session_id="session_test",
            agent_id="agent_test",
            greeting=greeting,
            system_prompt="You are the assistant of a bakery that opens at 8 am and closes at 6 pm.",
            llm_max_tokens=60,
            context={"user_name": "Jane"},
            **spec_fields,
        )
        self.pipeline = ConversationPipeline(spec, self.track, self.events)
        self.sent_voiced: list[float] = []
        self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while True:
            frame = await self.track.recv()
            if np.abs(frame.to_ndarray()).max() > 500:
                self.sent_voiced.append(time.monotonic())

    async def say(
        self, pcm: np.ndarray, *, real_time: bool = True, then_silence: float = 1.0
    ) -> float:
        """Push speech (then ``then_silence`` seconds of silence) in 20 ms frames; returns when
        the speech began."""
        began = time.monotonic()
        audio = np.concatenate([pcm, np.zeros(int(16000 * then_silence), dtype=np.int16)])
        for i in range(0, audio.size, FRAME):
            self.pipeline.push_audio(audio[i : i + FRAME])
            if real_time:
                await asyncio.sleep(0.02)
        return began

    async def silence(self, seconds: float) -> None:
        for _ in range(int(seconds * 50)):
            self.pipeline.push_audio(np.zeros(FRAME, dtype=np.int16))
            await asyncio.sleep(0.02)

    async def stop_sending(self) -> None:
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)

    async def close(self) -> None:
        await self.pipeline.close()
        self.track.stop()
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)


async def test_a_spoken_question_gets_a_spoken_answer_with_events_in_order(speech):
    call = Call()
    try:
        await call.say(speech("What time do you open in the morning?"))
        _, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        assert "open" in user["text"].lower()
        _, agent = await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript"
        )
        assert agent["text"].strip()
        await call.events.wait_for(lambda e: e["type"] == "agent_listening")

        order = call.events.types()
        assert (
            order.index("transcript:user")
            < order.index("agent_speaking")
            < order.index("agent_listening")
        )
        assert len(call.sent_voiced) >= 5  # audible reply frames (20 ms each), not silence
        user_turn, agent_turn = call.events.turns[0], call.events.turns[1]
        assert (user_turn["role"], agent_turn["role"]) == ("user", "agent")
        assert agent_turn["latency_ms"] > 0
        timing = call.pipeline.stats()["turn_timings"][0]
        assert {"end_of_turn_wait_ms", "stt_ms", "llm_first_token_ms", "tts_first_chunk_ms"} <= set(
            timing
        )
    finally:
        await call.close()


async def test_speech_over_the_agent_stops_its_audio_within_200_ms(speech):
    call = Call(
        greeting="Hello and welcome to the bakery. We have fresh bread, cakes and pastries every day, "
        "and today we have a special offer on croissants and apple pies for all our customers."
    )
    try:
        await call.pipeline.start()
        await call.events.wait_for(lambda e: e["type"] == "agent_speaking")
        await call.stop_sending()
        # From here the test is the clock: one caller frame in, one agent frame out, 20 ms of
        # audio each, so the measure is in audio time and a busy machine cannot skew it.
        for _ in range(50):  # one second of the greeting, heard in silence
            call.pipeline.push_audio(np.zeros(FRAME, dtype=np.int16))
            await call.track.recv()
        question = speech("Sorry, do you have gluten free bread?")
        onset = int(np.argmax(np.abs(question) > 1000)) // FRAME
        agent_frames_after_onset = 0
        for index in range(0, question.size // FRAME):
            call.pipeline.push_audio(question[index * FRAME : (index + 1) * FRAME])
            frame = await call.track.recv()
            if index >= onset and np.abs(frame.to_ndarray()).max() > 500:
                agent_frames_after_onset += 1
        print(f"agent audio after speech onset: {agent_frames_after_onset * 20} ms")
        assert 0 < agent_frames_after_onset * 20 <= 200
        heard = call.events.turns[0]
        assert heard["role"] == "agent" and heard["text"]
        assert len(heard["text"]) < len(call.pipeline.spec.greeting)  # only what was played
    finally:
        await call.close()


async def test_noise_bursts_do_not_interrupt_the_agent():
    call = Call(
        greeting="Hello and welcome to the bakery. We have fresh bread, cakes and pastries every day."
    )
    try:
        await call.pipeline.start()
        await call.events.wait_for(lambda e: e["type"] == "agent_speaking")
        rng = np.random.default_rng(3)
        for _ in range(5):  # 60 ms clicks of loud noise, 300 ms apart
            burst = rng.normal(0, 6000, 960).astype(np.int16)
            for i in range(0, burst.size, FRAME):
                call.pipeline.push_audio(burst[i : i + FRAME])
                await asyncio.sleep(0.02)
            await call.silence(0.3)
        await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript", timeout=20
        )
        # The whole greeting was played and recorded: nothing cut it short.
        assert call.events.turns[0]["text"] == call.pipeline.spec.greeting
        assert "agent_listening" in call.events.types()
    finally:
        await call.close()


async def test_the_agent_hangs_up_after_goodbye(speech):
    call = Call()
    try:
        await call.say(speech("Thank you, that is all. Goodbye!"))
        await call.silence(1.5)  # Smart Turn may wait out its maximum (1.8 s) on a TTS voice
        deadline = time.monotonic() + 30
        while call.events.ended is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert call.events.ended == "agent_hangup"
        agent_lines = [t["text"] for t in call.events.turns if t["role"] == "agent"]
        assert agent_lines and "goodbye" in agent_lines[-1].lower()
    finally:
        await call.close()


class CountingStt:
    def __init__(self, stt) -> None:
        self.stt = stt
        self.inputs: list[int] = []

    def transcribe(self, pcm, language="en"):
        self.inputs.append(pcm.size)
        return self.stt.transcribe(pcm, language)


async def test_the_turn_reuses_its_speculative_transcription(speech, settings):
    settings.STT_PARTIAL_EVERY_MS = 0  # partial transcripts while speaking would count too
    call = Call()
    call.pipeline.stt = counting = CountingStt(call.pipeline.stt)
    try:
        await call.say(speech("What time do you open in the morning?"), real_time=False)
        await call.events.wait_for(lambda e: e.get("role") == "user" and e["type"] == "transcript")
        assert len(counting.inputs) == 1  # transcribed once, during the silence, not again
    finally:
        await call.close()


async def test_a_pause_mid_sentence_discards_the_guess_and_keeps_both_halves(speech, settings):
    settings.STT_PARTIAL_EVERY_MS = 0  # partial transcripts while speaking would count too
    call = Call(turn_detection="silence")
    call.pipeline.stt = counting = CountingStt(call.pipeline.stt)
    try:
        first, second = speech("I would like to order"), speech("a chocolate cake for Saturday.")
        pause = np.zeros(
            int(16000 * 0.4), dtype=np.int16
        )  # longer than the guess, shorter than a turn
        await call.say(np.concatenate([first, pause, second]), real_time=False)
        _, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        assert "order" in user["text"].lower() and "cake" in user["text"].lower()
        assert len(counting.inputs) == 2 and counting.inputs[1] > counting.inputs[0]
    finally:
        await call.close()


async def test_the_guess_is_shown_as_a_partial_before_the_final_text(speech, settings):
    settings.STT_PARTIAL_EVERY_MS = 0  # the partials while speaking would come before the guess
    # A slow end of turn by silence, so the guess lands first.
    call = Call(turn_detection="silence", turn_silence_ms=1500)
    try:
        question = speech("Do you bake sourdough bread?")
        for i in range(0, question.size, FRAME):
            call.pipeline.push_audio(question[i : i + FRAME])
        await call.silence(2.0)
        user = [e for _, e in call.events.events if e.get("role") == "user"]
        assert [e["type"] for e in user] == ["transcript_partial", "transcript"]
        assert user[0]["text"] == user[1]["text"] and "bread" in user[1]["text"].lower()
        assert user[0]["utterance_id"] == user[1]["utterance_id"]
    finally:
        await call.close()


async def test_hanging_up_mid_reply_keeps_what_the_caller_heard():
    call = Call(
        greeting="Hello and welcome to the bakery. We have fresh bread, cakes and pastries every day, "
        "and today we have a special offer on croissants and apple pies for all our customers."
    )
    try:
        await call.pipeline.start()
        await call.events.wait_for(lambda e: e["type"] == "agent_speaking")
        await asyncio.sleep(1.5)
    finally:
        await call.close()
    assert [turn["role"] for turn in call.events.turns] == ["agent"]
    heard = call.events.turns[0]["text"]
    assert heard.startswith("Hello")
    assert len(heard) < len(call.pipeline.spec.greeting)


def user_finals(call: Call) -> list[str]:
    return [
        e["text"]
        for _, e in call.events.events
        if e.get("role") == "user" and e["type"] == "transcript"
    ]


async def test_the_agents_end_of_turn_silence_decides_whether_a_pause_ends_the_turn(speech):
    first, second = speech("I would like to order"), speech("a chocolate cake for Saturday.")
    # Long enough for the first half's text to be out before the second half starts (speech
    # over a reply still waiting for its transcription drops that reply with its text).
    pause = np.zeros(int(16000 * 1.2), dtype=np.int16)
    audio = np.concatenate([first, pause, second])

    impatient = Call(turn_detection="silence", turn_silence_ms=300)
    try:
        await impatient.say(audio)
        await impatient.events.wait_for(lambda e: len(user_finals(impatient)) == 2)
        assert "order" in user_finals(impatient)[0] and "cake" not in user_finals(impatient)[0]
    finally:
        await impatient.close()

    patient = Call(turn_detection="silence", turn_silence_ms=1500)
    try:
        await patient.say(audio)
        await patient.silence(1.0)
        _, user = await patient.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        assert "order" in user["text"] and "cake" in user["text"]
        await patient.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript"
        )
        assert patient.pipeline.stats()["turn_timings"][0]["end_of_turn_wait_ms"] >= 1500
    finally:
        await patient.close()


@pytest.fixture(scope="module")
def pause_mid_sentence():
    """ "I wanted to ask about", a second's pause, "the price of your wedding cakes.": one
    recording, cut where the caller pauses, so the first half does not sound finished."""
    whole = steady_speech("I wanted to ask about the price of your wedding cakes.")
    first = cut_after(whole, "about")
    return np.concatenate([first, np.zeros(16000, dtype=np.int16), whole[first.size :]])


async def test_smart_turn_waits_out_a_pause_mid_sentence(pause_mid_sentence):
    call = Call(turn_detection="smart_turn")
    try:
        await call.say(pause_mid_sentence)
        # On synthetic speech Smart Turn may doubt the real end too: then the turn ends at the
        # maximum wait (3 x 600 ms), so the caller's silence has to last that long.
        await call.silence(1.5)
        _, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        assert "ask" in user["text"].lower() and "price" in user["text"].lower()
        assert len(user_finals(call)) == 1
    finally:
        await call.close()


async def test_without_smart_turn_the_same_pause_ends_the_turn(pause_mid_sentence):
    call = Call(turn_detection="silence")
    try:
        await call.say(pause_mid_sentence)
        _, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        assert "ask" in user["text"].lower() and "price" not in user["text"].lower()
    finally:
        await call.close()


class NeverDone:
    """A turn detector that always hears an unfinished sentence."""

    def complete_probability(self, pcm16k) -> float:
        return 0.0


async def test_smart_turn_holds_a_turn_open_no_longer_than_its_maximum(speech, settings):
    settings.SMART_TURN_MAX_WAIT_FACTOR = 2.0
    call = Call(turn_detection="smart_turn", turn_silence_ms=500)
    call.pipeline.turn_detector = NeverDone()
    try:
        await call.say(speech("What time do you open in the morning?"))
        await call.silence(0.5)
        await call.events.wait_for(lambda e: e.get("role") == "agent" and e["type"] == "transcript")
        waited = call.pipeline.stats()["turn_timings"][0]["end_of_turn_wait_ms"]
        assert 1000 <= waited < 1100  # 2 x 500 ms, in 32 ms VAD windows
    finally:
        await call.close()


async def test_vosk_shows_what_the_caller_says_while_they_speak():
    call = Call(stt_engine="vosk", language="ko")
    try:
        pcm, rate = registry.tts_get("espeak").synthesize(
            "안녕하세요 내일 저녁에 식당을 예약하고 싶습니다", voice="ko"
        )
        speech_ends = await call.say(resample(pcm, rate, 16000)) + pcm.size / rate
        final_at, final = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        partials = [
            (at, e["text"])
            for at, e in call.events.events
            if e.get("role") == "user" and e["type"] == "transcript_partial"
        ]
        assert partials and all(text.strip() for _, text in partials)
        assert partials[0][0] < speech_ends < final_at  # shown while the caller still spoke
        assert re.search("[\uac00-\ud7a3]", final["text"])
    finally:
        await call.close()


class Deaf:
    """STT that hears no words: what a cough or a door sounds like to it."""

    def transcribe(self, pcm, language="en"):
        return ""


async def test_a_noise_that_cuts_the_agent_off_lets_it_finish_what_it_was_saying(speech):
    greeting = (
        "Hello and welcome to the bakery. We have fresh bread, cakes and pastries every day, "
        "and today we have a special offer on croissants and apple pies for all our customers."
    )
    # By silence: Smart Turn would rightly wait out a "Hmm, ah." as unfinished.
    call = Call(greeting=greeting, turn_detection="silence")
    call.pipeline.stt = Deaf()
    try:
        await call.pipeline.start()
        await call.events.wait_for(lambda e: e["type"] == "agent_speaking")
        await call.silence(1.5)
        await call.say(speech("Hmm, ah."))  # speech to the VAD, no words to the STT
        await call.events.wait_for(lambda e: len(call.events.turns) == 2, timeout=30)
        heard, resumed = (turn["text"] for turn in call.events.turns)
        assert heard and resumed and heard != greeting
        assert resumed.endswith("for all our customers.")
        assert f"{heard} {resumed}".split() == greeting.split()
        assert not any(e.get("role") == "user" for _, e in call.events.events)
    finally:
        await call.close()


class SlowStt:
    """The real engine behind a delay: a busy machine, where transcription lags the caller."""

    def __init__(self, engine, delay: float) -> None:
        self.engine, self.delay = engine, delay

    def transcribe(self, pcm16k, language: str = "en") -> str:
        time.sleep(self.delay)
        return self.engine.transcribe(pcm16k, language)


async def test_words_spoken_before_the_last_turn_was_transcribed_are_kept_in_one_turn(speech):
    call = Call(turn_silence_ms=400)
    call.pipeline.stt = SlowStt(call.pipeline.stt, delay=1.5)
    try:
        # Speech, then a pause that ends the turn (400 ms), then more words while the first
        # part is still being transcribed.
        await call.say(speech("I would like to order a cake."), then_silence=0.6)
        await call.say(speech("For Saturday morning, please."))
        _, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript", timeout=40
        )
        await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript", timeout=40
        )
    finally:
        await call.close()
    text = user["text"].lower()
    assert "cake" in text and "saturday" in text, text
    user_turns = [t for t in call.events.turns if t["role"] == "user"]
    assert len(user_turns) == 1 and user_turns[0]["text"] == user["text"]


class RecordingLlm:
    """The real LLM, noting each reply it writes and the last user message it answered."""

    def __init__(self, llm) -> None:
        self.llm = llm
        self.replies: list[tuple[str, str]] = []  # (user message, reply so far)

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def stream_reply(self, messages, **kwargs):
        user = [m["content"] for m in messages if m["role"] == "user"][-1]
        index = len(self.replies)
        self.replies.append((user, ""))
        for piece in self.llm.stream_reply(messages, **kwargs):
            self.replies[index] = (user, self.replies[index][1] + piece)
            yield piece


def assert_one_reply_heard_after(call: Call, user_at: float) -> None:
    """Nothing of the agent was heard or shown before the caller's final transcript, and the
    call's history holds that one turn and its one reply."""
    assert call.sent_voiced and call.sent_voiced[0] > user_at
    before_user = [e for at, e in call.events.events if at < user_at]
    assert not any(e.get("role") == "agent" or e["type"] == "agent_speaking" for e in before_user)
    assert [m["role"] for m in call.pipeline.history] == ["user", "assistant"]


async def test_the_reply_is_prepared_during_the_end_of_turn_silence(speech):
    # A long end-of-turn silence: the speculative transcript, the LLM's first clause and its
    # audio are all ready well before the turn ends.
    call = Call(turn_detection="silence", turn_silence_ms=2500)
    call.pipeline.llm = RecordingLlm(call.pipeline.llm)
    try:
        await call.say(speech("What time do you open in the morning?"))
        await call.silence(2.0)
        user_at, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript"
        )
        _, agent = await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript"
        )
    finally:
        await call.close()
    assert "open" in user["text"].lower()
    timing = call.pipeline.turn_timings[-1]
    assert timing["prepared"] is True
    assert timing["llm_first_token_ms"] == 0  # nothing left to wait for at the end of turn
    # Written once, for this turn, and heard only after the turn ended.
    assert [user for user, _ in call.pipeline.llm.replies] == [user["text"]]
    assert_one_reply_heard_after(call, user_at)
    assert call.pipeline.history[1]["content"] == agent["text"]


class BakeryFacts:
    """A knowledge base of one fact, noting what it was searched for and when."""

    def __init__(self) -> None:
        self.searched: list[tuple[float, str]] = []

    def search(self, text: str) -> list[Fact]:
        self.searched.append((time.monotonic(), text))
        return [
            Fact(
                text="Opening hours: We open at 7 am every day.",
                document_id="doc_hours",
                document_title="Hours",
                chunk_id=7,
            )
        ]


async def test_a_prepared_reply_is_grounded_and_its_turn_keeps_its_sources(speech):
    # Retrieval runs on the speculative transcript, in the end-of-turn silence: nothing of it
    # is left to do once the turn ends, and the reply that plays was given the facts.
    call = Call(turn_detection="silence", turn_silence_ms=2500)
    facts = BakeryFacts()
    call.events.knowledge_source = facts
    try:
        await call.pipeline.start()  # as a call does: the knowledge loads here
        # A caller speaks after the greeting, by when the knowledge is in: Whisper's guess
        # (about 120 ms) would otherwise come before it, and a guess without it is not prepared.
        await asyncio.wait_for(asyncio.shield(call.pipeline._knowledge), 30)
        await call.say(speech("What time do you open in the morning?"))
        await call.silence(2.0)
        user_at, _ = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript" and e.get("final")
        )
        await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript" and e.get("final")
        )
    finally:
        await call.close()
    assert call.pipeline.turn_timings[-1]["prepared"] is True
    # Searched with the pause's guess before the turn ended (partial transcripts, while the
    # caller spoke, search with the words so far too: VOICE_PREFILL_WORDS).
    assert any(at < user_at and "open" in text.lower() for at, text in facts.searched)
    agent_turn = next(t for t in call.events.turns if t["role"] == "agent" and t.get("text"))
    assert agent_turn["sources"] == [{"document_id": "doc_hours", "title": "Hours", "chunk_id": 7}]


async def test_a_prepared_reply_is_dropped_unheard_when_the_caller_goes_on(speech):
    call = Call(turn_detection="silence", turn_silence_ms=2500)
    call.pipeline.llm = RecordingLlm(call.pipeline.llm)
    try:
        # A pause long enough for a reply to this half to be prepared, short of the turn's end.
        await call.say(speech("I would like to order a cake."), then_silence=1.5)
        assert call.pipeline.llm.replies, "no reply was prepared during the pause"
        await call.say(speech("For Saturday morning, please."))
        await call.silence(2.0)
        user_at, user = await call.events.wait_for(
            lambda e: e.get("role") == "user" and e["type"] == "transcript", timeout=40
        )
        _, agent = await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript", timeout=40
        )
    finally:
        await call.close()
    text = user["text"].lower()
    assert "cake" in text and "saturday" in text, text
    # The half-turn's reply was never heard, shown or kept; the one heard answers the whole turn.
    assert "saturday" not in call.pipeline.llm.replies[0][0].lower()
    answered = [reply for asked, reply in call.pipeline.llm.replies if asked == user["text"]]
    assert answered and agent["text"].split()[0] in answered[-1]
    assert_one_reply_heard_after(call, user_at)


def evaluated_text(llm) -> str:
    """What the llama.cpp context holds evaluated now (its prompt cache)."""
    model = llm.llm
    return model.detokenize(model.input_ids[: model.n_tokens].tolist()).decode(errors="replace")


def agent_finals(call: Call) -> list[str]:
    return [
        e["text"]
        for _, e in call.events.events
        if e.get("role") == "agent" and e["type"] == "transcript" and e.get("final")
    ]


async def test_the_prompt_and_greeting_are_evaluated_before_the_caller_speaks(speech):
    # The first reply then starts after them (llama.cpp's prefix reuse) instead of evaluating
    # the whole prompt once the turn has ended.
    call = Call(greeting="Hello, this is the bakery. How can I help?")
    llm = call.pipeline.writer.llm
    llm.llm.reset()
    try:
        await call.pipeline.start()
        await asyncio.wait_for(asyncio.shield(call.pipeline._knowledge), 30)
        held = evaluated_text(llm)
        assert "assistant of a bakery that opens at 8 am" in held
        assert "Hello, this is the bakery. How can I help?" in held
        await call.say(speech("What time do you open in the morning?"))
        await call.events.wait_for(lambda e: len(agent_finals(call)) == 2)  # greeting, reply
    finally:
        await call.close()
    # The reply's prompt began with what was evaluated ahead: the held text is still its start.
    assert evaluated_text(llm).startswith(held.rsplit("Hello, this is the bakery.", 1)[0])


async def test_a_prefill_that_fails_costs_the_call_nothing(speech, monkeypatch, caplog):
    call = Call()
    llm = call.pipeline.writer.llm

    def broken(messages):
        raise RuntimeError("prefill broke")

    monkeypatch.setattr(llm, "prefill", broken)
    try:
        await call.pipeline.start()
        await call.say(speech("What time do you open in the morning?"))
        _, agent = await call.events.wait_for(
            lambda e: e.get("role") == "agent" and e["type"] == "transcript" and e.get("final")
        )
    finally:
        await call.close()
    assert agent["text"].strip() and call.events.ended is None
    assert any("evaluating the prompt ahead failed" in r.getMessage() for r in caplog.records)


class FailingLlm:
    """An LLM that breaks mid-call (a model file gone bad, out of memory): raises on use."""

    context_tokens = 2048

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_reply(self, messages, **kwargs):
        raise RuntimeError("llama_decode returned -1")
        yield  # a generator, as the real one

    def prefill(self, messages, **kwargs):
        pass


async def test_a_failing_llm_is_apologized_for_and_ends_the_call_with_the_error(
    speech, monkeypatch, caplog
):
    monkeypatch.setattr(registry, "llm_get", lambda name="": FailingLlm())
    call = Call(turn_detection="silence")
    try:
        await call.say(speech("What time do you open on Saturday?"))
        deadline = time.monotonic() + 30
        while call.events.ended is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert call.events.ended == "error"
        assert "llama_decode returned -1" in call.events.end_message
        # The caller heard the apology (real Piper audio through the track) before the end.
        assert call.sent_voiced, "nothing was played"
        assert any(
            "session_test" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records
        )
    finally:
        await call.close()
