"""Engine choice is data: names from settings and the agent's config resolve here, and each model
is loaded once per process and shared by its calls."""

from __future__ import annotations

import threading
from functools import cache

from django.conf import settings

from voice.engines import models
from voice.engines.llm import LlamaChat
from voice.engines.stt import SpeechToText, VoskStt, WhisperStt
from voice.engines.tts import CoquiTts, EspeakTts, PiperTts, TextToSpeech
from voice.engines.turn import SmartTurn, TurnDetector
from voice.engines.vad import SileroModel, SileroVad

_load_lock = threading.Lock()


@cache
def _silero() -> SileroModel:
    return SileroModel(str(models.silero_vad_path()))


def vad_create() -> SileroVad:
    """Per call (it has state)."""
    with _load_lock:
        return SileroVad(_silero())


@cache
def _smart_turn() -> SmartTurn:
    return SmartTurn(
        str(models.smart_turn_model_path()),
        str(models.smart_turn_dir() / "_whisper_features.py"),
    )


def turn_detector_get(kind: str) -> TurnDetector | None:
    """The model that judges whether a pause ends the turn; None: silence alone decides."""
    if kind in ("", "silence"):
        return None
    if kind == "smart_turn":
        with _load_lock:
            return _smart_turn()
    raise models.ModelUnavailable(f"Turn detection '{kind}' is not available in this build.")


@cache
def _stt(engine: str, model_path: str) -> SpeechToText:
    if engine == "whisper":
        return WhisperStt(
            str(models.whisper_model_dir(model_path)), threads=settings.VOICE_INFERENCE_THREADS
        )
    if engine == "vosk":
        return VoskStt(str(models.vosk_model_dir(model_path)))
    raise models.ModelUnavailable(
        f"Speech-to-text engine '{engine}' is not available in this build."
    )


def stt_get(engine: str, model_path: str = "") -> SpeechToText:
    """``model_path``: the agent's model directory; empty = the engine's setting or package."""
    with _load_lock:
        return _stt(engine or "whisper", model_path)


@cache
def _tts(engine: str, voice: str) -> TextToSpeech:
    if engine == "piper":
        return PiperTts(str(models.piper_voice_path(voice)))
    if engine == "espeak":
        return EspeakTts()
    if engine == "coqui":
        checkpoint, config = models.coqui_model_paths(voice)
        return CoquiTts(str(checkpoint), str(config))
    raise models.ModelUnavailable(
        f"Text-to-speech engine '{engine}' is not available in this build."
    )


def tts_get(engine: str, voice: str = "") -> TextToSpeech:
    # Piper and Coqui voices are model files, espeak voices are language codes passed per call.
    with _load_lock:
        return _tts(engine or "piper", voice if engine in ("piper", "coqui") else "")


@cache
def _llm(path: str) -> LlamaChat:
    return LlamaChat(path, context_tokens=settings.LLM_CONTEXT_TOKENS, threads=settings.LLM_THREADS)


def llm_get(name: str = "") -> LlamaChat:
    """``name``: the agent's model, a packaged name or a GGUF path; empty = the server setting."""
    with _load_lock:
        return _llm(str(models.llm_model_path(name)))
