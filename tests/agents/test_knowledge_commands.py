"""knowledge_add, knowledge_list and knowledge_remove, read back from the database."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.knowledge import embedding
from agents.knowledge.models import KnowledgeChunk, KnowledgeDocument
from tests.agents.knowledge_samples import BAKERY_HTML, BAKERY_MARKDOWN, minimal_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keywords_only(monkeypatch):
    # The commands are the subject here, not the vectors (test_knowledge_services has those);
    # without the model indexing takes milliseconds.
    monkeypatch.setattr(embedding, "available", lambda: False)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def run_json(*args) -> dict:
    return json.loads(run(*args, "--json"))


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bakery.md").write_text(BAKERY_MARKDOWN)
    (tmp_path / "page.html").write_text(BAKERY_HTML)
    (tmp_path / "delivery.pdf").write_bytes(minimal_pdf(["We deliver within 5 miles."]))
    (tmp_path / "notes.txt").write_text("We do not sell coffee.\n")
    return tmp_path


def test_knowledge_add_indexes_each_file_and_prints_the_counts(agent, files):
    paths = [str(files / name) for name in ("bakery.md", "page.html", "delivery.pdf", "notes.txt")]
    data = run_json("knowledge_add", agent.public_id, *paths)
    documents = list(KnowledgeDocument.objects.filter(agent=agent).order_by("id"))
    assert data == {
        "documents": 4,
        "chunks": KnowledgeChunk.objects.filter(agent=agent).count(),
        "document_ids": [d.public_id for d in documents],
    }
    assert data["chunks"] == 5 + 2 + 1 + 1
    assert [(d.kind, d.source_name, d.status) for d in documents] == [
        ("markdown", "bakery.md", "ready"),
        ("html", "page.html", "ready"),
        ("pdf", "delivery.pdf", "ready"),
        ("text", "notes.txt", "ready"),
    ]
    assert [d.title for d in documents] == [
        "Sunrise Bakery",
        "Sunrise Bakery",
        "delivery.pdf",
        "notes.txt",
    ]


def test_knowledge_add_takes_a_question_and_answer(agent):
    data = run_json("knowledge_add", agent.public_id, "--faq", "Do you sell coffee?", "No, tea.")
    document = KnowledgeDocument.objects.get(public_id=data["document_ids"][0])
    assert (data["documents"], data["chunks"]) == (1, 1)
    assert (document.kind, document.chunks.get().text) == (
        "faq",
        "Q: Do you sell coffee?\nA: No, tea.",
    )


def test_adding_a_file_again_replaces_its_document(agent, files):
    first = run_json("knowledge_add", agent.public_id, str(files / "notes.txt"))
    (files / "notes.txt").write_text("We sell tea and hot chocolate.\n")
    second = run_json("knowledge_add", agent.public_id, str(files / "notes.txt"))
    assert second["document_ids"] == first["document_ids"]
    document = KnowledgeDocument.objects.get()
    assert [c.text for c in document.chunks.all()] == ["We sell tea and hot chocolate."]


def test_knowledge_add_says_what_it_did(agent, files):
    out = run("knowledge_add", agent.public_id, str(files / "notes.txt"))
    document = KnowledgeDocument.objects.get()
    assert out.strip() == (
        f"Indexed 1 document(s), 1 chunk(s), for {agent.public_id}: {document.public_id}"
    )


def test_knowledge_list_shows_each_document(agent, files):
    run("knowledge_add", agent.public_id, str(files / "bakery.md"))
    document = KnowledgeDocument.objects.get()
    assert run_json("knowledge_list", agent.public_id) == {
        "agent_id": agent.public_id,
        "documents": [
            {
                "id": document.public_id,
                "title": "Sunrise Bakery",
                "kind": "markdown",
                "status": "ready",
                "chunks": 5,
                "source_name": "bakery.md",
                "error": "",
            }
        ],
    }
    assert document.public_id in run("knowledge_list", agent.public_id)


def test_knowledge_remove_deletes_documents_and_their_chunks(agent, files):
    ids = run_json(
        "knowledge_add", agent.public_id, str(files / "bakery.md"), str(files / "notes.txt")
    )["document_ids"]
    assert run_json("knowledge_remove", ids[0]) == {"removed": [ids[0]]}
    assert list(KnowledgeDocument.objects.values_list("public_id", flat=True)) == [ids[1]]
    assert set(KnowledgeChunk.objects.values_list("document__public_id", flat=True)) == {ids[1]}


# --- errors -------------------------------------------------------------------------------------


def test_an_unknown_agent_is_an_error(files):
    with pytest.raises(CommandError, match="No agent has the id 'agent_nope'"):
        run("knowledge_add", "agent_nope", str(files / "notes.txt"))
    with pytest.raises(CommandError, match="No agent has the id"):
        run("knowledge_list", "agent_nope")


def test_one_bad_file_adds_none_of_them(agent, files):
    (files / "scan.pdf").write_bytes(minimal_pdf([]))
    with pytest.raises(CommandError, match="no text that can be extracted"):
        run("knowledge_add", agent.public_id, str(files / "notes.txt"), str(files / "scan.pdf"))
    assert not KnowledgeDocument.objects.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("menu.docx", "menu.docx: unsupported file type"),
        ("missing.txt", "missing.txt: No such file"),
    ],
)
def test_an_unreadable_path_is_an_error(agent, files, name, message):
    if name.endswith(".docx"):
        (files / name).write_bytes(b"PK")
    with pytest.raises(CommandError, match=message):
        run("knowledge_add", agent.public_id, str(files / name))


def test_knowledge_add_needs_paths_or_a_question_and_answer(agent, files):
    with pytest.raises(CommandError, match="one of the two"):
        run("knowledge_add", agent.public_id)
    with pytest.raises(CommandError, match="one of the two"):
        run("knowledge_add", agent.public_id, str(files / "notes.txt"), "--faq", "Q?", "A.")


def test_removing_an_unknown_document_removes_none(agent, files):
    ids = run_json("knowledge_add", agent.public_id, str(files / "notes.txt"))["document_ids"]
    with pytest.raises(CommandError, match="No knowledge document has the id doc_nope"):
        run("knowledge_remove", ids[0], "doc_nope")
    assert KnowledgeDocument.objects.count() == 1
