from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agents.knowledge.models import KnowledgeBase, KnowledgeChunk, KnowledgeDocument


def knowledge_document_list(*, agent_id: int) -> QuerySet[KnowledgeDocument]:
    """The agent's documents, oldest first, without their text (it may be megabytes)."""
    return (
        KnowledgeDocument.objects.filter(agent_id=agent_id)
        .defer("text")
        .order_by("created_at", "id")
    )


def knowledge_document_get(*, public_id: str) -> KnowledgeDocument | None:
    return KnowledgeDocument.objects.filter(public_id=public_id).first()


def knowledge_revision_get(*, agent_id: int) -> int:
    """Changes whenever the agent's searchable chunks do; 0 for an agent that never had any."""
    revision = (
        KnowledgeBase.objects.filter(agent_id=agent_id).values_list("revision", flat=True).first()
    )
    return revision or 0


def knowledge_chunk_rows(*, agent_id: int) -> list[dict[str, Any]]:
    """What an agent's search index is built from: its chunks, in document and chunk order. A
    document being indexed again keeps its previous chunks until the new ones replace them; a
    failed one has none."""
    return list(
        KnowledgeChunk.objects.filter(agent_id=agent_id)
        .order_by("document_id", "seq")
        .values(
            "id",
            "seq",
            "text",
            "embedding",
            "document__public_id",
            "document__title",
        )
    )


def knowledge_document_get_by_source(
    *, agent_id: int, source_name: str
) -> KnowledgeDocument | None:
    """The agent's latest document from a file of that name (a file added again replaces it)."""
    return (
        KnowledgeDocument.objects.filter(agent_id=agent_id, source_name=source_name)
        .order_by("-created_at", "-id")
        .first()
    )


def knowledge_document_get_for_agent(*, agent_id: int, public_id: str) -> KnowledgeDocument | None:
    """The agent's document of that id, without its text; None when another agent has it."""
    return (
        KnowledgeDocument.objects.filter(agent_id=agent_id, public_id=public_id)
        .defer("text")
        .first()
    )


def knowledge_chunk_list(*, document_id: int) -> QuerySet[KnowledgeChunk]:
    """A document's chunks in order, without their vectors."""
    return KnowledgeChunk.objects.filter(document_id=document_id).defer("embedding").order_by("seq")


def knowledge_document_ids_existing(*, agent_id: int, public_ids: list[str]) -> set[str]:
    """Which of these document ids the agent still has (a call's sources may name a document
    removed since)."""
    return set(
        KnowledgeDocument.objects.filter(agent_id=agent_id, public_id__in=public_ids).values_list(
            "public_id", flat=True
        )
    )
