from __future__ import annotations

import pytest

from agents.models import ApiKey
from agents.selectors import api_key_get_by_raw_key

pytestmark = pytest.mark.django_db


def test_creating_a_key_in_the_admin_shows_it_once_and_stores_a_hash(admin_client, agent):
    response = admin_client.post(
        "/admin/agents/apikey/add/",
        {
            "kind": "public",
            "name": "site",
            "agents": [agent.pk],
            "origins_text": "https://shop.example.com\nhttps://*.example.org",
            "rate_limit_per_minute": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    raw = next(m for m in shown if "pk_" in m).split("<code>")[1].split("</code>")[0]
    assert api_key_get_by_raw_key(raw) == api_key
    assert list(api_key.agents.all()) == [agent]
    assert api_key.allowed_origins == ["https://*.example.org", "https://shop.example.com"]

    change_page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()
    assert raw not in change_page and api_key.key_hash not in change_page


def test_the_admin_refuses_a_public_key_with_a_star_origin(admin_client, agent):
    response = admin_client.post(
        "/admin/agents/apikey/add/",
        {"kind": "public", "name": "x", "agents": [agent.pk], "origins_text": "*"},
    )
    assert response.status_code == 200
    assert "not allowed" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_call_pages_are_read_only(admin_client, agent, secret_key):
    from sessions.services import call_session_start

    session = call_session_start(agent=agent, api_key=secret_key[0]).session
    page = admin_client.get(f"/admin/call_sessions/callsession/{session.pk}/change/")
    assert page.status_code == 200
    assert session.token_nonce not in page.content.decode()
    assert admin_client.get("/admin/call_sessions/callsession/add/").status_code == 403


def test_admin_pages_render(admin_client, agent):
    for url in [
        "/admin/agents/agent/",
        f"/admin/agents/agent/{agent.pk}/change/",
        "/admin/agents/apikey/",
        "/admin/call_sessions/callsession/",
    ]:
        assert admin_client.get(url).status_code == 200, url
