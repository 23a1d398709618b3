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


class CoquiTts:
    """Coqui TTS (PyTorch): a checkpoint and its config.json. One model per process; calls take
    turns on it. Optional: ``pip install -e .[coqui]``."""

    def __init__(self, checkpoint_path: str, config_path: str) -> None:
        from TTS.utils.synthesizer import Synthesizer

        self.synthesizer = Synthesizer(
            tts_checkpoint=checkpoint_path, tts_config_path=config_path, use_cuda=False
        )
        self.sample_rate = int(self.synthesizer.output_sample_rate)
        model = self.synthesizer.tts_model
        # VITS-style models speak slower with a larger length_scale; others ignore speed.
        self._length_scale = getattr(model, "length_scale", None)
        self._lock = threading.Lock()

    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]:
        with self._lock:
            if self._length_scale is not None:
                self.synthesizer.tts_model.length_scale = self._length_scale / max(speed, 0.1)
            wav = self.synthesizer.tts(text, split_sentences=True)
        audio = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
        return (audio * 32767).astype(np.int16), self.sample_rate


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
