from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, ApiKey
from agents.selectors import api_key_get_by_raw_key

pytestmark = pytest.mark.django_db


def run_json(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_agent_prints_its_id_as_json():
    data = run_json(
        "create_agent", "--name", "Support", "--prompt", "Be brief.", "--greeting", "Hi!"
    )
    agent = Agent.objects.get(public_id=data["agent_id"])
    assert data["agent_id"].startswith("agent_")
    assert (agent.name, agent.system_prompt, agent.greeting) == ("Support", "Be brief.", "Hi!")


def test_create_api_key_prints_a_working_secret_key():
    data = run_json("create_api_key", "--kind", "secret", "--name", "backend")
    assert set(data) == {"key", "kind", "prefix"}
    assert data["kind"] == "secret" and data["key"].startswith(data["prefix"])
    assert api_key_get_by_raw_key(data["key"]).name == "backend"


def test_create_api_key_makes_a_public_key_for_agents_and_origins():
    agent_id = run_json("create_agent", "--name", "Web")["agent_id"]
    data = run_json(
        "create_api_key",
        "--kind",
        "public",
        "--agent",
        agent_id,
        "--origin",
        "https://shop.example.com",
        "--origin",
        "https://*.example.org",
    )
    api_key = ApiKey.objects.get(prefix=data["prefix"])
    assert data["key"].startswith("pk_")
    assert list(api_key.agents.values_list("public_id", flat=True)) == [agent_id]
    assert api_key.allowed_origins == ["https://*.example.org", "https://shop.example.com"]


def test_create_api_key_explains_a_public_key_without_origins():
    agent_id = run_json("create_agent", "--name", "Web")["agent_id"]
    with pytest.raises(CommandError, match="origins"):
        call_command("create_api_key", "--kind", "public", "--agent", agent_id)
    assert not ApiKey.objects.exists()


def test_create_api_key_names_an_unknown_agent():
    with pytest.raises(CommandError, match="agent_missing"):
        call_command("create_api_key", "--kind", "secret", "--agent", "agent_missing")


@pytest.mark.parametrize("by", ["prefix", "key"])
def test_revoke_api_key_by_prefix_or_full_key(by):
    data = run_json("create_api_key", "--kind", "secret")
    revoked = run_json("revoke_api_key", data[by])
    assert revoked["prefix"] == data["prefix"]
    assert ApiKey.objects.get(prefix=data["prefix"]).is_revoked


def test_revoke_api_key_says_when_nothing_matches():
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "sk_nothing1")


def test_bootstrap_demo_is_idempotent_and_its_keys_work(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run_json("bootstrap_demo")
    second = run_json("bootstrap_demo")
    assert first == second
    assert Agent.objects.filter(public_id=settings.DEMO_AGENT_ID).count() == 1
    assert ApiKey.objects.count() == 2
    public = api_key_get_by_raw_key(first["public_key"])
    assert public.is_public and "http://127.0.0.1:8000" in public.allowed_origins
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o077 == 0


def test_bootstrap_demo_replaces_a_revoked_demo_key(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run_json("bootstrap_demo")
    call_command("revoke_api_key", first["secret_key"], stdout=StringIO())
    second = run_json("bootstrap_demo")
    assert second["secret_key"] != first["secret_key"]
    assert not api_key_get_by_raw_key(second["secret_key"]).is_revoked
    assert second["public_key"] == first["public_key"]


def test_bootstrap_demo_adds_new_origins_to_the_demo_key(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run_json("bootstrap_demo")
    second = run_json("bootstrap_demo", "--origin", "http://127.0.0.1:9000")
    assert second["public_key"] == first["public_key"]
    assert "http://127.0.0.1:9000" in api_key_get_by_raw_key(second["public_key"]).allowed_origins
    assert "http://127.0.0.1:8000" in second["public_key_origins"]
