"""Abuse attempts against /voice/start: none of them may create a session."""

from __future__ import annotations

import json

import pytest

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
