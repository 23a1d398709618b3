from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from agents.models import ApiKey
from agents.services import api_key_revoke
from sessions.models import CallSession
from tests.conftest import SHOP_ORIGIN
from tests.factories import AgentFactory, make_api_key

pytestmark = pytest.mark.django_db
URL = "/voice/start"


def start(
    client, raw_key=None, body=None, *, origin=None, content_type="application/json", **headers
):
    if raw_key is not None:
        headers["Authorization"] = f"Bearer {raw_key}"
    if origin is not None:
        headers["Origin"] = origin
    data = body if isinstance(body, str | bytes) else json.dumps(body if body is not None else {})
    return client.post(URL, data=data, content_type=content_type, headers=headers)


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_a_secret_key_starts_a_call_as_the_seed_documents(client, agent, secret_key):
    context = {"user_name": "Jane Doe", "page": "pricing"}
    response = start(client, secret_key[1], {"agent_id": agent.public_id, "context": context})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session_id", "token", "websocket_url"}
    assert body["session_id"].startswith("session_")
    url = urlsplit(body["websocket_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"ws://testserver/ws/{body['session_id']}"
    # The token rides in the URL too (the seed's code may never send `auth`; see the consumer).
    assert parse_qs(url.query) == {"token": [body["token"]]}
    session = CallSession.objects.get(public_id=body["session_id"])
    assert session.agent == agent
    assert session.api_key == secret_key[0]
    assert session.context == context
    assert session.status == CallSession.Status.CREATED
    assert session.client_ip == "127.0.0.1"


def test_context_is_optional(client, agent, secret_key):
    response = start(client, secret_key[1], {"agent_id": agent.public_id})
    assert response.status_code == 201
    assert CallSession.objects.get().context == {}


def test_a_public_key_starts_a_call_from_an_allowed_origin(client, agent, public_key):
    response = start(client, public_key[1], {"agent_id": agent.public_id}, origin=SHOP_ORIGIN)
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert CallSession.objects.get().origin == SHOP_ORIGIN


def test_it_records_the_key_use(client, agent, secret_key):
    assert secret_key[0].last_used_at is None
    start(client, secret_key[1], {"agent_id": agent.public_id})
    secret_key[0].refresh_from_db()
    assert secret_key[0].last_used_at is not None


@override_settings(PUBLIC_BASE_URL="https://voice.example.com")
def test_websocket_url_uses_the_public_base_url(client, agent, secret_key):
    body = start(client, secret_key[1], {"agent_id": agent.public_id}).json()
    assert body["websocket_url"].startswith(f"wss://voice.example.com/ws/{body['session_id']}?")


def test_forwarded_proto_is_ignored_without_a_trusted_proxy(client, agent, secret_key):
    response = start(
        client, secret_key[1], {"agent_id": agent.public_id}, X_Forwarded_Proto="https"
    )
    assert response.json()["websocket_url"].startswith("ws://testserver/")


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    USE_X_FORWARDED_HOST=True,
    ALLOWED_HOSTS=["voice.example.com"],
)
def test_forwarded_proto_and_host_are_honoured_behind_a_trusted_proxy(client, agent, secret_key):
    response = start(
        client,
        secret_key[1],
        {"agent_id": agent.public_id},
        X_Forwarded_Proto="https",
        X_Forwarded_Host="voice.example.com",
    )
    assert response.json()["websocket_url"].startswith("wss://voice.example.com/ws/")


@override_settings(ICE_SERVERS=[{"urls": "stun:stun.example.com:3478"}])
def test_it_returns_configured_ice_servers(client, agent, secret_key):
    body = start(client, secret_key[1], {"agent_id": agent.public_id}).json()
    assert body["ice_servers"] == [{"urls": "stun:stun.example.com:3478"}]


# --- errors -------------------------------------------------------------------------------------


def test_it_rejects_a_missing_key(client, agent):
    response = start(client, None, {"agent_id": agent.public_id})
    assert_error(response, 401, "invalid_api_key")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"])
def test_it_rejects_a_malformed_authorization_header(client, agent, header):
    response = client.post(
        URL,
        data=json.dumps({"agent_id": agent.public_id}),
        content_type="application/json",
        headers={"Authorization": header},
    )
    assert_error(response, 401, "invalid_api_key")


def test_it_rejects_an_unknown_key(client, agent, secret_key):
    tampered = secret_key[1][:-4] + "abcd"
    assert_error(start(client, tampered, {"agent_id": agent.public_id}), 401, "invalid_api_key")


def test_it_rejects_a_revoked_key(client, agent, secret_key):
    api_key_revoke(api_key=secret_key[0])
    response = start(client, secret_key[1], {"agent_id": agent.public_id})
    assert_error(response, 401, "invalid_api_key")
    assert "revoked" in response.json()["error"]["message"]


def test_it_rejects_a_body_that_is_not_json(client, agent, secret_key):
    response = start(client, secret_key[1], "agent_id=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_it_rejects_a_body_without_content_type(client, agent, secret_key):
    response = start(client, secret_key[1], '{"agent_id": "x"}', content_type="")
    assert_error(response, 415, "unsupported_media_type")


def test_it_rejects_malformed_json(client, agent, secret_key):
    assert_error(start(client, secret_key[1], '{"agent_id": '), 400, "invalid_request")


@pytest.mark.parametrize("body", ["[]", '"agent_x"', "null", "42"])
def test_it_rejects_json_that_is_not_an_object(client, agent, secret_key, body):
    assert_error(start(client, secret_key[1], body), 400, "invalid_request")


def test_it_rejects_a_missing_agent_id(client, agent, secret_key):
    response = start(client, secret_key[1], {"context": {}})
    assert_error(response, 400, "invalid_request")
    assert "agent_id" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "context",
    [[], "pricing", 3, {"nested": {"a": 1}}, {"list": [1, 2]}],
)
def test_it_rejects_a_context_that_is_not_a_flat_object(client, agent, secret_key, context):
    response = start(client, secret_key[1], {"agent_id": agent.public_id, "context": context})
    assert_error(response, 400, "invalid_request")
    assert "context" in response.json()["error"]["message"]


def test_it_rejects_a_context_over_4_kb(client, agent, secret_key):
    context = {"notes": "x" * 4100}
    response = start(client, secret_key[1], {"agent_id": agent.public_id, "context": context})
    assert_error(response, 400, "invalid_request")
    assert "4096" in response.json()["error"]["message"]


def test_it_accepts_a_context_of_exactly_4_kb(client, agent, secret_key):
    overhead = len('{"notes":""}')
    context = {"notes": "x" * (4096 - overhead)}
    response = start(client, secret_key[1], {"agent_id": agent.public_id, "context": context})
    assert response.status_code == 201


def test_it_refuses_an_oversized_body_before_parsing(client, agent, secret_key):
    body = json.dumps({"agent_id": agent.public_id, "padding": "x" * 20000})
    assert_error(start(client, secret_key[1], body), 413, "request_too_large")


def test_it_answers_404_for_an_unknown_agent(client, agent, secret_key):
    assert_error(start(client, secret_key[1], {"agent_id": "agent_nope"}), 404, "agent_not_found")


def test_it_answers_404_for_an_inactive_agent(client, secret_key):
    inactive = AgentFactory(is_active=False)
    response = start(client, secret_key[1], {"agent_id": inactive.public_id})
    assert_error(response, 404, "agent_not_found")


def test_a_secret_key_limited_to_agents_cannot_start_others(client, agent):
    other = AgentFactory()
    _, raw = make_api_key(kind=ApiKey.Kind.SECRET, agents=[other])
    response = start(client, raw, {"agent_id": agent.public_id})
    assert_error(response, 403, "agent_not_allowed")


def test_a_public_key_is_refused_from_another_origin(client, agent, public_key):
    response = start(
        client, public_key[1], {"agent_id": agent.public_id}, origin="https://evil.example.net"
    )
    assert_error(response, 403, "origin_not_allowed")
    assert "https://evil.example.net" in response.json()["error"]["message"]


def test_a_public_key_is_refused_without_an_origin(client, agent, public_key):
    response = start(client, public_key[1], {"agent_id": agent.public_id})
    assert_error(response, 403, "origin_not_allowed")


def test_a_public_key_is_refused_for_another_agent(client, agent, public_key):
    other = AgentFactory()
    response = start(client, public_key[1], {"agent_id": other.public_id}, origin=SHOP_ORIGIN)
    assert_error(response, 403, "agent_not_allowed")


def test_other_methods_get_a_json_405(client, secret_key):
    response = client.get(URL, headers={"Authorization": f"Bearer {secret_key[1]}"})
    assert_error(response, 405, "method_not_allowed")


# --- rate limits --------------------------------------------------------------------------------


def test_a_key_is_limited_to_its_own_rate(client, agent):
    _, raw = make_api_key(kind=ApiKey.Kind.SECRET, rate_limit_per_minute=3)
    statuses = [start(client, raw, {"agent_id": agent.public_id}).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = start(client, raw, {"agent_id": agent.public_id})
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert CallSession.objects.count() == 3


def test_one_key_being_limited_does_not_limit_another(client, agent):
    _, busy = make_api_key(kind=ApiKey.Kind.SECRET, rate_limit_per_minute=1)
    _, calm = make_api_key(kind=ApiKey.Kind.SECRET, rate_limit_per_minute=1)
    assert start(client, busy, {"agent_id": agent.public_id}).status_code == 201
    assert start(client, busy, {"agent_id": agent.public_id}).status_code == 429
    assert start(client, calm, {"agent_id": agent.public_id}).status_code == 201


@override_settings(START_CALL_IP_RATE="3/min")
def test_an_ip_is_limited_even_with_bad_keys(client, agent, secret_key):
    for _ in range(3):
        assert start(client, "sk_wrongwrongwrong", {"agent_id": agent.public_id}).status_code == 401
    response = start(client, secret_key[1], {"agent_id": agent.public_id})
    assert_error(response, 429, "rate_limited")
    assert "Retry-After" in response.headers
    assert CallSession.objects.count() == 0


@override_settings(START_CALL_IP_RATE="2/min")
def test_the_ip_limit_counts_each_client_ip(client, agent, secret_key):
    for _ in range(2):
        start(client, secret_key[1], {"agent_id": agent.public_id})
    assert start(client, secret_key[1], {"agent_id": agent.public_id}).status_code == 429
    other_ip = client.post(
        URL,
        data=json.dumps({"agent_id": agent.public_id}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret_key[1]}"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert other_ip.status_code == 201


# --- CORS ---------------------------------------------------------------------------------------


def preflight(client, origin):
    return client.options(
        URL,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_preflight_is_answered_for_an_origin_a_public_key_allows(client, public_key):
    response = preflight(client, SHOP_ORIGIN)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_preflight_is_answered_for_a_wildcard_subdomain(client, agent):
    make_api_key(kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=["https://*.example.org"])
    response = preflight(client, "https://eu.shop.example.org")
    assert response.headers["Access-Control-Allow-Origin"] == "https://eu.shop.example.org"


def test_a_page_on_an_origin_no_key_allows_can_read_why_it_was_refused(client, public_key):
    # The preflight is answered, so the browser sends the POST and lets the page read the 403;
    # the origin check on the POST is what refuses it.
    assert preflight(client, "https://evil.example.net").status_code == 200
    agent_id = public_key[0].agents.get().public_id
    response = start(
        client, public_key[1], {"agent_id": agent_id}, origin="https://evil.example.net"
    )
    assert response.status_code == 403
    assert response.headers["Access-Control-Allow-Origin"] == "https://evil.example.net"
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "https://evil.example.net" in response.json()["error"]["message"]
    assert not CallSession.objects.exists()


def test_cors_never_allows_credentials(client, public_key):
    assert "Access-Control-Allow-Credentials" not in preflight(client, SHOP_ORIGIN).headers


def test_cors_is_limited_to_the_start_call_endpoint(client, public_key):
    response = client.get("/api/schema/", headers={"Origin": SHOP_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


# --- one list of agent settings ---------------------------------------------------------------


def test_every_call_spec_setting_is_an_agent_field_the_worker_gets(agent):
    # A setting added to the CallSpec (what the media worker runs a call with) without an Agent
    # field of that name, or the other way round, fails here: no list is copied by hand.
    from dataclasses import fields

    from agents.models import Agent
    from sessions.selectors import call_spec_build
    from voice.protocol import CallSpec

    spec_fields = {f.name for f in fields(CallSpec)} - {"session_id", "agent_id", "context"}
    agent_fields = {f.name for f in Agent._meta.get_fields()}
    assert spec_fields <= agent_fields, spec_fields - agent_fields
    session = CallSession.objects.create(agent=agent, token_nonce="n", context={"a": "b"})
    spec = call_spec_build(session)
    assert {name: getattr(spec, name) for name in spec_fields} == {
        name: getattr(agent, name) for name in spec_fields
    }
    assert (spec.session_id, spec.agent_id, spec.context) == (
        session.public_id,
        agent.public_id,
        {"a": "b"},
    )


def test_a_call_no_media_worker_would_take_is_refused_up_front(client, agent, secret_key):
    from datetime import timedelta

    from django.utils import timezone

    from sessions.models import MediaWorkerRecord

    now = timezone.now()
    full = MediaWorkerRecord.objects.create(
        name="w1", host="h", pid=1, capacity=8, calls=2, free=0, started_at=now, seen_at=now
    )
    # A dead worker's room does not count.
    MediaWorkerRecord.objects.create(
        name="w0",
        host="h",
        pid=2,
        capacity=8,
        free=8,
        started_at=now,
        seen_at=now - timedelta(minutes=1),
    )
    body = {"agent_id": agent.public_id}
    assert_error(start(client, secret_key[1], body), 503, "at_capacity")
    assert not CallSession.objects.exists()  # nothing issued, nothing stored

    full.free = 1
    full.save()
    assert start(client, secret_key[1], body).status_code == 201
