"""Speech to text: what the pipeline calls (``SpeechToText``, ``StreamingSpeechToText``) and what
an engine's class offers before any model is loaded (``SttEngine``: the table's values)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from voice.engines.listing import EngineListing


class SpeechToText(Protocol):
    """Shared by the calls of a process; ``transcribe`` may be called from several threads."""

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str: ...


class SttStream(Protocol):
    """One utterance being recognized as it is spoken. Not thread-safe: one caller at a time."""

    def accept(self, pcm16k: np.ndarray) -> str:
        """Feed more audio; returns the text so far (a partial result, may still change)."""

    def finish(self) -> str:
        """The final text of the utterance; the stream is done after this."""


@runtime_checkable
class StreamingSpeechToText(SpeechToText, Protocol):
    """An engine that also recognizes while the caller speaks, so partial text is real."""

    def stream(self, language: str = "en") -> SttStream: ...


class SttEngine(SpeechToText, Protocol):
    """An engine class as STT_ENGINES holds it. ``model_path`` is the agent's model; "" = the
    engine's setting, else its packaged model."""

    @classmethod
    def from_setting(cls, model_path: str = "") -> SpeechToText:
        """The loaded engine (seconds: the registry caches it); ModelUnavailable when its model
        is not here."""
        ...

    @classmethod
    def settings_error(cls, model_path: str) -> str:
        """Why an agent with this model cannot run here, or "": checked at save, loads nothing."""
        ...

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        """The engine and its models as the agent form offers them (``name``: its table key)."""
        ...
