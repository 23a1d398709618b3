from __future__ import annotations

import re
import zlib

import pytest
from django.core import signing

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
    raw = response.context["raw_key"]
    assert raw.startswith("pk_") and raw in response.content.decode()
    assert api_key_get_by_raw_key(raw) == api_key
    assert list(api_key.agents.all()) == [agent]
    assert api_key.allowed_origins == ["https://*.example.org", "https://shop.example.com"]

    change_page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()
    assert raw not in change_page and api_key.key_hash not in change_page


def readable_texts(cookie_value: str) -> list[str]:
    """A cookie's value as an attacker reads it: as sent, and decoded when it is a value signed
    by django.core.signing (signed, not encrypted: base64 of JSON, maybe zlib-compressed)."""
    texts = [cookie_value]
    payload = cookie_value.split(":", 1)[0]
    try:
        data = signing.b64_decode(payload.removeprefix(".").encode())
        if payload.startswith("."):
            data = zlib.decompress(data)
        texts.append(data.decode(errors="replace"))
    except (ValueError, zlib.error):
        pass
    return texts


def test_a_secret_key_created_in_the_admin_never_travels_in_a_cookie(admin_client):
    responses = [
        admin_client.post(
            "/admin/agents/apikey/add/",
            {"kind": "secret", "name": "backend", "origins_text": "", "rate_limit_per_minute": ""},
        )
    ]
    # Whatever the admin answers, follow it as a browser would, to the page the user sees.
    while responses[-1].status_code in (301, 302):
        responses.append(admin_client.get(responses[-1]["Location"]))
    api_key = ApiKey.objects.get()
    page = responses[-1]
    assert page.status_code == 200
    [raw] = {
        k for k in re.findall(r"sk_[\w-]{20,}", page.content.decode()) if api_key_get_by_raw_key(k)
    }
    assert api_key_get_by_raw_key(raw) == api_key

    for response in [*responses, admin_client.get("/admin/agents/apikey/")]:
        for morsel in response.cookies.values():
            assert not any(raw in text for text in readable_texts(morsel.value)), morsel.key
    for morsel in admin_client.cookies.values():
        assert not any(raw in text for text in readable_texts(morsel.value)), morsel.key
    assert page.content.decode().count(raw) == 1
    assert raw not in admin_client.get("/admin/agents/apikey/").content.decode()


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


def test_the_admin_key_form_sets_the_concurrent_call_limit(admin_client, agent):
    response = admin_client.post(
        "/admin/agents/apikey/add/",
        {
            "kind": "secret",
            "name": "backend",
            "origins_text": "",
            "rate_limit_per_minute": "",
            "max_concurrent_calls": "3",
        },
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    assert api_key.max_concurrent_calls == 3
    change_url = f"/admin/agents/apikey/{api_key.pk}/change/"
    assert 'name="max_concurrent_calls"' in admin_client.get(change_url).content.decode()
    response = admin_client.post(
        change_url,
        {
            "name": "backend",
            "origins_text": "",
            "rate_limit_per_minute": "",
            "max_concurrent_calls": "7",
        },
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.max_concurrent_calls == 7


def test_the_admin_agent_form_has_every_setting(admin_client, agent):
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    for field in (
        "stt_model_path",
        "llm_model",
        "turn_detection",
        "turn_silence_ms",
        "recording_enabled",
    ):
        assert f'name="{field}"' in page, field
