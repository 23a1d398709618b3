"""Speech-to-text engines: the one table from an agent's ``stt_engine`` to its engine class.

Adding an engine: a module here with its class (see base.SttEngine), a line below, and its
choice in agents.models.Agent.SttEngine (voice.checks says at start-up when the two disagree).
"""

from __future__ import annotations

from voice.engines.stt.base import SpeechToText, StreamingSpeechToText, SttEngine, SttStream
from voice.engines.stt.vosk import VoskStt
from voice.engines.stt.whisper import WhisperStt

STT_ENGINES: dict[str, type[SttEngine]] = {
    "whisper": WhisperStt,
    "vosk": VoskStt,
}

__all__ = ["STT_ENGINES", "SpeechToText", "StreamingSpeechToText", "SttEngine", "SttStream"]
