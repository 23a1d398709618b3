"""Text around the models: the prompt a call's LLM sees, and cutting its reply into speech."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Words after which a period does not end a sentence.
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no", "approx"}
# The first chunk may be a clause: it gets the agent talking sooner.
FIRST_CHUNK_MIN_CHARS = 12
CHUNK_MIN_CHARS = 40


def fill_placeholders(template: str, context: dict) -> str:
    """``{{name}}`` -> context["name"]; a placeholder with no value becomes empty, so a prompt
    never shows braces to the model."""
    return _PLACEHOLDER.sub(lambda m: str(context.get(m.group(1), "") or ""), template)


def ends_sentence(text: str, index: int) -> bool:
    """Whether the punctuation at ``index`` ends a sentence (not "3.5", not "Dr.")."""
    char = text[index]
    nxt = text[index + 1] if index + 1 < len(text) else ""
    if nxt and not nxt.isspace():
        return False
    if char == ".":
        word = re.split(r"\s", text[:index])[-1].lower().strip("(\"'")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
    return True


def speakable_chunks(pieces: Iterable[str]) -> Iterator[str]:
    """Cut streamed LLM text into pieces worth synthesizing: the first at the first clause
    boundary past a few words, then whole sentences. Waits for the character after a period,
    so "3.5" and "Dr. Who" are not cut."""
    buffer = ""
    first = True
    for piece in pieces:
        buffer += piece
        while True:
            cut = None
            minimum = FIRST_CHUNK_MIN_CHARS if first else CHUNK_MIN_CHARS
            for index, char in enumerate(buffer):
                if index + 1 < minimum:
                    continue
                if char in ".!?" and ends_sentence(buffer, index) and index + 1 < len(buffer):
                    cut = index + 1
                    break
                if (
                    first
                    and char in ",;:"
                    and index + 1 < len(buffer)
                    and buffer[index + 1].isspace()
                ):
                    cut = index + 1
                    break
            if cut is None:
                break
            chunk, buffer = buffer[:cut].strip(), buffer[cut:]
            if chunk:
                yield chunk
                first = False
    if buffer.strip():
        yield buffer.strip()
