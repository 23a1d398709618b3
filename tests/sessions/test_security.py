"""Abuse attempts against /voice/start: none of them may create a session."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agents.models import ApiKey
from agents.services import api_key_revoke
from sessions.models import CallSession
from tests.conftest import SHOP_ORIGIN
from tests.factories import AgentFactory, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(agent):
    _, public = make_api_key(kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=[SHOP_ORIGIN])
    revoked, revoked_raw = make_api_key(kind=ApiKey.Kind.SECRET)
    api_key_revoke(api_key=revoked)
    return {"public": public, "revoked": revoked_raw}


def attempts(agent, keys):
    other_agent = AgentFactory()
    ok = json.dumps({"agent_id": agent.public_id})
    return {
        "wrong origin": (keys["public"], SHOP_ORIGIN.replace("shop", "evil"), ok, 403),
        "lookalike origin": (keys["public"], "https://shop.example.com.evil.net", ok, 403),
        "http instead of https": (keys["public"], SHOP_ORIGIN.replace("https", "http"), ok, 403),
        "missing origin with a public key": (keys["public"], None, ok, 403),
        "null origin (sandboxed iframe)": (keys["public"], "null", ok, 403),
        "public key for another agent": (
            keys["public"],
            SHOP_ORIGIN,
            json.dumps({"agent_id": other_agent.public_id}),
            403,
        ),
        "revoked key": (keys["revoked"], None, ok, 401),
        "public key prefix only": (keys["public"][:11], SHOP_ORIGIN, ok, 401),
        "malformed body": (keys["public"], SHOP_ORIGIN, '{"agent_id": [', 400),
        "oversized body": (
            keys["public"],
            SHOP_ORIGIN,
            json.dumps({"agent_id": agent.public_id, "pad": "x" * 1_000_000}),
            413,
        ),
        "oversized context": (
            keys["public"],
            SHOP_ORIGIN,
            json.dumps({"agent_id": agent.public_id, "context": {"x": "y" * 5000}}),
            400,
        ),
        "nested context": (
            keys["public"],
            SHOP_ORIGIN,
            json.dumps({"agent_id": agent.public_id, "context": {"x": {"y": 1}}}),
            400,
        ),
        "agent id injection": (
            keys["public"],
            SHOP_ORIGIN,
            json.dumps({"agent_id": "' OR 1=1 --"}),
            404,
        ),
    }


def test_no_abuse_attempt_creates_a_session(client, agent, keys):
    for name, (raw_key, origin, body, status) in attempts(agent, keys).items():
        headers = {"Authorization": f"Bearer {raw_key}"}
        if origin:
            headers["Origin"] = origin
        response = client.post(
            "/voice/start", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == status, (name, response.content)
        assert response.json()["error"]["code"], name
    assert CallSession.objects.count() == 0


def test_the_same_requests_done_right_do_create_sessions(client, agent, keys):
    # Guards the test above against passing because nothing ever works.
    response = client.post(
        "/voice/start",
        data=json.dumps({"agent_id": agent.public_id}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys['public']}", "Origin": SHOP_ORIGIN},
    )
    assert response.status_code == 201
    assert CallSession.objects.count() == 1


# --- what a stranger with the published public key could do (issue: hardening) -----------------


def post_start(client, raw_key, body, *, origin=SHOP_ORIGIN, ip="127.0.0.1", **extra):
    headers = {"Authorization": f"Bearer {raw_key}"}
    if origin:
        headers["Origin"] = origin
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    # generic(): post() would re-encode the body in the content type's charset first.
    return client.generic(
        "POST",
        "/voice/start",
        data=data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data,
        content_type=extra.pop("content_type", "application/json"),
        headers=headers,
        REMOTE_ADDR=ip,
        **extra,
    )


def test_guessed_keys_are_throttled_per_ip(client, agent, settings):
    # Before: 100 guessed keys from one IP all got 401, none 429.
    settings.START_CALL_IP_RATE = "30/min"
    statuses = [
        post_start(client, f"pk_guess{i:04d}{'x' * 32}", {"agent_id": agent.public_id}).status_code
        for i in range(40)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30:] == [429] * 10


def test_requests_refused_for_their_origin_do_not_spend_the_keys_budget(client, agent):
    # Before: ten wrong-origin requests from one IP used up the key's per-minute budget and the
    # site's real visitor, on another IP, got 429.
    _, raw = make_api_key(
        kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=[SHOP_ORIGIN], rate_limit_per_minute=3
    )
    for _ in range(10):
        response = post_start(
            client, raw, {"agent_id": agent.public_id}, origin="https://evil.example", ip="10.6.6.6"
        )
        assert response.status_code == 403
    for _ in range(3):
        response = post_start(client, raw, {"agent_id": AgentFactory().public_id}, ip="10.6.6.6")
        assert response.status_code == 403  # agent_not_allowed: not charged either
    visitor = post_start(client, raw, {"agent_id": agent.public_id}, ip="10.1.1.1")
    assert visitor.status_code == 201, visitor.content


def test_one_address_cannot_hold_more_than_its_share_of_a_public_keys_calls(
    client, agent, public_key, settings
):
    settings.MAX_CONCURRENT_CALLS_PER_IP = 3
    body = {"agent_id": agent.public_id}
    assert [
        post_start(client, public_key[1], body, ip="10.6.6.6").status_code for _ in range(3)
    ] == [201] * 3
    refused = post_start(client, public_key[1], body, ip="10.6.6.6")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "concurrent_call_limit"
    # A real visitor elsewhere still gets in.
    assert post_start(client, public_key[1], body, ip="10.1.1.1").status_code == 201
    assert CallSession.objects.count() == 4


def test_a_keys_concurrent_calls_are_capped_by_its_own_limit(client, agent, settings):
    settings.MAX_CONCURRENT_CALLS_PER_IP = 0
    key, raw = make_api_key(kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=[SHOP_ORIGIN])
    key.max_concurrent_calls = 2
    key.save()
    body = {"agent_id": agent.public_id}
    statuses = [post_start(client, raw, body, ip=f"10.0.0.{i}").status_code for i in range(3)]
    assert statuses == [201, 201, 429]


def test_an_agents_concurrent_calls_are_capped(client, agent, secret_key, settings):
    settings.MAX_CONCURRENT_CALLS_PER_AGENT = 2
    body = {"agent_id": agent.public_id}
    statuses = [post_start(client, secret_key[1], body, origin=None).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    other = AgentFactory()
    assert (
        post_start(client, secret_key[1], {"agent_id": other.public_id}, origin=None).status_code
        == 201
    )


def test_a_secret_keys_calls_are_not_capped_per_ip(client, agent, secret_key, settings):
    # A customer's backend starts every visitor's call from its one address.
    settings.MAX_CONCURRENT_CALLS_PER_IP = 1
    body = {"agent_id": agent.public_id}
    statuses = [post_start(client, secret_key[1], body, origin=None).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]


def test_calls_that_ended_or_whose_token_expired_free_their_place(
    client, agent, public_key, settings
):
    settings.MAX_CONCURRENT_CALLS_PER_IP = 1
    body = {"agent_id": agent.public_id}
    assert post_start(client, public_key[1], body).status_code == 201
    assert post_start(client, public_key[1], body).status_code == 429
    old = timezone.now() - timedelta(seconds=settings.CALL_TOKEN_TTL_SECONDS + 1)
    CallSession.objects.update(created_at=old)  # its token can no longer be redeemed
    assert post_start(client, public_key[1], body).status_code == 201
    CallSession.objects.update(status=CallSession.Status.ENDED)
    assert post_start(client, public_key[1], body).status_code == 201


@pytest.mark.parametrize(
    ("origin", "stored"),
    [
        ("https://SHOP.example.com:443", "https://shop.example.com"),
        ('=HYPERLINK("https://evil.example","x")', ""),
        ("=cmd|' /C calc'!A0", ""),
        ("null", ""),
        ("https://shop.example.com/path?q=1", ""),
        ("x" * 5000, ""),
    ],
)
def test_the_origin_a_call_records_is_a_normalised_origin_or_nothing(
    client, agent, secret_key, origin, stored
):
    response = post_start(client, secret_key[1], {"agent_id": agent.public_id}, origin=origin)
    assert response.status_code == 201
    assert CallSession.objects.get().origin == stored


def test_context_null_is_accepted_as_the_schema_says(client, agent, secret_key):
    response = post_start(
        client, secret_key[1], {"agent_id": agent.public_id, "context": None}, origin=None
    )
    assert response.status_code == 201
    assert CallSession.objects.get().context == {}


BAD_BODIES = {
    "lone surrogate in a context value": '{"agent_id": "%s", "context": {"a": "\\ud800"}}',
    "lone surrogate in a context key": '{"agent_id": "%s", "context": {"\\udfff": "x"}}',
    "NUL in a context value": '{"agent_id": "%s", "context": {"a": "\\u0000"}}',
    "NaN in the context": '{"agent_id": "%s", "context": {"a": NaN}}',
    "Infinity in the context": '{"agent_id": "%s", "context": {"a": Infinity}}',
    "nesting 100,000 deep": '{"agent_id": "%s", "context": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "surrogate in the agent id": '{"agent_id": "\\ud800%s"}',
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_a_bad_body_gets_a_4xx_with_the_error_body(client, agent, public_key, name):
    body = BAD_BODIES[name] % agent.public_id
    response = post_start(client, public_key[1], body)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.content)
    assert response.json()["error"]["code"]
    assert CallSession.objects.count() == 0


def test_a_charset_python_cannot_decode_bytes_with_is_a_415(client, agent, public_key):
    response = post_start(
        client,
        public_key[1],
        {"agent_id": agent.public_id},
        content_type="application/json; charset=rot13",
    )
    assert response.status_code in (400, 415)
    assert response.json()["error"]["code"] in ("unsupported_media_type", "invalid_request")


def test_a_body_over_django_s_own_limit_is_a_413(client, agent, public_key):
    body = json.dumps({"agent_id": agent.public_id, "pad": "x" * (3 * 1024 * 1024)})
    response = post_start(client, public_key[1], body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


# A property-based fuzz of the start-call body: whatever JSON-ish text arrives, the answer is a
# 2xx or a 4xx with the error body, never a 5xx (bounded: 150 examples, no deadline).
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _encode_loosely(value) -> str:
    # json.dumps keeps lone surrogates as \\udXXX escapes and writes NaN/Infinity: both are
    # what a hostile client sends.
    return json.dumps(value, allow_nan=True)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.fixed_dictionaries({"agent_id": _json_values, "context": _json_values}).map(
            _encode_loosely
        ),
        st.fixed_dictionaries(
            {"agent_id": st.just("AGENT"), "context": st.dictionaries(st.text(), _json_scalars)}
        ).map(_encode_loosely),
        _json_values.map(_encode_loosely),
        st.text(max_size=200),
    )
)
def test_fuzzed_start_call_bodies_never_get_a_5xx(client, agent, settings, body):
    # Limits out of the way, so that every example reaches the parser and the services.
    settings.START_CALL_IP_RATE = "100000/min"
    settings.MAX_CONCURRENT_CALLS_PER_AGENT = settings.MAX_CONCURRENT_CALLS_PER_IP = 0
    settings.MAX_CONCURRENT_CALLS_PER_KEY = 0
    _, raw = make_api_key(
        kind=ApiKey.Kind.PUBLIC, agents=[agent], origins=[SHOP_ORIGIN], rate_limit_per_minute=100000
    )
    body = body.replace('"AGENT"', json.dumps(agent.public_id))
    response = post_start(client, raw, body, ip="10.9.9.9")
    assert response.status_code < 500, (body[:200], response.content[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"]
