"""Engine choice is data: names from settings and the agent's config resolve here, and each model
is loaded once per process and shared by its calls."""

from __future__ import annotations

import threading
from functools import cache

from django.conf import settings

from voice.engines import models
from voice.engines.llm import LlamaChat
from voice.engines.stt import SpeechToText, WhisperStt
from voice.engines.tts import EspeakTts, PiperTts, TextToSpeech
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
def _stt(engine: str) -> SpeechToText:
    if engine == "whisper":
        return WhisperStt(str(models.whisper_model_dir()), threads=settings.VOICE_INFERENCE_THREADS)
    raise models.ModelUnavailable(
        f"Speech-to-text engine '{engine}' is not available in this build."
    )


def stt_get(engine: str) -> SpeechToText:
    with _load_lock:
        return _stt(engine or "whisper")


@cache
def _tts(engine: str, voice: str) -> TextToSpeech:
    if engine == "piper":
        return PiperTts(str(models.piper_voice_path(voice)))
    if engine == "espeak":
        return EspeakTts()
    raise models.ModelUnavailable(
        f"Text-to-speech engine '{engine}' is not available in this build."
    )


def tts_get(engine: str, voice: str = "") -> TextToSpeech:
    # Piper voices are files, espeak voices are language codes passed per call.
    with _load_lock:
        return _tts(engine or "piper", voice if engine == "piper" else "")


@cache
def _llm(path: str) -> LlamaChat:
    return LlamaChat(path, context_tokens=settings.LLM_CONTEXT_TOKENS, threads=settings.LLM_THREADS)


def llm_get() -> LlamaChat:
    with _load_lock:
        return _llm(str(models.llm_model_path()))
