"""Writes to an agent's knowledge. Adding a document stores its text at once and leaves the
chunking and embedding (seconds for a long document) to a background task, so an upload never
waits for them; every change to the chunks bumps the agent's knowledge revision, which tells each
process's cached search index to reload."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.knowledge import embedding
from agents.knowledge.chunking import ChunkText, document_chunks
from agents.knowledge.models import KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from agents.knowledge.parsing import DocumentInvalid, document_extract, faq_text
from agents.models import Agent

logger = logging.getLogger(__name__)

EMBEDDING_DTYPE = np.dtype("<f2")  # half the bytes of float32, the same ranking
# Documents a sweep queues again at most (the oldest first; the next sweep takes the rest).
RESUME_BATCH = 20


def knowledge_document_add(
    *,
    agent: Agent,
    kind: str,
    content: str | None = None,
    data: bytes | None = None,
    title: str = "",
    source_name: str = "",
    queue_index: bool = True,
) -> KnowledgeDocument:
    """Store a document (pasted ``content`` or uploaded ``data``) for ``agent``, pending, and
    queue its indexing once the transaction commits. ``queue_index=False`` when the caller
    indexes it itself (the ``knowledge_add`` command). Raises ``DocumentInvalid`` (an
    ``InvalidRequest``) for an upload that gives no text."""
    extracted = document_extract(kind=kind, data=data, content=content)
    document = KnowledgeDocument.objects.create(
        agent=agent,
        kind=kind,
        title=_title(title, extracted.title, source_name, extracted.text),
        source_name=source_name[:255],
        text=extracted.text,
        sha256=_sha256(extracted.text),
    )
    if queue_index:
        _index_enqueue(document.pk)
    return document


def knowledge_faq_add(
    *, agent: Agent, question: str, answer: str, queue_index: bool = True
) -> KnowledgeDocument:
    """One question and its answer: a document of one chunk."""
    text = faq_text(question=question, answer=answer)
    return knowledge_document_add(
        agent=agent,
        kind=KnowledgeDocument.Kind.FAQ,
        content=text,
        title=" ".join(question.split()),
        queue_index=queue_index,
    )


def knowledge_document_update(
    *,
    document: KnowledgeDocument,
    content: str | None = None,
    data: bytes | None = None,
    title: str = "",
    queue_index: bool = True,
) -> KnowledgeDocument:
    """New content for a document (an edited file): its chunks are replaced at the next indexing;
    until then the old ones are still searched."""
    extracted = document_extract(kind=document.kind, data=data, content=content)
    document.title = _title(title or document.title, extracted.title, "", extracted.text)
    sha256 = _sha256(extracted.text)
    if sha256 == document.sha256 and document.status == KnowledgeDocument.Status.READY:
        document.save(update_fields=["title"])  # the same text: its chunks stand
        return document
    document.text = extracted.text
    document.sha256 = sha256
    document.status = KnowledgeDocument.Status.PENDING
    document.error = ""
    document.save(update_fields=["text", "sha256", "title", "status", "error"])
    if queue_index:
        _index_enqueue(document.pk)
    return document


def knowledge_document_remove(*, document: KnowledgeDocument) -> None:
    with transaction.atomic():
        document.delete()  # its chunks go with it (on_delete=CASCADE)
        _revision_bump(document.agent_id)


@transaction.atomic
def knowledge_copy(*, source: Agent, target: Agent) -> int:
    """Give ``target`` a copy of each of ``source``'s documents (a duplicated agent answers as
    the original does). Chunks and vectors are copied, not made again: a copy of a ready
    document is ready at once. A document still pending is copied pending and queued. Returns
    the number of documents copied."""
    documents = list(source.knowledge_documents.order_by("created_at", "id"))
    for original in documents:
        copy = KnowledgeDocument.objects.create(
            agent=target,
            title=original.title,
            kind=original.kind,
            source_name=original.source_name,
            text=original.text,
            sha256=original.sha256,
            indexed_sha256=original.indexed_sha256,
            status=original.status,
            error=original.error,
            chunk_count=original.chunk_count,
            indexed_at=original.indexed_at,
        )
        KnowledgeChunk.objects.bulk_create(
            KnowledgeChunk(
                document=copy,
                agent=target,
                seq=chunk.seq,
                text=chunk.text,
                token_count=chunk.token_count,
                embedding=chunk.embedding,
            )
            for chunk in original.chunks.order_by("seq")
        )
        if copy.status == KnowledgeDocument.Status.PENDING:
            _index_enqueue(copy.pk)
    if documents:
        _revision_bump(target.pk)
    return len(documents)


def knowledge_document_index(*, document_id: int) -> KnowledgeDocument | None:
    """Cut the document into chunks, embed them when the model is installed, and replace its
    chunks with them in one transaction. Idempotent: a document whose chunks were made from its
    current text is left alone. None when the document is gone."""
    document = KnowledgeDocument.objects.filter(pk=document_id).first()
    if document is None:
        return None
    if _index_current(document):
        return document
    try:
        chunks = document_chunks(kind=document.kind, text=document.text)
        if not chunks:
            raise DocumentInvalid("The document has no text to search.")
    except Exception as exc:
        # Bad content is the sender's to fix, and a retry would fail again: record it.
        if not isinstance(exc, DocumentInvalid):
            logger.exception("Indexing knowledge document %s failed", document.public_id)
        return _index_failed(document, str(exc))
    vectors = _embeddings_compute(chunks)
    return _chunks_replace(document, chunks, vectors)


def _index_current(document: KnowledgeDocument) -> bool:
    """Its chunks were made from its current text, with vectors if the model is installed (it
    may have been installed since: then the chunks are made again, with them)."""
    if document.status != document.Status.READY or document.indexed_sha256 != document.sha256:
        return False
    return not (embedding.available() and document.chunks.filter(embedding=None).exists())


def _chunks_replace(
    document: KnowledgeDocument, chunks: list[ChunkText], vectors: list[bytes] | None
) -> KnowledgeDocument | None:
    with transaction.atomic():
        # The row lock orders two indexings of one document (a retried task, a command and a
        # task): the second one sees the first one's work and does nothing.
        current = KnowledgeDocument.objects.select_for_update().filter(pk=document.pk).first()
        if current is None:
            return None
        if current.sha256 != document.sha256:
            return current  # changed meanwhile: that change queued an indexing of its own
        if _index_current(current):
            return current
        current.chunks.all().delete()
        KnowledgeChunk.objects.bulk_create(
            KnowledgeChunk(
                document=current,
                agent_id=current.agent_id,
                seq=seq,
                text=chunk.text,
                token_count=chunk.token_count,
                embedding=None if vectors is None else vectors[seq],
            )
            for seq, chunk in enumerate(chunks)
        )
        current.status = current.Status.READY
        current.error = ""
        current.chunk_count = len(chunks)
        current.indexed_sha256 = current.sha256
        current.indexed_at = timezone.now()
        current.save(
            update_fields=["status", "error", "chunk_count", "indexed_sha256", "indexed_at"]
        )
        _revision_bump(current.agent_id)
    return current


def _index_failed(document: KnowledgeDocument, message: str) -> KnowledgeDocument:
    with transaction.atomic():
        # Chunks of an older text would answer for a document that no longer says that.
        removed, _ = KnowledgeChunk.objects.filter(document_id=document.pk).delete()
        KnowledgeDocument.objects.filter(pk=document.pk, sha256=document.sha256).update(
            status=KnowledgeDocument.Status.FAILED, error=message[:2000], chunk_count=0
        )
        if removed:
            _revision_bump(document.agent_id)
    document.refresh_from_db()
    return document


def _embeddings_compute(chunks: list[ChunkText]) -> list[bytes] | None:
    """Each chunk's sentence vectors as float16 bytes, or None without the model: retrieval
    then uses keywords only."""
    if not chunks or not embedding.available():
        return None
    sentences = [sentence for chunk in chunks for sentence in chunk.sentences or (chunk.text,)]
    try:
        vectors = embedding.encoder().encode(sentences).astype(EMBEDDING_DTYPE)
    except Exception:
        # A broken model install must not lose the document: keywords still find it.
        logger.exception("Embedding %d knowledge sentences failed", len(sentences))
        return None
    encoded, start = [], 0
    for chunk in chunks:
        end = start + len(chunk.sentences or (chunk.text,))
        encoded.append(vectors[start:end].tobytes())
        start = end
    return encoded


def _revision_bump(agent_id: int) -> None:
    # F(): two indexings committing at once must each move the revision on.
    if not KnowledgeBase.objects.filter(agent_id=agent_id).update(revision=F("revision") + 1):
        KnowledgeBase.objects.get_or_create(agent_id=agent_id)  # first change; races are handled
        KnowledgeBase.objects.filter(agent_id=agent_id).update(revision=F("revision") + 1)


def knowledge_index_resume(*, now: datetime | None = None) -> list[int]:
    """Queue again the indexing of documents still pending KNOWLEDGE_RESUME_AFTER_SECONDS after
    it was last queued (their task was lost), and return their ids. Each is queued at most once
    a period; should the lost task turn up after all, indexing is idempotent (the row lock and
    the content hash in ``_chunks_replace``)."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.KNOWLEDGE_RESUME_AFTER_SECONDS)
    ids = list(
        KnowledgeDocument.objects.filter(status=KnowledgeDocument.Status.PENDING)
        .filter(Q(index_queued_at__isnull=True) | Q(index_queued_at__lt=overdue))
        .filter(created_at__lt=overdue)
        .order_by("created_at")
        .values_list("pk", flat=True)[:RESUME_BATCH]
    )
    for document_id in ids:
        _index_enqueue(document_id)
    return ids


def _index_enqueue(document_id: int) -> None:
    from agents.tasks import knowledge_document_index  # tasks import this module
    from thinnest_site.background import task_enqueue

    KnowledgeDocument.objects.filter(pk=document_id).update(index_queued_at=timezone.now())

    # After commit, so the task finds the row; robust: a broker that is down must not fail the
    # upload (the document stays pending and ``knowledge_add``/a re-upload indexes it).
    transaction.on_commit(
        lambda: task_enqueue(knowledge_document_index, (document_id,)), robust=True
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _title(given: str, found: str, source_name: str, text: str) -> str:
    title = " ".join(given.split()) or found or source_name or text.strip().split("\n", 1)[0]
    return title[:200]
