"""Speech to text. One interface; one class per engine."""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np


class SpeechToText(Protocol):
    """Shared by the calls of a process; ``transcribe`` may be called from several threads."""

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str: ...


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
