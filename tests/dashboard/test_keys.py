"""The API key pages (dashboard/views/keys.py)."""

from __future__ import annotations

from html import escape

import pytest

from agents.models import ApiKey
from agents.selectors import api_key_get_by_raw_key
from agents.services import agent_deactivate, api_key_revoke
from tests.factories import AgentFactory, make_api_key, make_staff_user

pytestmark = pytest.mark.django_db


def test_a_new_secret_key_is_shown_once_and_never_stored(staff):
    response = staff.post("/dashboard/keys/new/", {"kind": "secret", "name": "backend"})
    assert response.status_code == 200
    key = ApiKey.objects.get(name="backend")
    raw = response.context["raw_key"]
    assert raw.startswith("sk_") and raw in response.content.decode()
    assert key.public_value == "" and raw not in str(key.__dict__)
    assert raw not in staff.get("/dashboard/keys/").content.decode()


def test_a_public_key_needs_agents_and_origins_and_feeds_the_embed_snippets(staff, agent):
    response = staff.post("/dashboard/keys/new/", {"kind": "public", "name": "site"})
    assert response.status_code == 400 and not ApiKey.objects.exists()
    assert "at least one agent" in response.content.decode()
    response = staff.post(
        "/dashboard/keys/new/",
        {
            "kind": "public",
            "name": "site",
            "agents": [agent.pk],
            "allowed_origins": "https://shop.example.com\n",
        },
    )
    raw = response.context["raw_key"]
    key = ApiKey.objects.get(name="site")
    assert key.allowed_origins == ["https://shop.example.com"]
    page = staff.get(f"/dashboard/embed/?agent={agent.public_id}&key={key.pk}").content.decode()
    assert raw in page and agent.public_id in page and "/voice/start" in page


def test_revoking_a_key_asks_first(staff):
    key, _ = make_api_key()
    assert "cannot be undone" in staff.get(f"/dashboard/keys/{key.pk}/revoke/").content.decode()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    staff.post(f"/dashboard/keys/{key.pk}/revoke/")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_a_key_form_shows_every_error_at_once(staff, agent):
    response = staff.post(
        "/dashboard/keys/new/",
        {
            "kind": "public",
            "name": "site",
            "allowed_origins": "ftp://files.example.com\nhttps://shop.example.com/path\n",
            "rate_limit_per_minute": "0",
        },
    )
    assert response.status_code == 400 and not ApiKey.objects.exists()
    errors = response.context["form"].errors
    assert "at least one agent" in errors["agents"][0]
    assert [e.split("'")[1] for e in errors["allowed_origins"]] == [
        "ftp://files.example.com",
        "https://shop.example.com/path",
    ]
    assert "greater than or equal to 1" in errors["rate_limit_per_minute"][0]
    page = response.content.decode()
    for messages in errors.values():
        for message in messages:
            assert page.count(escape(message)) == 2  # beside the field and in the summary


def test_a_public_key_without_origins_is_told_so_on_the_origins_field(staff, agent):
    response = staff.post(
        "/dashboard/keys/new/", {"kind": "public", "name": "site", "agents": [agent.pk]}
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "allowed_origins": ["A public key must list the web origins allowed to use it."]
    }


def test_editing_a_key_changes_its_settings_and_keeps_the_key(staff, agent):
    other = AgentFactory(name="Second line")
    old = AgentFactory(name="Retired line")
    key, raw = make_api_key(
        kind="public", agents=[agent, old], origins=["https://shop.example.com"]
    )
    agent_deactivate(agent=old)
    page = staff.get(f"/dashboard/keys/{key.pk}/").content.decode()
    assert 'name="kind"' not in page  # the kind is the key's prefix: not editable
    assert "https://shop.example.com</textarea>" in page and "Retired line" in page

    response = staff.post(
        f"/dashboard/keys/{key.pk}/",
        {
            "kind": "secret",  # ignored
            "name": "Main site",
            "agents": [agent.pk, other.pk],
            "allowed_origins": "https://shop.example.com\nHTTPS://www.Example.com:443\n",
            "rate_limit_per_minute": "30",
            "max_concurrent_calls": "4",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/keys/"
    key.refresh_from_db()
    assert (key.kind, key.name, key.rate_limit_per_minute, key.max_concurrent_calls) == (
        "public",
        "Main site",
        30,
        4,
    )
    assert key.allowed_origins == ["https://shop.example.com", "https://www.example.com"]
    assert set(key.agents.all()) == {agent, other}
    assert api_key_get_by_raw_key(raw) == key  # the same key: live sites go on working


def test_a_key_edit_with_errors_saves_nothing(staff, agent):
    key, _ = make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    response = staff.post(
        f"/dashboard/keys/{key.pk}/", {"name": "x", "agents": [], "allowed_origins": ""}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"agents", "allowed_origins"}
    key.refresh_from_db()
    assert key.name == "test key" and key.allowed_origins == ["https://shop.example.com"]


def test_editing_a_key_needs_the_change_permission(client, agent):
    key, _ = make_api_key()
    client.force_login(make_staff_user("viewer", perms=["agents.view_apikey"]))
    assert client.get(f"/dashboard/keys/{key.pk}/").status_code == 403
    assert client.post(f"/dashboard/keys/{key.pk}/", {"name": "x"}).status_code == 403
    assert ApiKey.objects.get(pk=key.pk).name == "test key"
    assert f"/dashboard/keys/{key.pk}/" not in client.get("/dashboard/keys/").content.decode()


def test_a_revoked_key_cannot_be_edited(staff):
    key, _ = make_api_key()
    api_key_revoke(api_key=key)
    assert staff.get(f"/dashboard/keys/{key.pk}/").status_code == 404
    assert staff.post(f"/dashboard/keys/{key.pk}/", {"name": "x"}).status_code == 404


def test_the_key_list_lets_public_keys_be_copied_again_and_never_secret_ones(staff, agent):
    public, public_raw = make_api_key(
        kind="public", agents=[agent], origins=["https://shop.example.com"]
    )
    secret, secret_raw = make_api_key(kind="secret")
    page = staff.get("/dashboard/keys/").content.decode()
    assert f'<code id="publicKey{public.pk}" hidden>{public_raw}</code>' in page
    assert f'data-copy="#publicKey{public.pk}"' in page
    assert secret_raw not in page and f"publicKey{secret.pk}" not in page
