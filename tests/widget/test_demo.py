from __future__ import annotations

import pytest
from django.core.management import call_command

from sessions.models import CallSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.DEMO_ENABLED = True
    call_command("bootstrap_demo")
    capsys.readouterr()


@pytest.mark.parametrize("path", ["/api/start-call", "/demo/api/start-call"])
def test_the_demo_backend_starts_a_call_with_the_demo_agent(client, demo, path, settings):
    response = client.post(path)
    assert response.status_code == 201
    body = response.json()
    session = CallSession.objects.get(public_id=body["session_id"])
    assert session.agent.public_id == settings.DEMO_AGENT_ID
    assert session.api_key.kind == "secret"
    assert body["websocket_url"].startswith(f"ws://testserver/ws/{session.public_id}?token=")
    assert "sk_" not in response.content.decode()


def test_the_demo_backend_explains_a_missing_setup(client, db, settings):
    settings.DEMO_ENABLED = True
    response = client.post("/api/start-call")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "demo_not_configured"


def test_the_demo_can_be_turned_off(client, demo, settings):
    settings.DEMO_ENABLED = False
    assert client.get("/demo/").status_code == 404
    assert client.post("/api/start-call").status_code == 404
    assert not CallSession.objects.exists()


def test_the_demo_page_runs_the_seed_step_2_code(client, demo):
    page = client.get("/demo/").content.decode()
    assert "Start Call" in page and "/static/widget/demo.js" in page
    script = client.get("/static/widget/demo.js")
    body = b"".join(script.streaming_content).decode()
    assert "fetch('/api/start-call', { method: 'POST' })" in body
    assert "ws.send(JSON.stringify({ type: 'auth', token }))" in body


def test_the_demo_is_off_unless_asked_for_or_debugging(client, demo, settings):
    # Its start-call route needs no credential: on a production server anyone could start calls.
    settings.DEMO_ENABLED = False
    for path in ("/api/start-call", "/demo/api/start-call"):
        assert client.post(path).status_code == 404
    assert client.get("/demo/").status_code == 404
    assert not CallSession.objects.exists()


def test_logged_in_staff_may_use_the_demo_when_it_is_off(client, demo, settings, django_user_model):
    settings.DEMO_ENABLED = False
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/demo/").status_code == 200
    assert client.post("/api/start-call").status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_another_sites_page_cannot_start_demo_calls(client, demo, headers):
    response = client.post("/api/start-call", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert not CallSession.objects.exists()


def test_the_demo_page_itself_may_start_calls(client, demo):
    response = client.post(
        "/api/start-call", headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    )
    assert response.status_code == 201
    assert CallSession.objects.get().origin == "http://testserver"
