"""Finding the passages of an agent's knowledge that answer a question.

Two rankings fused: BM25 over stemmed words (bm25s), which finds names, numbers and the caller's
own words, and the cosine similarity of MiniLM sentence embeddings, which finds the fact behind a
paraphrase ("Where are you located?" for "We are at 14 Mill Street"). Reciprocal rank fusion
combines them by rank, so neither's score scale matters. Without the embedding model (or for
chunks indexed before it was installed) BM25 alone ranks.

An index is built once per agent and knowledge revision and kept by each process
(``knowledge_index_get``): the calls and chats of an agent share it, and a change to its
knowledge is seen by the next one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.knowledge import embedding
from agents.knowledge.chunking import sentences_split
from agents.knowledge.selectors import knowledge_chunk_rows, knowledge_revision_get

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 4
# Reciprocal rank fusion's constant (Cormack et al. 2009): a chunk ranked r adds 1 / (60 + r).
RRF_K = 60
# Below this, an embedding match alone does not make a chunk a candidate: MiniLM puts unrelated
# sentences around 0 to 0.15 from a question, and the sentence that answers it mostly above 0.25.
MIN_SIMILARITY = 0.2
# Sentences of a chunk a passage's focus keeps by meaning (more if they share the query's words).
FOCUS_SENTENCES = 2


@dataclass(frozen=True)
class Passage:
    document_id: str  # the document's public id (doc_…)
    document_title: str
    chunk_id: int
    seq: int
    text: str
    bm25: float
    similarity: float | None  # cosine; None when the chunk or the process has no embedding
    score: float  # the fused score the passages are ordered by
    # The chunk's sentences that answer the query best, under its headings: what a small model
    # is shown (a whole chunk buries the one fact among ten).
    focus: str = ""


@dataclass(frozen=True)
class IndexedChunk:
    chunk_id: int
    document_id: str
    document_title: str
    seq: int
    text: str
    embedding: bytes | None  # float16 little-endian, embedding.DIMENSIONS values


_stemmers = threading.local()


def _tokenize(texts: list[str]) -> list[list[str]]:
    # bm25s and PyStemmer are imported on first use (0.15 s): most processes never search.
    import bm25s
    import Stemmer

    # PyStemmer's stemmers are not thread-safe (they keep a cache): one per thread.
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    # NLTK's English list (en_plus), not the short Lucene one: that keeps "do", "you" and
    # "where", which questions are made of and every business's sentences contain.
    return bm25s.tokenize(
        texts, stopwords="en_plus", stemmer=stemmer, return_ids=False, show_progress=False
    )


def chunk_sentences(text: str) -> tuple[str, list[str]]:
    """A chunk's heading context ("Shop > Opening hours") and its body's sentences, split as
    chunking split them when they were embedded (one vector each, in this order)."""
    first_line = text.split("\n", 1)[0]
    context = ""
    head, sep, _rest = first_line.partition(": ")
    if sep and not any(mark in head for mark in ".!?"):
        context, text = head, text[len(head) + 2 :]
    return context, [s for line in text.split("\n") for s in sentences_split(line)]


class KnowledgeIndex:
    """An agent's chunks, searchable. Read-only once built, so threads may share it."""

    def __init__(self, chunks: Sequence[IndexedChunk], *, revision: int = 0) -> None:
        import bm25s

        self.chunks = list(chunks)
        self.revision = revision
        self._bm25 = None
        if self.chunks:
            self._bm25 = bm25s.BM25()
            self._bm25.index(_tokenize([c.text for c in self.chunks]), show_progress=False)
        # A chunk holds one vector per sentence: its similarity is its best sentence's.
        owned = [
            (row, np.frombuffer(chunk.embedding, dtype="<f2").reshape(-1, embedding.DIMENSIONS))
            for row, chunk in enumerate(self.chunks)
            if chunk.embedding and len(chunk.embedding) % (2 * embedding.DIMENSIONS) == 0
        ]
        self._vector_rows = np.array([row for row, _ in owned], dtype=np.int64)
        self._vector_starts = np.cumsum([0] + [len(v) for _, v in owned], dtype=np.int64)[:-1]
        self._vectors = np.concatenate([v for _, v in owned]).astype(np.float32) if owned else None
        # Row -> (first, end) of its sentences' vectors.
        self._sentence_rows = {
            int(row): (int(start), int(start) + len(vectors))
            for (row, vectors), start in zip(owned, self._vector_starts, strict=True)
        }

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def has_embeddings(self) -> bool:
        return self._vectors is not None

    def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> list[Passage]:
        """The best passages for ``query``, best first: at most ``limit``, and only as many as
        fit ``budget_tokens`` together, as ``count_tokens`` counts them (the LLM's tokenizer). A
        passage too long for what is left is passed over for a shorter one after it."""
        if not self.chunks or not query.strip() or limit <= 0:
            return []
        bm25 = self._bm25_scores(query)
        similarity, sentence_similarity = self._similarities(query)
        query_words = set(_tokenize([query])[0]) - {""}
        fused = np.zeros(len(self.chunks))
        matched = bm25 > 0
        _add_rank_scores(fused, bm25, matched)
        if similarity is not None:
            # Every chunk with a vector is ranked by it, but a weak similarity alone does not
            # make a chunk a candidate.
            _add_rank_scores(fused, np.nan_to_num(similarity, nan=-1.0), ~np.isnan(similarity))
            matched |= similarity >= MIN_SIMILARITY
        passages: list[Passage] = []
        left = budget_tokens
        # Equal fused scores (two chunks the rankings put in opposite orders, or that only one
        # ranking placed, at the same rank) go to the closer meaning, then to the earlier chunk.
        tiebreak = np.zeros(len(self.chunks)) if similarity is None else np.nan_to_num(similarity)
        order = sorted(np.flatnonzero(matched), key=lambda r: (-fused[r], -tiebreak[r], r))
        for row in order:
            if len(passages) >= limit:
                break
            chunk = self.chunks[row]
            cost = count_tokens(chunk.text)
            if cost > left:
                continue
            left -= cost
            passages.append(
                Passage(
                    document_id=chunk.document_id,
                    document_title=chunk.document_title,
                    chunk_id=chunk.chunk_id,
                    seq=chunk.seq,
                    text=chunk.text,
                    bm25=float(bm25[row]),
                    similarity=None
                    if similarity is None or np.isnan(similarity[row])
                    else float(similarity[row]),
                    score=float(fused[row]),
                    focus=self._focus(row, query_words, sentence_similarity),
                )
            )
        return passages

    def _focus(
        self, row: int, query_words: set[str], sentence_similarity: np.ndarray | None
    ) -> str:
        """The chunk's best sentences for the query in their own order, under its headings: the
        FOCUS_SENTENCES closest in meaning, and any that shares one of its ``query_words``."""
        chunk = self.chunks[row]
        context, sentences = chunk_sentences(chunk.text)
        keep: set[int] = set()
        vectors = self._sentence_rows.get(row)
        if (
            sentence_similarity is not None
            and vectors is not None
            and vectors[1] - vectors[0] == len(sentences)
        ):
            scores = sentence_similarity[vectors[0] : vectors[1]]
            keep.update(int(i) for i in np.argsort(-scores)[:FOCUS_SENTENCES])
        if query_words:
            for index, words in enumerate(_tokenize(sentences)):
                if query_words & set(words):
                    keep.add(index)
        if not keep:
            keep = set(range(len(sentences)))
        body = " ".join(sentences[i] for i in sorted(keep))
        # The nearest heading only: "Opening hours: ..." reads as a fact, a heading path
        # ("Bakery > Opening hours: ...") is echoed back by small models.
        heading = context.rsplit(" > ", 1)[-1]
        return f"{heading}: {body}" if heading else body

    def _bm25_scores(self, query: str) -> np.ndarray:
        tokens = _tokenize([query])[0]
        if not tokens or tokens == [""]:
            return np.zeros(len(self.chunks))
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)

    def _similarities(self, query: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Cosine per chunk (its best sentence's), NaN for chunks without a vector, and per
        sentence; (None, None) when there are no vectors."""
        if self._vectors is None or not embedding.available():
            return None, None
        try:
            vector = embedding.encoder().encode([query])[0]
        except Exception:
            logger.exception("Embedding a knowledge query failed; searching by keywords only")
            return None, None
        per_sentence = self._vectors @ vector
        similarity = np.full(len(self.chunks), np.nan)
        similarity[self._vector_rows] = np.maximum.reduceat(per_sentence, self._vector_starts)
        return similarity, per_sentence


def _add_rank_scores(fused: np.ndarray, scores: np.ndarray, candidates: np.ndarray) -> None:
    rows = np.flatnonzero(candidates)
    ranked = rows[np.argsort(-scores[rows], kind="stable")]
    fused[ranked] += 1.0 / (RRF_K + np.arange(1, len(ranked) + 1))


# --- the per-process cache ----------------------------------------------------------------------

# Indexes kept per process (least recently used dropped): an index is the chunks' text plus
# 1.5 KB of vector per sentence, so even long knowledge bases cost a few MB each.
CACHE_SIZE = 32

_cache: OrderedDict[int, KnowledgeIndex] = OrderedDict()
_cache_lock = threading.Lock()


def knowledge_index_get(*, agent_id: int) -> KnowledgeIndex:
    """The agent's index, rebuilt when its knowledge revision changed since this process built
    it. One small query when it has not. Synchronous (the ORM): async callers wrap it."""
    # The revision is read before the chunks: a change in between leaves an index newer than
    # its revision says, which the next call rebuilds; never an older one kept as current.
    revision = knowledge_revision_get(agent_id=agent_id)
    with _cache_lock:
        index = _cache.get(agent_id)
        if index is not None and index.revision == revision:
            _cache.move_to_end(agent_id)
            return index
    index = KnowledgeIndex(
        [
            IndexedChunk(
                chunk_id=row["id"],
                document_id=row["document__public_id"],
                document_title=row["document__title"],
                seq=row["seq"],
                text=row["text"],
                embedding=bytes(row["embedding"]) if row["embedding"] is not None else None,
            )
            for row in knowledge_chunk_rows(agent_id=agent_id)
        ],
        revision=revision,
    )
    with _cache_lock:
        _cache[agent_id] = index
        _cache.move_to_end(agent_id)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def knowledge_index_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
