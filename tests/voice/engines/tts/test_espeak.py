"""eSpeak NG: its voices are language codes passed per call, checked against what it speaks."""

from __future__ import annotations

from voice.engines import registry
from voice.engines.tts.espeak import EspeakTts, espeak_voices


def test_espeak_knows_language_codes():
    assert {"en", "de", "ko"} <= espeak_voices()
    assert EspeakTts.settings_error("de") == ""
    assert "espeak-ng --voices" in EspeakTts.settings_error("klingon")


def test_one_espeak_serves_every_voice():
    # Its voices are passed to each synthesize(), not loaded: no instance per language.
    assert registry.tts_get("espeak", "de") is registry.tts_get("espeak", "ko")
