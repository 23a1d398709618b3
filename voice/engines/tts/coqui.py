"""Coqui TTS (PyTorch): neural voices from a checkpoint you bring. Optional: it needs torch
(``pip install -c constraints-coqui.txt -e .[coqui]``), kept out of the product's virtualenv."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from django.conf import settings

from voice.engines.listing import Choice, EngineListing, configured, installed
from voice.engines.models import ModelUnavailable, existing, unavailable_reason

_HINT = (
    "Set COQUI_MODEL_PATH and COQUI_CONFIG_PATH to a Coqui TTS checkpoint (.pth) and its "
    "config.json, or the agent's voice to a directory holding both."
)


class CoquiTts:
    """Coqui TTS (PyTorch): a checkpoint and its config.json. One model per process; calls take
    turns on it. Optional: ``pip install -e .[coqui]``."""

    voice_is_model = True

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

    @classmethod
    def resolve(cls, voice: str = "") -> tuple[Path, Path]:
        """(checkpoint, config.json): the agent's voice names a model directory, else
        COQUI_MODEL_PATH and COQUI_CONFIG_PATH."""
        if voice:
            directory = existing(voice, "Coqui TTS model directory", _HINT)
            checkpoints = sorted(directory.glob("*.pth")) if directory.is_dir() else []
            if not checkpoints or not (directory / "config.json").exists():
                raise ModelUnavailable(
                    f"No .pth checkpoint and config.json in {directory}. {_HINT}"
                )
            return checkpoints[0], directory / "config.json"
        if not settings.COQUI_MODEL_PATH or not settings.COQUI_CONFIG_PATH:
            raise ModelUnavailable(f"No Coqui TTS model configured. {_HINT}")
        return (
            existing(settings.COQUI_MODEL_PATH, "Coqui TTS checkpoint", _HINT),
            existing(settings.COQUI_CONFIG_PATH, "Coqui TTS config", _HINT),
        )

    @classmethod
    def from_setting(cls, voice: str = "") -> CoquiTts:
        checkpoint, config = cls.resolve(voice)
        return cls(str(checkpoint), str(config))

    @classmethod
    def settings_error(cls, voice: str) -> str:
        return unavailable_reason(lambda: cls.resolve(voice))

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        library = installed("TTS")
        present = configured(settings.COQUI_MODEL_PATH) and configured(settings.COQUI_CONFIG_PATH)
        missing = []
        if not library:
            missing.append(
                "the coqui-tts package is not installed here (see constraints-coqui.txt)"
            )
        if not present:
            missing.append("no model is set (COQUI_MODEL_PATH and COQUI_CONFIG_PATH)")
        choices = []
        if present:
            choices.append(
                Choice(
                    "",
                    f"COQUI_MODEL_PATH ({settings.COQUI_MODEL_PATH})",
                    True,
                    "The server's model.",
                )
            )
        return EngineListing(
            name=name,
            label="Coqui TTS",
            available=library and present,
            about="Neural voices from a Coqui TTS checkpoint you bring; slower than Piper."
            + (f" Not usable yet: {'; '.join(missing)}." if missing else ""),
            choices=choices,
            own="A directory on this server holding a Coqui .pth checkpoint and its config.json.",
        )
