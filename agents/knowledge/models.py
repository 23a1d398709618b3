"""An agent's knowledge: the documents staff give it, cut into chunks that retrieval searches.

Imported by agents/models.py, so these are models of the agents app (label ``agents``)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from thinnest_site.ids import public_id


def new_document_id() -> str:
    return public_id("doc")


class KnowledgeBase(models.Model):
    """One row per agent that has had knowledge: its revision, bumped by every change to its
    chunks, so that each process's cached index (retrieval.knowledge_index_get) knows when to
    reload.

    Not a field of Agent: agent_update saves every field of an instance that may have been read
    before an indexing finished, and would put an older revision back; an older revision could
    then match a stale cached index."""

    agent = models.OneToOneField(
        "agents.Agent", on_delete=models.CASCADE, primary_key=True, related_name="knowledge_base"
    )
    revision = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"knowledge of agent {self.agent_id} (revision {self.revision})"


class KnowledgeDocument(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Plain text"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        PDF = "pdf", "PDF"
        FAQ = "faq", "Question and answer"

    class Status(models.TextChoices):
        PENDING = "pending"  # stored, indexing queued
        READY = "ready"  # chunked (and embedded when the model is installed): searched
        FAILED = "failed"

    public_id = models.CharField(
        max_length=40, unique=True, default=new_document_id, editable=False
    )
    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.CASCADE, related_name="knowledge_documents"
    )
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source_name = models.CharField("file name", max_length=255, blank=True)
    # What parsing took from the upload (HTML as Markdown, so its headings survive); the upload
    # itself is not kept.
    text = models.TextField()
    sha256 = models.CharField(max_length=64)
    # The text's hash when its chunks were made: equal to sha256 when the chunks are current.
    indexed_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    indexed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When its indexing was last queued: a pending document queued long ago lost its task (a
    # restart without a broker, a broker down) and is queued again (knowledge_index_resume).
    index_queued_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.public_id})"


class KnowledgeChunk(models.Model):
    """A passage retrieval may hand the LLM: about 60 to 150 words cut at sentence ends, with the
    headings above it at its head."""

    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    # Also the document's agent, so that loading an agent's index reads one table.
    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.CASCADE, related_name="knowledge_chunks"
    )
    seq = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()  # an estimate (characters / 4)
    # 384-d unit vectors (agents/knowledge/embedding.py) of the chunk's sentences, one after the
    # other, as float16 bytes (little-endian); null when the model was not installed at indexing.
    # One per sentence, not one per chunk: on the answers benchmark's three businesses (bench/
    # answers) the chunk with the answer came first for 41 of 42 questions so, for 39 with one
    # vector of the whole chunk, whose other sentences blur it.
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["document_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["document", "seq"], name="knowledge_chunk_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.seq}"
