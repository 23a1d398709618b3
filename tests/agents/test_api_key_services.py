from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import ApiKey
from agents.selectors import api_key_get_by_raw_key, origin_allowed_by_any_public_key
from agents.services import api_key_create, api_key_revoke, api_key_update
from tests.factories import AgentFactory
from thinnest_site.errors import InvalidRequest

pytestmark = pytest.mark.django_db


def test_it_stores_only_a_hash_of_the_key():
    api_key, raw = api_key_create(kind="secret", name="backend")
    assert raw.startswith("sk_") and len(raw) == 43
    assert raw.startswith(api_key.prefix)
    stored = ApiKey.objects.values().get(pk=api_key.pk)
    assert all(raw not in str(value) for value in stored.values())
    assert stored["key_hash"] != raw and len(stored["key_hash"]) == 64


def test_public_keys_start_with_pk():
    agent = AgentFactory()
    _, raw = api_key_create(
        kind="public", agents=[agent], allowed_origins=["https://a.example.com"]
    )
    assert raw.startswith("pk_")


def test_it_finds_a_key_by_its_raw_value_and_rejects_near_misses():
    api_key, raw = api_key_create(kind="secret")
    assert api_key_get_by_raw_key(raw) == api_key
    assert api_key_get_by_raw_key(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert api_key_get_by_raw_key(api_key.prefix) is None
    assert api_key_get_by_raw_key("") is None


def test_two_keys_never_share_a_prefix():
    prefixes = {api_key_create(kind="secret")[0].prefix for _ in range(50)}
    assert len(prefixes) == 50


def test_a_public_key_needs_an_agent():
    with pytest.raises(InvalidRequest, match="at least one agent"):
        api_key_create(kind="public", allowed_origins=["https://a.example.com"])
    assert not ApiKey.objects.exists()


def test_a_public_key_needs_an_origin():
    with pytest.raises(InvalidRequest, match="origins"):
        api_key_create(kind="public", agents=[AgentFactory()])
    assert not ApiKey.objects.exists()


def test_a_public_key_refuses_a_wildcard_origin():
    with pytest.raises(InvalidRequest, match="not allowed"):
        api_key_create(kind="public", agents=[AgentFactory()], allowed_origins=["*"])
    assert not ApiKey.objects.exists()


def test_it_refuses_an_unknown_kind():
    with pytest.raises(InvalidRequest, match="kind"):
        api_key_create(kind="admin")


def test_it_stores_origins_normalized():
    api_key, _ = api_key_create(
        kind="public",
        agents=[AgentFactory()],
        allowed_origins=["https://Shop.example.com/", "https://shop.example.com"],
    )
    assert api_key.allowed_origins == ["https://shop.example.com"]


def test_revoking_is_idempotent_and_keeps_the_first_time():
    api_key, _ = api_key_create(kind="secret")
    api_key_revoke(api_key=api_key)
    first = api_key.revoked_at
    api_key_revoke(api_key=api_key)
    api_key.refresh_from_db()
    assert api_key.revoked_at == first and first <= timezone.now()


def test_cors_origin_list_follows_key_changes(django_capture_on_commit_callbacks):
    agent = AgentFactory()
    assert not origin_allowed_by_any_public_key("https://a.example.com")
    with django_capture_on_commit_callbacks(execute=True):
        api_key, _ = api_key_create(
            kind="public", agents=[agent], allowed_origins=["https://a.example.com"]
        )
    assert origin_allowed_by_any_public_key("https://a.example.com")

    api_key_update(
        api_key=api_key,
        name="renamed",
        agents=[agent],
        allowed_origins=["https://b.example.com"],
        rate_limit_per_minute=None,
    )
    assert not origin_allowed_by_any_public_key("https://a.example.com")
    assert origin_allowed_by_any_public_key("https://b.example.com")

    api_key_revoke(api_key=api_key)
    assert not origin_allowed_by_any_public_key("https://b.example.com")
