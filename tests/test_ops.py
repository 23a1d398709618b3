"""/healthz and /metrics (thinnest_site/ops.py), through Django's test client on the real
database and channel layer. tests/e2e/test_operations.py reads them from real processes after a
real call."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.utils import timezone

from sessions.models import MediaWorkerRecord
from tests.factories import make_staff_user
from thinnest_site.metrics import RESPONSE_LATENCY

pytestmark = pytest.mark.django_db


def worker(name: str, *, capacity=4, calls=0, free=None, draining=False, seen_seconds_ago=1.0):
    seen = timezone.now() - timedelta(seconds=seen_seconds_ago)
    return MediaWorkerRecord.objects.create(
        name=name,
        host="media-1",
        pid=4242,
        capacity=capacity,
        calls=calls,
        free=capacity - calls if free is None else free,
        draining=draining,
        started_at=seen,
        seen_at=seen,
    )


def test_healthz_is_ok_while_a_media_worker_has_a_free_place(client):
    worker("a", capacity=4, calls=3)
    worker("b", capacity=2, calls=2)
    worker("gone", capacity=8, seen_seconds_ago=60)  # dead: not counted
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database"]["ok"] and body["channel_layer"]["ok"]
    assert body["free_capacity"] == 1
    assert sorted(w["free"] for w in body["media_workers"]) == [0, 1]
    assert "media-1" not in response.content.decode()  # nothing about the machines


@pytest.mark.parametrize(
    "workers, problem",
    [
        ([], "no_media_worker"),
        ([{"capacity": 2, "calls": 2}], "no_free_capacity"),
        ([{"capacity": 2, "draining": True}], "no_free_capacity"),
        ([{"capacity": 2, "seen_seconds_ago": 30}], "no_media_worker"),
    ],
)
def test_healthz_is_503_when_no_call_could_be_taken(client, workers, problem):
    for i, fields in enumerate(workers):
        worker(f"w{i}", **fields)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == [problem]


def test_healthz_is_503_when_the_channel_layer_does_not_answer(client, settings):
    worker("a")
    # A Redis that is not there (nothing listens on port 1).
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_timeout": None}]},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["problems"] == ["channel_layer"] and not body["channel_layer"]["ok"]
    assert body["channel_layer"]["error"]


def test_metrics_are_refused_to_anyone_else_with_a_json_error(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_metrics_for_a_staff_user_and_an_allowed_address(client, settings):
    worker("a", capacity=4, calls=3)
    client.force_login(make_staff_user("ops"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'thinnest_calls_active{worker="media-1:4242"} 3.0' in text
    assert 'thinnest_media_worker_capacity{worker="media-1:4242"} 4.0' in text
    assert "thinnest_calls_refused_total" in text or "# TYPE thinnest_calls_refused" in text
    client.logout()

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/24")]
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.1.7").status_code == 403


def test_a_latency_observation_shows_in_the_histogram(client):
    client.force_login(make_staff_user("ops"))

    def count() -> float:
        text = client.get("/metrics").content.decode()
        line = next(
            ln
            for ln in text.splitlines()
            if ln.startswith("thinnest_response_latency_seconds_count")
        )
        return float(line.split()[-1])

    before = count()
    RESPONSE_LATENCY.observe(0.8)
    assert count() == before + 1


def test_a_call_refused_at_capacity_is_counted(client, agent):
    from sessions.services import call_session_end, call_session_start

    client.force_login(make_staff_user("ops"))

    def refused() -> float:
        text = client.get("/metrics").content.decode()
        lines = [ln for ln in text.splitlines() if ln.startswith("thinnest_calls_refused_total")]
        return sum(float(line.split()[-1]) for line in lines)

    before = refused()
    session = call_session_start(agent=agent, api_key=None).session
    call_session_end(session_id=session.public_id, reason="at_capacity")
    call_session_end(session_id=session.public_id, reason="at_capacity")  # recorded once
    assert refused() == before + 1
