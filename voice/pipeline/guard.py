"""Keeping a streamed reply short and new: at most two sentences, never the previous reply again.

Small models tend to repeat their last answer whatever is asked (measured: the same sentence four
turns in a row) and to run on past what a caller wants to hear. ``ReplyGuard`` sits between the
LLM's tokens and the speech: it passes text on as it comes, except while the reply is still word
for word the previous one, and says when the reply has its two sentences (the LLM is stopped
there) or turned out to be the previous reply again (it is written anew).
"""

from __future__ import annotations

import re

from voice.engines.text import ends_sentence

MAX_SENTENCES = 2


def normalized_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def says_line(text: str, line: str) -> bool:
    """Whether ``text`` holds the fixed ``line`` word for word, whatever the punctuation and case
    (speech-to-text and the guard may change those, never the words of a fixed line)."""
    needle = " ".join(normalized_words(line))
    return bool(needle) and f" {needle} " in f" {' '.join(normalized_words(text))} "


class ReplyGuard:
    def __init__(self, previous_reply: str = "", *, max_sentences: int = MAX_SENTENCES) -> None:
        self.previous = normalized_words(previous_reply)
        self.max_sentences = max_sentences
        self.text = ""  # everything accepted so far
        self.emitted = 0  # how much of ``text`` has been passed on
        self.sentences = 0
        self.complete = False  # the reply has its sentences: stop the LLM
        self.repeated = False  # its first sentence is the previous reply's: write it anew
        self._scanned = 0  # where the sentence scan goes on from

    def feed(self, piece: str) -> str:
        """Text that may be spoken now ("" while held back)."""
        if self.complete or self.repeated:
            return ""
        self.text += piece
        self._count_sentences()
        if self._contains_previous():
            self.repeated = True  # all of the previous reply again, and more after it
            return ""
        if self._repeats_so_far():
            if self.sentences >= 1 and self._substantial():
                self.repeated = True  # a whole sentence of the previous reply again
                return ""
            if not self.complete:
                return ""
        return self._release()

    def finish(self) -> str:
        """The LLM stopped: what is left to speak (the whole reply, if it was held back and is
        not a repeat)."""
        if self.repeated:
            return ""
        if self.previous and self._repeats_so_far(whole=True) and self._substantial():
            self.repeated = True
            return ""
        self.complete = True
        return self._release()

    def _count_sentences(self) -> None:
        text = self.text
        for index in range(self._scanned, len(text)):
            if text[index] in ".!?" and index + 1 < len(text) and ends_sentence(text, index):
                self.sentences += 1
                if self.sentences >= self.max_sentences:
                    # Everything after the last sentence's end is dropped.
                    self.text = text[: index + 1]
                    self.complete = True
                    break
        self._scanned = max(len(self.text) - 1, 0)

    def _repeats_so_far(self, *, whole: bool = False) -> bool:
        """Whether the reply so far is, word for word, the start of the previous one (``whole``:
        all of it)."""
        if not self.previous:
            return False
        words = normalized_words(self.text)
        if not words:
            return not whole
        if whole:
            return words == self.previous[: len(words)]
        # The last word may still be growing ("Satur" of "Saturday").
        *done, last = words
        return done == self.previous[: len(done)] and any(
            word.startswith(last) for word in self.previous[len(done) : len(done) + 1]
        )

    def _contains_previous(self) -> bool:
        words = normalized_words(self.text)
        return (
            len(self.previous) >= 3
            and len(words) > len(self.previous)
            and words[: len(self.previous)] == self.previous
        )

    def _substantial(self) -> bool:
        # A short opening such as "Yes." or "Sure!" may well come again; a sentence of four
        # words or more, or the whole previous reply, is a repeat.
        words = normalized_words(self.text)
        return len(words) >= 4 or words == self.previous

    def _release(self) -> str:
        out = self.text[self.emitted :]
        self.emitted = len(self.text)
        return out
