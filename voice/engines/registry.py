"""Engine choice is data: names from settings and the agent's config are looked up in the stage's
table (STT_ENGINES, TTS_ENGINES, LLM_ENGINES, TURN_DETECTORS), and each model is loaded once per
process and shared by its calls. The registry names no engine."""

from __future__ import annotations

import threading
from functools import cache
from typing import TypeVar

from voice.engines import defaults
from voice.engines.llm import LLM_ENGINES, ChatModel
from voice.engines.models import ModelUnavailable
from voice.engines.stt import STT_ENGINES, SpeechToText
from voice.engines.tts import TTS_ENGINES, TextToSpeech
from voice.engines.turn import TURN_DETECTORS, TurnDetector
from voice.engines.vad import SileroModel, SileroVad

# One load at a time: two calls asking for the same model at once must not load it twice.
_load_lock = threading.Lock()

Engine = TypeVar("Engine")


def _engine(table: dict[str, Engine], name: str, what: str) -> Engine:
    if name not in table:
        raise ModelUnavailable(f"{what} '{name}' is not available in this build.")
    return table[name]


@cache
def _silero() -> SileroModel:
    return SileroModel.from_setting()


def vad_create() -> SileroVad:
    """Per call (it has state)."""
    with _load_lock:
        return SileroVad(_silero())


@cache
def _turn_detector(kind: str) -> TurnDetector:
    detector = TURN_DETECTORS[kind]
    assert detector is not None
    return detector.from_setting()


def turn_detector_get(kind: str) -> TurnDetector | None:
    """The model that judges whether a pause ends the turn; None: silence alone decides."""
    kind = kind or defaults.TURN_DETECTION
    if _engine(TURN_DETECTORS, kind, "Turn detection") is None:
        return None
    with _load_lock:
        return _turn_detector(kind)


@cache
def _stt(engine: str, model_path: str) -> SpeechToText:
    return _engine(STT_ENGINES, engine, "Speech-to-text engine").from_setting(model_path)


def stt_get(engine: str, model_path: str = "") -> SpeechToText:
    """``model_path``: the agent's model directory; empty = the engine's setting or package."""
    with _load_lock:
        return _stt(engine or defaults.STT_ENGINE, model_path)


@cache
def _tts(engine: str, voice: str) -> TextToSpeech:
    return TTS_ENGINES[engine].from_setting(voice)


def tts_get(engine: str, voice: str = "") -> TextToSpeech:
    """``voice``: the agent's voice; empty = the engine's default. An engine whose voices are
    passed per call (espeak's language codes) is loaded once for all of them."""
    engine = engine or defaults.TTS_ENGINE
    cls = _engine(TTS_ENGINES, engine, "Text-to-speech engine")
    with _load_lock:
        return _tts(engine, voice if cls.voice_is_model else "")


@cache
def _llm(engine: str, path: str) -> ChatModel:
    return LLM_ENGINES[engine].from_path(path)


def llm_get(name: str = "") -> ChatModel:
    """``name``: the agent's model, a packaged name or a model file; empty = the server setting.
    Cached per file, so a name and its path share one loaded model."""
    engine = LLM_ENGINES[defaults.LLM_ENGINE]
    with _load_lock:
        return _llm(defaults.LLM_ENGINE, str(engine.resolve(name)))
