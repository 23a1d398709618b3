"""Language-model engines: the one table from an engine's name to its class.

An agent picks a model (``llm_model``: a packaged name or a file), not an engine; the models run
on defaults.LLM_ENGINE. Adding an engine: a module here with its class (see base.LlmEngine) and
a line below.
"""

from __future__ import annotations

from voice.engines.llm.base import ChatModel, LlmEngine
from voice.engines.llm.llama import LlamaChat

LLM_ENGINES: dict[str, type[LlmEngine]] = {
    "llama": LlamaChat,
}

__all__ = ["LLM_ENGINES", "ChatModel", "LlmEngine"]
