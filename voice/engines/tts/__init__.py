"""Text-to-speech engines: the one table from an agent's ``tts_engine`` to its engine class.

Adding an engine: a module here with its class (see base.TtsEngine), a line below, and its
choice in agents.models.Agent.TtsEngine (voice.checks says at start-up when the two disagree).
"""

from __future__ import annotations

from voice.engines.tts.base import TextToSpeech, TtsEngine
from voice.engines.tts.coqui import CoquiTts
from voice.engines.tts.espeak import EspeakTts
from voice.engines.tts.piper import PiperTts

TTS_ENGINES: dict[str, type[TtsEngine]] = {
    "piper": PiperTts,
    "espeak": EspeakTts,
    "coqui": CoquiTts,
}

# EspeakTts by name too: the greeting pipeline speaks with it directly (no model to wait for).
__all__ = ["TTS_ENGINES", "EspeakTts", "TextToSpeech", "TtsEngine"]
