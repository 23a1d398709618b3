"""An agent's knowledge in the dashboard: the list (pending until the background indexing is
done), adding a file, a pasted text or a question, the limits on each (a clear error, never a
500, nothing stored), a document's passages, removing one, and who may do what."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from agents.knowledge.models import KnowledgeDocument
from agents.knowledge.services import (
    knowledge_document_add,
    knowledge_document_index,
    knowledge_faq_add,
)
from tests.agents.knowledge_samples import BAKERY_MARKDOWN, minimal_pdf
from tests.factories import AgentFactory, make_staff_user
from thinnest_site.background import background_cancel_pending, background_wait_idle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_index_left_behind():
    # Uploads queue their indexing on the background threads: none may reach the next test.
    yield
    background_cancel_pending()
    assert background_wait_idle(timeout=60)


def url(agent, tail: str = "") -> str:
    return f"/dashboard/agents/{agent.public_id}/knowledge/{tail}"


def upload(client, agent, name: str, data: bytes, **fields):
    return client.post(
        url(agent),
        {"form": "upload", "upload-file": SimpleUploadedFile(name, data), **fields},
    )


def test_the_list_shows_each_documents_title_kind_status_passages_and_error(staff, agent):
    ready = knowledge_document_add(
        agent=agent, kind="markdown", content=BAKERY_MARKDOWN, queue_index=False
    )
    knowledge_document_index(document_id=ready.pk)
    knowledge_faq_add(
        agent=agent, question="Do you deliver?", answer="Within 5 miles.", queue_index=False
    )
    failed = knowledge_document_add(
        agent=agent, kind="text", content="Something to say.", title="Broken", queue_index=False
    )
    KnowledgeDocument.objects.filter(pk=failed.pk).update(status="failed", error="It broke.")

    response = staff.get(url(agent))
    assert response.status_code == 200
    page = response.content.decode()
    rows = page.split('id="documents"', 1)[1].split("</table>", 1)[0]
    assert "Sunrise Bakery" in rows and "Markdown" in rows and ">ready<" in rows
    assert "Do you deliver?" in rows and "Question and answer" in rows and "pending" in rows
    assert "Broken" in rows and ">failed<" in rows and "It broke." in rows
    assert f">{KnowledgeDocument.objects.get(pk=ready.pk).chunk_count}<" in rows
    # Pending documents: the page says indexing runs in the background, and refreshes itself.
    assert 'data-pending="true"' in page and "in the background" in page
    assert "dashboard/knowledge.js" in page


def test_the_agent_page_links_to_its_knowledge(staff, agent):
    page = staff.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert f'href="{url(agent)}"' in page


def test_an_uploaded_file_is_stored_pending_and_the_page_says_so(staff, agent):
    response = upload(staff, agent, "bakery.md", BAKERY_MARKDOWN.encode(), **{"upload-title": ""})
    assert response.status_code == 302 and response["Location"] == url(agent)
    document = KnowledgeDocument.objects.get(agent=agent)
    assert (document.kind, document.source_name, document.title) == (
        "markdown",
        "bakery.md",
        "Sunrise Bakery",
    )
    assert document.status == "pending"
    page = staff.get(url(agent)).content.decode()
    assert "is being indexed in the background" in page and "pending" in page


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_indexed_in_the_background_and_its_passages_are_shown(staff, agent):
    pdf = minimal_pdf(["Sunrise Bakery sells a rye loaf for 7 dollars 40."], title="Price list")
    assert upload(staff, agent, "prices.pdf", pdf).status_code == 302
    assert background_wait_idle(timeout=120)
    document = KnowledgeDocument.objects.get(agent=agent)
    assert (document.kind, document.status, document.chunk_count) == ("pdf", "ready", 1)
    page = staff.get(url(agent)).content.decode()
    assert 'data-pending="false"' in page and ">ready<" in page

    detail = staff.get(url(agent, f"{document.public_id}/"))
    assert detail.status_code == 200
    assert "rye loaf for 7 dollars 40" in detail.content.decode()


def test_a_file_added_again_replaces_its_document(staff, agent):
    upload(staff, agent, "hours.txt", b"We open at 7 am.")
    upload(staff, agent, "hours.txt", b"We open at 8 am.")
    document = KnowledgeDocument.objects.get(agent=agent)
    assert document.text == "We open at 8 am." and document.status == "pending"


def test_a_file_over_the_limit_gets_a_form_error_and_nothing_is_stored(staff, agent, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    response = upload(staff, agent, "big.txt", b"word " * 400)
    assert response.status_code == 413
    page = response.content.decode()
    assert "big.txt is 0.0 MB; the largest file accepted is 0.0 MB" in page
    assert 'id="id_upload-file-errors"' in page
    assert not KnowledgeDocument.objects.exists()


def test_a_body_far_over_the_file_limit_is_refused_before_it_is_read(staff, agent, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    response = upload(staff, agent, "huge.txt", b"x" * (1024 * 1024 + 5000))
    assert response.status_code == 413
    assert "The upload is 1.0 MB; the largest file accepted is 0.0 MB" in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_pasted_text_over_djangos_form_limit_gets_the_reason_not_a_bare_400(
    staff, agent, settings, encoding
):
    # Django refuses a form whose fields are over DATA_UPLOAD_MAX_MEMORY_SIZE as it parses it,
    # before any view runs (its CSRF check reads the form).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    data = {"form": "paste", "paste-kind": "text", "paste-text": "word " * 8000}
    if encoding == "multipart":
        response = staff.post(url(agent), data)
    else:
        response = staff.post(
            url(agent), urlencode(data), content_type="application/x-www-form-urlencoded"
        )
    assert response.status_code == 413
    page = response.content.decode()
    assert "The pasted text is too long" in page and "Upload it as a .txt file" in page
    assert not KnowledgeDocument.objects.exists()


def test_pasted_text_over_the_paste_limit_gets_a_field_error(staff, agent, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000  # the paste limit: 20,000 less 16 KB
    response = staff.post(
        url(agent), {"form": "paste", "paste-kind": "text", "paste-text": "word " * 1000}
    )
    assert response.status_code == 413
    assert 'id="id_paste-text-errors"' in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.docx", b"PK\x03\x04", "unsupported file type"),
        ("scan.pdf", b"%PDF-1.4 not really", "could not be read as a PDF"),
        ("empty.txt", b"   \n\n ", "The document has no text"),
    ],
)
def test_a_file_that_gives_no_text_gets_the_reason(staff, agent, name, data, reason):
    response = upload(staff, agent, name, data)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


def test_an_empty_upload_or_an_unknown_form_is_refused(staff, agent):
    response = staff.post(url(agent), {"form": "upload"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert staff.post(url(agent), {"form": "other"}).status_code == 400
    assert not KnowledgeDocument.objects.exists()


def test_pasted_text_and_a_question_are_added(staff, agent):
    response = staff.post(
        url(agent),
        {
            "form": "paste",
            "paste-title": "Opening hours",
            "paste-kind": "markdown",
            "paste-text": "# Hours\n\nWe open at 7 am.",
        },
    )
    assert response.status_code == 302
    response = staff.post(
        url(agent),
        {"form": "faq", "faq-question": "Do you deliver?", "faq-answer": "Yes, within 5 miles."},
    )
    assert response.status_code == 302
    documents = list(KnowledgeDocument.objects.filter(agent=agent).values_list("kind", "title"))
    assert documents == [("markdown", "Opening hours"), ("faq", "Do you deliver?")]


def test_a_question_without_an_answer_gets_a_field_error(staff, agent):
    response = staff.post(url(agent), {"form": "faq", "faq-question": "Do you deliver?"})
    assert response.status_code == 400
    assert 'id="id_faq-answer-errors"' in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


def test_a_pending_document_page_says_it_is_not_indexed_yet(staff, agent):
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    page = staff.get(url(agent, f"{document.public_id}/")).content.decode()
    assert "indexing runs in the background" in page


def test_another_agents_document_is_not_found_here(staff, agent):
    other = knowledge_faq_add(agent=AgentFactory(), question="Q?", answer="A.", queue_index=False)
    assert staff.get(url(agent, f"{other.public_id}/")).status_code == 404
    assert staff.post(url(agent, f"{other.public_id}/delete/")).status_code == 404
    assert KnowledgeDocument.objects.filter(pk=other.pk).exists()


def test_removing_a_document_asks_first_and_removes_it_on_post(staff, agent):
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    confirm = staff.get(url(agent, f"{document.public_id}/delete/"))
    assert confirm.status_code == 200 and "Remove “Q?”?" in confirm.content.decode()
    assert KnowledgeDocument.objects.filter(pk=document.pk).exists()
    response = staff.post(url(agent, f"{document.public_id}/delete/"))
    assert response.status_code == 302 and response["Location"] == url(agent)
    assert not KnowledgeDocument.objects.filter(pk=document.pk).exists()


def test_posts_without_a_csrf_token_are_refused(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff_user("s", superuser=True))
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    response = client.post(url(agent), {"form": "faq", "faq-question": "Q", "faq-answer": "A"})
    assert response.status_code == 403
    assert client.post(url(agent, f"{document.public_id}/delete/")).status_code == 403
    assert KnowledgeDocument.objects.count() == 1


def test_viewing_knowledge_does_not_allow_adding_or_removing(client, agent):
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    client.force_login(make_staff_user("reader", perms=["agents.view_knowledgedocument"]))
    page = client.get(url(agent))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Upload a file" not in html and "/delete/" not in html
    response = client.post(url(agent), {"form": "faq", "faq-question": "Q", "faq-answer": "A"})
    assert (
        response.status_code == 403 and "agents.add_knowledgedocument" in response.content.decode()
    )
    assert client.post(url(agent, f"{document.public_id}/delete/")).status_code == 403
    assert KnowledgeDocument.objects.count() == 1


def test_adding_and_removing_need_their_own_permissions(client, agent):
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    client.force_login(
        make_staff_user(
            "editor", perms=["agents.view_knowledgedocument", "agents.add_knowledgedocument"]
        )
    )
    html = client.get(url(agent)).content.decode()
    assert "Upload a file" in html and "/delete/" not in html
    assert client.post(url(agent, f"{document.public_id}/delete/")).status_code == 403
    client.force_login(
        make_staff_user(
            "remover",
            perms=["agents.view_knowledgedocument", "agents.delete_knowledgedocument"],
        )
    )
    assert client.post(url(agent, f"{document.public_id}/delete/")).status_code == 302
    assert not KnowledgeDocument.objects.exists()


def test_without_the_view_permission_the_pages_are_refused(client, agent):
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    client.force_login(make_staff_user("agents", perms=["agents.view_agent"]))
    assert client.get(url(agent)).status_code == 403
    assert client.get(url(agent, f"{document.public_id}/")).status_code == 403
    page = client.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert url(agent) not in page
