"""The agent page's chat box: its endpoint answers with the real (small) model, from the agent's
knowledge, with the sources and the time taken; bad input is a 4xx with the API's error body; a
missing model is said plainly; only staff who may view the agent may use it."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents.knowledge.services import knowledge_document_index, knowledge_faq_add
from agents.models import Agent
from agents.services import agent_update
from tests.factories import make_staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_model(settings):
    # The smallest packaged model, as tests/voice/test_conversation.py uses.
    settings.LLM_MODEL = "smollm2"
    settings.LLM_MODEL_PATH = ""


def chat(client, agent, body, **extra):
    return client.post(
        f"/dashboard/agents/{agent.public_id}/chat/",
        json.dumps(body) if not isinstance(body, str | bytes) else body,
        content_type="application/json",
        **extra,
    )


def error_of(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


# The replies are written on a thread of the view's own, which sees committed rows only.
@pytest.mark.django_db(transaction=True)
def test_a_question_is_answered_with_its_sources_and_latency(staff, agent):
    document = knowledge_faq_add(
        agent=agent,
        question="How much is the rye loaf?",
        answer="The rye loaf costs 7 dollars 40.",
        queue_index=False,
    )
    knowledge_document_index(document_id=document.pk)

    response = chat(
        staff,
        agent,
        {
            "question": "How much is the rye loaf?",
            "history": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi, how can I help?"},
            ],
            "context": {"company": "Sunrise Bakery"},
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"reply", "sources", "latency_ms"}
    assert isinstance(body["reply"], str) and body["reply"].strip()
    assert isinstance(body["latency_ms"], int) and body["latency_ms"] > 0
    assert body["sources"][0] == {
        "document_id": document.public_id,
        "title": "How much is the rye loaf?",
        "chunk_id": document.chunks.get().pk,
        "url": f"/dashboard/agents/{agent.public_id}/knowledge/{document.public_id}/",
    }


@pytest.mark.django_db(transaction=True)
def test_an_agent_without_knowledge_answers_without_sources(staff, agent):
    response = chat(staff, agent, {"question": "Hello, who are you?"})
    assert response.status_code == 200
    assert response.json()["sources"] == []


@pytest.mark.django_db(transaction=True)
def test_a_missing_model_is_said_plainly(staff, agent, settings):
    settings.LLM_MODEL_PATH = "/nonexistent/model.gguf"
    status, code, message = error_of(chat(staff, agent, {"question": "Hello?"}))
    assert (status, code) == (503, "model_unavailable")
    assert "/nonexistent/model.gguf" in message


@pytest.mark.django_db(transaction=True)
def test_an_agent_naming_a_model_this_server_lacks_is_said_plainly(staff, agent):
    # Saved while the file was there (a save checks it): it has gone since.
    Agent.objects.filter(pk=agent.pk).update(llm_model="/nonexistent/other.gguf")
    status, code, _ = error_of(chat(staff, agent, {"question": "Hello?"}))
    assert (status, code) == (503, "model_unavailable")


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ("not json", 400, "invalid_request", "must be JSON"),
        ([1, 2], 400, "invalid_request", "JSON object"),
        ({}, 400, "invalid_request", "question"),
        ({"question": "   "}, 400, "invalid_request", "question"),
        ({"question": "x" * 1001}, 400, "invalid_request", "1000 characters"),
        ({"question": "Hi", "history": "no"}, 400, "invalid_request", "history"),
        (
            {"question": "Hi", "history": [{"role": "user", "content": "a"}] * 21},
            400,
            "invalid_request",
            "at most 20 turns",
        ),
        (
            {"question": "Hi", "history": [{"role": "system", "content": "a"}]},
            400,
            "invalid_request",
            "role",
        ),
        ({"question": "Hi", "context": {"a": {"b": 1}}}, 400, "invalid_request", "context['a']"),
        ({"question": "Hi", "context": "x"}, 400, "invalid_request", "context"),
        ({"question": "x" * 70_000}, 413, "request_too_large", "KB"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason(staff, agent, body, status, code, says):
    got_status, got_code, message = error_of(chat(staff, agent, body))
    assert (got_status, got_code) == (status, code)
    assert says in message


def test_an_unknown_agent_is_a_404(staff):
    response = staff.post(
        "/dashboard/agents/agent_nope/chat/", {"question": "Hi"}, content_type="application/json"
    )
    assert error_of(response)[:2] == (404, "agent_not_found")


def test_only_posts_are_taken(staff, agent):
    assert staff.get(f"/dashboard/agents/{agent.public_id}/chat/").status_code == 405


def test_it_needs_a_staff_login_with_the_view_agent_permission(client, agent):
    body = {"question": " "}  # refused after the access checks, before the model: fast
    assert chat(client, agent, body).status_code == 302  # to the login page
    client.force_login(get_user_model().objects.create_user("visitor", password="pw-visitor-1"))
    assert chat(client, agent, body).status_code == 403
    client.force_login(make_staff_user("nobody"))
    assert chat(client, agent, body).status_code == 403
    client.force_login(make_staff_user("viewer", perms=["agents.view_agent"]))
    assert error_of(chat(client, agent, body))[:2] == (400, "invalid_request")


def test_it_is_csrf_protected(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff_user("s", superuser=True))
    assert chat(client, agent, {"question": " "}).status_code == 403


def test_the_agent_page_has_the_chat_box_for_viewers_with_the_placeholders(client, agent):
    agent_update(agent=agent, system_prompt="You answer for {{company}}.")
    client.force_login(make_staff_user("viewer", perms=["agents.view_agent"]))
    page = client.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert "Chat with this agent" in page and 'id="chatForm"' in page
    assert f'"url": "/dashboard/agents/{agent.public_id}/chat/"' in page
    assert 'class="talk-context-value" data-name="company"' in page
    assert "dashboard/chat.js" in page
    # The test call stays with those who may change the agent.
    assert "Talk to this agent" not in page
