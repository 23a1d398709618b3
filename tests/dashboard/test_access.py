"""Who may open the dashboard's pages and actions: anonymous visitors go to the login page,
users who are not staff are refused, staff need the permission of what a page shows or changes
(dashboard/access.py); and the way in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents.knowledge.services import knowledge_faq_add
from agents.models import Agent, ApiKey
from sessions.models import CallSession
from tests.dashboard.test_agents import agent_form
from tests.factories import make_api_key, make_staff_user

pytestmark = pytest.mark.django_db


def dashboard_urls(agent, call, key) -> list[str]:
    document = knowledge_faq_add(agent=agent, question="Q?", answer="A.", queue_index=False)
    return [
        "/dashboard/",
        "/dashboard/agents/",
        "/dashboard/agents/new/",
        f"/dashboard/agents/{agent.public_id}/",
        f"/dashboard/agents/{agent.public_id}/deactivate/",
        f"/dashboard/agents/{agent.public_id}/reactivate/",
        f"/dashboard/agents/{agent.public_id}/duplicate/",
        f"/dashboard/agents/{agent.public_id}/knowledge/",
        f"/dashboard/agents/{agent.public_id}/knowledge/{document.public_id}/",
        f"/dashboard/agents/{agent.public_id}/knowledge/{document.public_id}/delete/",
        "/dashboard/keys/",
        "/dashboard/keys/new/",
        f"/dashboard/keys/{key.pk}/",
        f"/dashboard/keys/{key.pk}/revoke/",
        "/dashboard/embed/",
        "/dashboard/calls/",
        "/dashboard/calls/export.csv",
        f"/dashboard/calls/{call.public_id}/",
        f"/dashboard/calls/{call.public_id}/export.json",
        f"/dashboard/calls/{call.public_id}/recording.ogg",
        "/dashboard/analytics/",
        "/dashboard/password/",
        "/dashboard/voice-preview/?engine=espeak&text=hi",
    ]


POST_ACTIONS = [
    "/dashboard/agents/new/",
    "/dashboard/agents/{agent}/",
    "/dashboard/agents/{agent}/deactivate/",
    "/dashboard/agents/{agent}/reactivate/",
    "/dashboard/agents/{agent}/duplicate/",
    "/dashboard/agents/{agent}/talk/",
    "/dashboard/agents/{agent}/chat/",
    "/dashboard/agents/{agent}/knowledge/",
    "/dashboard/keys/new/",
    "/dashboard/keys/{key}/",
    "/dashboard/keys/{key}/revoke/",
]


# --- access -----------------------------------------------------------------------------------


def test_every_page_sends_anonymous_visitors_to_the_login_page(client, agent, call):
    key, _ = make_api_key()
    for url in dashboard_urls(agent, call, key):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/dashboard/login/?next="), url


def test_every_page_and_action_refuses_users_who_are_not_staff(client, agent, call):
    key, _ = make_api_key()
    client.force_login(get_user_model().objects.create_user("visitor", password="pw-visitor-1"))
    for url in dashboard_urls(agent, call, key):
        assert client.get(url).status_code == 403, url
    for url in POST_ACTIONS:
        url = url.format(agent=agent.public_id, key=key.pk)
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert Agent.objects.get(pk=agent.pk).is_active and key.revoked_at is None
    assert CallSession.objects.count() == 1


def test_a_staff_user_without_permissions_may_not_list_or_create_keys(client):
    client.force_login(make_staff_user("nobody"))
    assert client.get("/dashboard/keys/").status_code == 403
    response = client.post("/dashboard/keys/new/", {"kind": "secret", "name": "backend"})
    assert response.status_code == 403
    assert "agents.add_apikey" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_staff_user_with_the_key_permissions_lists_and_creates_keys(client):
    client.force_login(make_staff_user("keys", perms=["agents.view_apikey", "agents.add_apikey"]))
    response = client.post("/dashboard/keys/new/", {"kind": "secret", "name": "backend"})
    assert response.status_code == 200 and response.context["raw_key"].startswith("sk_")
    assert client.get("/dashboard/keys/").status_code == 200
    assert ApiKey.objects.get().name == "backend"
    # Revoking is a change: not granted here.
    key = ApiKey.objects.get()
    assert client.post(f"/dashboard/keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_without_permissions_a_staff_user_sees_only_the_overview_and_changes_nothing(
    client, agent, call
):
    key, _ = make_api_key()
    client.force_login(make_staff_user("nobody"))
    for url in dashboard_urls(agent, call, key):
        expected = 200 if url in ("/dashboard/", "/dashboard/password/") else 403
        assert client.get(url).status_code == expected, url
    for url in POST_ACTIONS:
        url = url.format(agent=agent.public_id, key=key.pk)
        assert client.post(url, agent_form()).status_code == 403, url
    overview = client.get("/dashboard/").content.decode()
    assert call.public_id not in overview and "/dashboard/keys/" not in overview
    agent_after = Agent.objects.get(pk=agent.pk)
    assert agent_after.is_active and agent_after.name == agent.name
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert Agent.objects.count() == 1 and CallSession.objects.count() == 1


def test_viewing_an_agent_does_not_allow_saving_it(client, agent):
    client.force_login(make_staff_user("viewer", perms=["agents.view_agent"]))
    page = client.get(f"/dashboard/agents/{agent.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Save<" not in html and "Talk to this agent" not in html and "/deactivate/" not in html
    response = client.post(f"/dashboard/agents/{agent.public_id}/", agent_form(name="Renamed"))
    assert response.status_code == 403
    assert Agent.objects.get(pk=agent.pk).name == agent.name


def test_links_to_what_the_user_may_not_do_are_hidden(client, agent):
    make_api_key()
    client.force_login(make_staff_user("reader", perms=["agents.view_apikey"]))
    page = client.get("/dashboard/keys/").content.decode()
    assert "/dashboard/keys/new/" not in page and "/revoke/" not in page
    assert "/dashboard/calls/" not in page and "/dashboard/agents/" not in page
    assert 'href="/dashboard/keys/"' in page


def test_anonymous_posts_change_nothing(client, agent):
    key, _ = make_api_key()
    for url in POST_ACTIONS:
        response = client.post(url.format(agent=agent.public_id, key=key.pk), {"name": "x"})
        assert response.status_code == 302
    assert Agent.objects.get(pk=agent.pk).is_active
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_every_page_renders_for_staff(staff, agent, call):
    key, _ = make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    for url in dashboard_urls(agent, call, key):
        if url.endswith("recording.ogg"):
            continue  # this call has none (tests/sessions/test_recordings.py plays one)
        assert staff.get(url).status_code == 200, url


def test_posts_without_a_csrf_token_are_refused(agent):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(make_staff_user("s", superuser=True))
    key, _ = make_api_key()
    for url in POST_ACTIONS:
        assert (
            csrf_client.post(url.format(agent=agent.public_id, key=key.pk), {}).status_code == 403
        )
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_login_and_logout(client):
    get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    response = client.post("/dashboard/login/", {"username": "boss", "password": "wrong"})
    assert (
        response.status_code == 200 and "correct username and password" in response.content.decode()
    )
    response = client.post("/dashboard/login/", {"username": "boss", "password": "pw-boss-123"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    assert client.post("/dashboard/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


# --- the front door ---------------------------------------------------------------------------


def test_the_home_page_sends_new_users_to_the_dashboard(client):
    page = client.get("/").content.decode()
    links = re.findall(r'href="([^"]+)"', page.split("<main>", 1)[1])
    assert links[0] == "/dashboard/"
    assert 'href="/admin/">Admin<' not in page  # the site header's first stop was the admin


def test_the_readme_quick_start_and_dashboard_sections_point_at_the_dashboard():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "http://127.0.0.1:8000/dashboard/" in quick_start
    assert quick_start.index("/dashboard/") < quick_start.index("/admin/")
