"""Text to speech. One interface; one class per engine. ``synthesize`` returns mono int16 + rate."""

from __future__ import annotations

import io
import subprocess
import threading
import wave
from typing import Protocol

import numpy as np


class TextToSpeech(Protocol):
    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]: ...


class PiperTts:
    """Piper (onnx). One voice per process; calls take turns on it."""

    def __init__(self, model_path: str) -> None:
        from piper import PiperVoice

        self.voice = PiperVoice.load(model_path)
        self.sample_rate = self.voice.config.sample_rate
        self._lock = threading.Lock()

    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / max(speed, 0.1))
        with self._lock:
            chunks = [
                chunk.audio_int16_array for chunk in self.voice.synthesize(text, syn_config=config)
            ]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return pcm.astype(np.int16, copy=False), self.sample_rate


class EspeakTts:
    """espeak-ng: tiny, robotic, and speaks about a hundred languages (``voice`` = language code)."""

    def __init__(self, default_voice: str = "en") -> None:
        self.default_voice = default_voice

    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]:
        result = subprocess.run(
            [
                "espeak-ng",
                "--stdout",
                "-v",
                voice or self.default_voice,
                "-s",
                str(int(165 * speed)),
                text,
            ],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace')[:200]}")
        with wave.open(io.BytesIO(result.stdout)) as wav:
            return np.frombuffer(
                wav.readframes(wav.getnframes()), dtype=np.int16
            ), wav.getframerate()
