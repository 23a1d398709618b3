"""The local language model: llama.cpp through llama-cpp-python, streaming tokens."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator


class LlamaChat:
    """One loaded GGUF per process. A llama.cpp context serves one generation at a time, so
    calls take turns (the lock); replies are short, and the TTS of one call overlaps the next
    call's generation."""

    def __init__(self, model_path: str, *, context_tokens: int = 2048, threads: int = 2) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=model_path, n_ctx=context_tokens, n_threads=threads, verbose=False
        )
        # Free it while the interpreter still works: llama-cpp-python's __del__ fails at exit.
        atexit.register(self.llm.close)
        self.context_tokens = context_tokens
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def stream_reply(
        self,
        messages: list[dict],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Text pieces of the reply as they are generated; stops early once ``cancel`` is set."""
        with self._lock:
            stream = self.llm.create_chat_completion(
                messages=messages, stream=True, temperature=temperature, max_tokens=max_tokens
            )
            for chunk in stream:
                if cancel.is_set():
                    break
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
