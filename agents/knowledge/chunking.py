"""Sections to chunks: passages of about 60 to 150 words, cut where a sentence ends.

A chunk stays under one heading, and its headings lead it ("Bakery > Opening hours: We open
at 7 am…"): a passage handed to the LLM on its own still says what it is about, and the words of
the heading count for retrieval. A short section is a short chunk rather than half of an unrelated
one. Within a section, paragraphs are kept whole when they fit, and the words are shared evenly
between the chunks it needs (not 150 + 150 + 12).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agents.knowledge.models import KnowledgeDocument
from agents.knowledge.parsing import Section, document_sections

MIN_WORDS = 60
MAX_WORDS = 150


@dataclass(frozen=True)
class ChunkText:
    text: str
    token_count: int  # an estimate; the LLM's own tokenizer counts when it matters
    # The body's sentences, each embedded on its own: a question is matched to the one sentence
    # that answers it, which a vector of the whole chunk blurs (see services).
    sentences: tuple[str, ...]


def token_estimate(text: str) -> int:
    # About four characters per token for English with the usual BPE vocabularies.
    return max(1, math.ceil(len(text) / 4))


def document_chunks(*, kind: str, text: str) -> list[ChunkText]:
    chunks = []
    for section in document_sections(kind=kind, text=text):
        # A question and its answer stay together, however long.
        faq = kind == KnowledgeDocument.Kind.FAQ
        bodies = ["\n".join(section.paragraphs)] if faq else _section_bodies(section)
        context = " > ".join(section.headings)
        for body in bodies:
            chunk = f"{context}: {body}" if context else body
            sentences = tuple(s for line in body.split("\n") for s in sentences_split(line))
            chunks.append(ChunkText(chunk, token_estimate(chunk), sentences))
    return chunks


def _words(text: str) -> int:
    return len(text.split())


def _section_bodies(section: Section) -> list[str]:
    paragraphs = [_sentence_pieces(paragraph) for paragraph in section.paragraphs]
    total = sum(_words(sentence) for paragraph in paragraphs for sentence in paragraph)
    target = total / max(1, math.ceil(total / MAX_WORDS))
    bodies: list[str] = []
    current: list[list[str]] = []  # paragraphs of the chunk being filled, as sentences
    size = 0

    def close() -> None:
        nonlocal size
        if current:
            bodies.append("\n".join(" ".join(sentences) for sentences in current if sentences))
        current.clear()
        size = 0

    for paragraph in paragraphs:
        if size >= MIN_WORDS and size + sum(map(_words, paragraph)) > MAX_WORDS:
            close()  # rather than cut a paragraph that would fit whole in the next chunk
        current.append([])
        for sentence in paragraph:
            words = _words(sentence)
            if size and (size + words > MAX_WORDS or size >= target):
                close()
                current.append([])
            current[-1].append(sentence)
            size += words
    close()
    return bodies


def _sentence_pieces(paragraph: str) -> list[str]:
    """The paragraph's sentences; one longer than a chunk (a list run together without
    punctuation) is the one thing cut between words, into even pieces."""
    pieces = []
    for sentence in sentences_split(paragraph):
        words = sentence.split()
        if len(words) <= MAX_WORDS:
            pieces.append(sentence)
            continue
        count = math.ceil(len(words) / MAX_WORDS)
        step = math.ceil(len(words) / count)
        pieces.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return pieces


# Why not a library: the well-kept sentence splitters need downloaded models (NLTK's punkt,
# spaCy), and pysbd is unmaintained. Chunking needs only "never cut inside a sentence", which a
# rule with a short abbreviation list gets right for the prose of a business's documents.
_CLOSING = "\"')]\u201d\u2019"  # quotes and brackets that may follow the full stop
_OPENING = "\"'(\u201c\u2018"
_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSING)}]*\s+")
_ABBREVIATIONS = {
    "approx", "apt", "ave", "blvd", "co", "corp", "dept", "dr", "e.g", "est", "fig", "i.e", "inc",
    "jr", "ltd", "mr", "mrs", "ms", "mt", "no", "nr", "p.m", "a.m", "prof", "rd", "sr", "st",
    "tel", "vs",
}  # fmt: skip


def sentences_split(text: str) -> list[str]:
    """Sentences of one paragraph. A full stop ends a sentence when what follows starts like one
    (a capital, a digit, a quote) and the word before it is no abbreviation or initial."""
    sentences = []
    start = 0
    for match in _END.finditer(text):
        following = text[match.end() : match.end() + 1]
        if not following or following.islower():
            continue
        if match.group().startswith("."):
            before = text[start : match.start()].split()
            word = before[-1].lstrip(_OPENING).lower() if before else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
