"""Whether an agent's voice settings can run on this server, asked when the agent is saved.

An agent whose model is missing, whose voice does not exist or whose prompt leaves no room in
the context window used to save fine and then fail, or fall silent, on its first call. The
agents app calls ``agent_settings_errors`` through the AGENT_SETTINGS_CHECK setting (it knows no
engine), and gets field errors that say what is allowed.
"""

from __future__ import annotations

import atexit
import logging
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

from voice.engines import models

logger = logging.getLogger(__name__)

# Room the call's history needs beside the system prompt and the reply, in tokens: about four
# short exchanges. history_trim drops older turns to stay within the window.
HISTORY_ROOM_TOKENS = 256
# Chat-template tokens around the system prompt (role markers, the knowledge section's heading).
TEMPLATE_TOKENS = 64


def agent_settings_errors(agent: Any) -> dict[str, str]:
    """Field name -> message for each setting of ``agent`` this server cannot run."""
    errors: dict[str, str] = {}
    stt = _stt_error(agent.stt_engine, agent.stt_model_path)
    if stt:
        errors["stt_model_path" if agent.stt_model_path else "stt_engine"] = stt
    tts = _tts_error(agent.tts_engine, agent.tts_voice)
    if tts:
        errors["tts_voice" if agent.tts_voice else "tts_engine"] = tts
    try:
        llm_path = models.llm_model_path(agent.llm_model, join=False)
    except models.ModelUnavailable as exc:
        errors["llm_model"] = str(exc)
        llm_path = None
    prompt_error = _prompt_error(agent.system_prompt or "", agent.llm_max_tokens or 0, llm_path)
    if prompt_error:
        errors["system_prompt"] = prompt_error
    return errors


def _stt_error(engine: str, model_path: str) -> str:
    try:
        if engine == "whisper":
            models.whisper_model_dir(model_path)
        elif engine == "vosk":
            models.vosk_model_dir(model_path)
        else:
            return f"Unknown speech-to-text engine '{engine}': use whisper or vosk."
    except models.ModelUnavailable as exc:
        return str(exc)
    return ""


def _tts_error(engine: str, voice: str) -> str:
    try:
        if engine == "piper":
            if voice and not voice.endswith(".onnx"):
                return (
                    f"'{voice}' is not a Piper voice: leave it empty for the packaged voice "
                    "(en_US-joe-medium) or give the path of a Piper .onnx file on this server."
                )
            models.piper_voice_path(voice)
        elif engine == "espeak":
            known = espeak_voices()
            if voice and known and voice not in known:
                return (
                    f"espeak-ng has no voice '{voice}': use a language code such as "
                    f"{', '.join(sorted(known)[:8])}… (espeak-ng --voices lists them)."
                )
        elif engine == "coqui":
            models.coqui_model_paths(voice)
        else:
            return f"Unknown text-to-speech engine '{engine}': use piper, espeak or coqui."
    except models.ModelUnavailable as exc:
        return str(exc)
    return ""


def _prompt_error(prompt: str, max_tokens: int, llm_path: Path | None) -> str:
    window = settings.LLM_CONTEXT_TOKENS
    prompt_tokens = count_tokens(prompt, llm_path)
    needed = prompt_tokens + TEMPLATE_TOKENS + HISTORY_ROOM_TOKENS + max_tokens
    if needed <= window:
        return ""
    allowed = window - TEMPLATE_TOKENS - HISTORY_ROOM_TOKENS - max_tokens
    return (
        f"The system prompt is about {prompt_tokens} tokens; with the reply length "
        f"({max_tokens}) and room for the conversation ({HISTORY_ROOM_TOKENS}) it must stay "
        f"under {max(allowed, 0)} tokens to fit the model's {window}-token context window "
        "(LLM_CONTEXT_TOKENS). Shorten it, or lower the reply length."
    )


def count_tokens(text: str, llm_path: Path | None) -> int:
    """Tokens of ``text`` by the model's own vocabulary when its file is here (loaded vocabulary
    only: milliseconds, no weights), else an estimate of one token per three characters, which
    over-counts English slightly: the safe side for a check."""
    if llm_path is not None:
        try:
            return len(_vocabulary(str(llm_path)).tokenize(text.encode(), add_bos=False))
        except Exception:  # a file llama.cpp cannot read: the load of the agent says so later
            logger.warning("could not read the vocabulary of %s", llm_path, exc_info=True)
    return (len(text) + 2) // 3


@cache
def _vocabulary(path: str):
    from llama_cpp import Llama

    vocabulary = Llama(model_path=path, vocab_only=True, verbose=False)
    # Freed before the interpreter tears llama.cpp's bindings down, not after (a noisy error).
    atexit.register(vocabulary.close)
    return vocabulary


@cache
def espeak_voices() -> frozenset[str]:
    """Language codes espeak-ng speaks on this machine; empty when it is not installed."""
    try:
        listing = subprocess.run(
            ["espeak-ng", "--voices"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    # "Pty Language Age/Gender VoiceName File ...": espeak-ng takes the language ("en-us"), its
    # base ("en"), the voice name or the file name.
    codes = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            language = fields[1]
            codes.update({language, language.split("-")[0], fields[3], fields[4]})
    return frozenset(codes)
