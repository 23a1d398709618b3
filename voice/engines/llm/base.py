"""The language model: what the pipeline calls (``ChatModel``) and what an engine's class offers
before any model is loaded (``LlmEngine``: the table's values)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from voice.engines.listing import EngineListing


class ChatModel(Protocol):
    """Shared by the calls of a process; the engine serializes generations if it must."""

    # The model's window in tokens: prompt, history and reply must fit in it.
    context_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def stream_reply(
        self,
        messages: list[dict],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        repeat_penalty: float = 1.0,
        prompt_stats: dict | None = None,
    ) -> Iterator[str]:
        """Text pieces of the reply as they are generated; stops early once ``cancel`` is set.
        ``prompt_stats``, if given, gets ``prompt_tokens`` and ``reused_tokens`` (evaluated
        before and kept in the engine's cache) where the engine can tell."""
        ...

    def prefill(self, messages: list[dict], *, wait: bool = True) -> None:
        """Evaluate ``messages`` now, so that a reply whose prompt starts with them starts
        where they end (a last caller turn: as far as its words go). ``wait`` false: skip it
        while the model is busy. Best effort: an engine that keeps no prompt cache does
        nothing."""
        ...


class LlmEngine(ChatModel, Protocol):
    """An engine class as LLM_ENGINES holds it. ``model`` is the agent's: a packaged name or
    the path of a model file; "" = the server's setting."""

    @classmethod
    def resolve(cls, model: str = "", *, join: bool = True) -> Path | None:
        """The model file; ModelUnavailable when it is not here. ``join=False``: check a model
        built on first use without building it (None when it is not built yet)."""
        ...

    @classmethod
    def from_path(cls, path: str) -> ChatModel:
        """The loaded model (seconds: the registry caches it per file)."""
        ...

    @classmethod
    def settings_error(cls, model: str) -> str:
        """Why an agent with this model cannot run here, or "": checked at save."""
        ...

    @classmethod
    def prompt_tokens(cls, text: str, model: str) -> int:
        """Tokens of ``text`` by ``model``'s vocabulary, without loading its weights; an
        estimate on the safe (high) side when that cannot be read."""
        ...

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        """The engine and its models as the agent form offers them (``name``: its table key)."""
        ...
