"""The real models on real audio."""

from __future__ import annotations

import numpy as np
import pytest

from voice.engines import models, registry
from voice.engines.vad import WINDOW


def windows(pcm: np.ndarray):
    for i in range(0, pcm.size - WINDOW + 1, WINDOW):
        yield pcm[i : i + WINDOW]


def test_silero_hears_speech_and_not_silence_or_hiss(speak):
    vad = registry.vad_create()
    speech = [
        vad.probability(w) for w in windows(speak("Hello, I would like to book a table for two."))
    ]
    assert max(speech) > 0.9 and np.mean(np.array(speech) > 0.5) > 0.5

    vad = registry.vad_create()
    hiss = np.random.default_rng(0).normal(0, 300, 16000 * 2).astype(np.int16)
    quiet = [vad.probability(w) for w in windows(np.concatenate([np.zeros(16000, np.int16), hiss]))]
    assert max(quiet) < 0.5


def test_whisper_transcribes_a_spoken_question(speak):
    text = registry.stt_get("whisper").transcribe(speak("What are your opening hours on Saturday?"))
    assert "opening" in text.lower() and "saturday" in text.lower()


def test_whisper_returns_nothing_much_for_silence():
    text = registry.stt_get("whisper").transcribe(np.zeros(16000, dtype=np.int16))
    assert len(text.split()) <= 2


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_tts_engines_speak_at_the_requested_speed(engine):
    tts = registry.tts_get(engine)
    normal, rate = tts.synthesize("We are open from nine in the morning until five.")
    fast, fast_rate = tts.synthesize("We are open from nine in the morning until five.", speed=1.5)
    seconds = normal.size / rate
    assert 1.5 < seconds < 6
    assert np.sqrt(np.mean(normal.astype(np.float64) ** 2)) > 300
    assert fast.size / fast_rate < seconds * 0.85


def test_a_missing_vosk_model_says_where_to_get_one(settings, tmp_path):
    settings.VOSK_MODEL_PATH = str(tmp_path / "nope")
    with pytest.raises(models.ModelUnavailable, match=r"alphacephei\.com/vosk/models"):
        models.vosk_model_dir()


def test_a_missing_llm_path_is_a_clear_error(settings, tmp_path):
    settings.LLM_MODEL_PATH = str(tmp_path / "model.gguf")
    with pytest.raises(models.ModelUnavailable, match="LLM_MODEL_PATH"):
        models.llm_model_path()
