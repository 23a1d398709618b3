"""How an engine describes itself to the agent form (``voice.catalog``): what it is, whether it
can run here, and the models or voices this server has for it.

Built from the installed packages and the settings only, never by loading a model: the form
shows it on every page view.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voice.engines.models import ModelUnavailable


@dataclass(frozen=True)
class Choice:
    """One value an agent's field may hold; ``value`` "" is the engine's or server's default."""

    value: str
    label: str
    available: bool
    about: str = ""


@dataclass(frozen=True)
class EngineListing:
    name: str  # the agent's stt_engine / tts_engine value: the engine's key in its table
    label: str
    available: bool
    about: str  # what it is, and what is or is not installed
    # Models (speech-to-text, language model) or voices (text-to-speech) this server has for it.
    choices: list[Choice] = field(default_factory=list)
    # What a value of your own looks like.
    own: str = ""


def installed(module: str) -> bool:
    # find_spec, not import: importing faster_whisper or piper costs seconds and memory.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def packaged(resolve: Callable[[], Path], marker: str = "") -> Path | None:
    """The path a packaged model resolves to, if its files are here."""
    try:
        path = resolve()
    except ModelUnavailable:
        return None
    return path if (path / marker if marker else path).exists() else None


def configured(path: str) -> bool:
    return bool(path) and Path(path).expanduser().exists()
