"""Whisper (faster-whisper) on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from voice.engines import registry
from voice.engines.models import ModelUnavailable
from voice.engines.stt.whisper import WhisperStt


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
