"""Whisper (faster-whisper) on real speech."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.voice.engines.speech import steady_speech
from voice.engines import registry
from voice.engines.models import ModelUnavailable
from voice.engines.stt.whisper import SHORT_WINDOW_SECONDS, WhisperStt

QUESTIONS = [
    "What time do you open on Monday?",
    "Do you sell gluten free bread?",
    "Can I bring my dog inside the shop?",
    "Where can I park near the bakery?",
]


def test_whisper_transcribes_a_spoken_question(speak):
    text = registry.stt_get("whisper").transcribe(speak("What are your opening hours on Saturday?"))
    assert "opening" in text.lower() and "saturday" in text.lower()


def test_whisper_returns_nothing_much_for_silence():
    text = registry.stt_get("whisper").transcribe(np.zeros(16000, dtype=np.int16))
    assert len(text.split()) <= 2


def test_a_missing_whisper_model_names_the_setting(tmp_path):
    with pytest.raises(ModelUnavailable, match="WHISPER_MODEL_PATH"):
        WhisperStt.resolve(str(tmp_path / "small.en"))
    assert "WHISPER_MODEL_PATH" in WhisperStt.settings_error(str(tmp_path / "small.en"))
    assert WhisperStt.settings_error("") == ""  # the packaged tiny.en


def test_a_turn_in_the_short_window_reads_as_in_whisper_s_own_window():
    whisper = registry.stt_get("whisper")
    short = [words(whisper.transcribe(steady_speech(q))) for q in QUESTIONS]
    padded = [words(whisper.transcribe_padded(steady_speech(q))) for q in QUESTIONS]
    print(f"short window: {short}\n30 s window: {padded}")
    assert sum(s == p for s, p in zip(short, padded, strict=True)) >= 3
    assert sum(s == words(q) for s, q in zip(short, QUESTIONS, strict=True)) >= 3


def test_a_transcript_that_loops_in_the_short_window_is_done_again_in_the_full_one(monkeypatch):
    whisper = registry.stt_get("whisper")
    audio = steady_speech(QUESTIONS[0])
    monkeypatch.setattr(
        whisper, "_transcribe_short", lambda *_: ("What time do you open? " * 12, 1.5)
    )
    assert words(whisper.transcribe(audio)) == words(whisper.transcribe_padded(audio))


def test_a_turn_too_long_for_the_short_window_goes_to_the_full_one(monkeypatch):
    whisper = registry.stt_get("whisper")
    audio = steady_speech(QUESTIONS[1])
    pause = np.zeros(16000 * (SHORT_WINDOW_SECONDS - 1), dtype=np.int16)
    monkeypatch.setattr(whisper, "_transcribe_short", pytest.fail)
    assert "bread" in whisper.transcribe(np.concatenate([pause, audio])).lower()


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z']+", text.lower().replace("-", " ")))


def test_a_transcript_that_stops_before_the_speech_does_is_done_again_in_the_full_one(
    monkeypatch,
):
    # In the short window the decoder sometimes ends after the first sentence when a long
    # pause follows it; its timestamps then end well before the audio's last loud frame.
    whisper = registry.stt_get("whisper")
    first = steady_speech("I would like to order a cake.")
    audio = np.concatenate(
        [first, np.zeros(24000, dtype=np.int16), steady_speech("For Saturday morning, please.")]
    )
    heard_first = (words(whisper.transcribe(first)), first.size / 16000)
    monkeypatch.setattr(whisper, "_transcribe_short", lambda *_: heard_first)
    assert "saturday" in words(whisper.transcribe(audio))
    # The same words, heard to the end of the audio, stand.
    monkeypatch.setattr(
        whisper, "_transcribe_short", lambda *_: (heard_first[0], audio.size / 16000)
    )
    assert "saturday" not in words(whisper.transcribe(audio))
