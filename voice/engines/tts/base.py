"""Text to speech: what the pipeline calls (``TextToSpeech``: mono int16 and its sample rate) and
what an engine's class offers before any model is loaded (``TtsEngine``: the table's values)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from voice.engines.listing import EngineListing


class TextToSpeech(Protocol):
    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]: ...


class TtsEngine(TextToSpeech, Protocol):
    """An engine class as TTS_ENGINES holds it. ``voice`` is the agent's voice; "" = the
    engine's default."""

    # True: the voice is a model the engine loads (one instance per voice, cached); False: it is
    # passed to each ``synthesize`` (one instance serves every voice).
    voice_is_model: ClassVar[bool]

    @classmethod
    def from_setting(cls, voice: str = "") -> TextToSpeech:
        """The loaded engine (the registry caches it); ModelUnavailable when its model is not
        here."""
        ...

    @classmethod
    def settings_error(cls, voice: str) -> str:
        """Why an agent with this voice cannot run here, or "": checked at save, loads nothing."""
        ...

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        """The engine and its voices as the agent form offers them (``name``: its table key)."""
        ...
