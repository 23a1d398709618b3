"""The dashboard's pages and actions, through Django's test client (tests/e2e/test_dashboard.py
drives them in Chromium)."""

from __future__ import annotations

import csv
import io
import wave
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from agents.models import Agent, ApiKey
from sessions.models import CallSession, TranscriptEntry
from sessions.services import call_session_start
from tests.factories import AgentFactory, make_api_key, make_staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    # A superuser: every permission (the tests of each permission make users without them).
    client.force_login(make_staff_user("staff", superuser=True))
    return client


@pytest.fixture
def call(agent):
    session = call_session_start(agent=agent, api_key=None, context={"user_name": "Jane"}).session
    now = timezone.now()
    CallSession.objects.filter(pk=session.pk).update(
        status="ended",
        end_reason="user_hangup",
        started_at=now,
        ended_at=now,
        duration_seconds=42.0,
    )
    TranscriptEntry.objects.create(
        call=session, seq=0, role="agent", text="Hello there", start_ms=0, end_ms=900
    )
    TranscriptEntry.objects.create(
        call=session,
        seq=1,
        role="user",
        text="When do you open on Saturday?",
        start_ms=1500,
        end_ms=3000,
    )
    TranscriptEntry.objects.create(
        call=session,
        seq=2,
        role="agent",
        text="At nine.",
        start_ms=3700,
        end_ms=4500,
        latency_ms=700,
    )
    return CallSession.objects.get(pk=session.pk)


def dashboard_urls(agent, call, key) -> list[str]:
    return [
        "/dashboard/",
        "/dashboard/agents/",
        "/dashboard/agents/new/",
        f"/dashboard/agents/{agent.public_id}/",
        f"/dashboard/agents/{agent.public_id}/deactivate/",
        "/dashboard/keys/",
        "/dashboard/keys/new/",
        f"/dashboard/keys/{key.pk}/revoke/",
        "/dashboard/embed/",
        "/dashboard/calls/",
        "/dashboard/calls/export.csv",
        f"/dashboard/calls/{call.public_id}/",
        f"/dashboard/calls/{call.public_id}/export.json",
        f"/dashboard/calls/{call.public_id}/recording.ogg",
        "/dashboard/analytics/",
        "/dashboard/password/",
        "/dashboard/voice-preview/?engine=espeak&text=hi",
    ]


POST_ACTIONS = [
    "/dashboard/agents/new/",
    "/dashboard/agents/{agent}/",
    "/dashboard/agents/{agent}/deactivate/",
    "/dashboard/agents/{agent}/talk/",
    "/dashboard/keys/new/",
    "/dashboard/keys/{key}/revoke/",
]


# --- access ---------------------------------------------------------------------------------


def test_every_page_sends_anonymous_visitors_to_the_login_page(client, agent, call):
    key, _ = make_api_key()
    for url in dashboard_urls(agent, call, key):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/dashboard/login/?next="), url


def test_every_page_and_action_refuses_users_who_are_not_staff(client, agent, call):
    key, _ = make_api_key()
    client.force_login(get_user_model().objects.create_user("visitor", password="pw-visitor-1"))
    for url in dashboard_urls(agent, call, key):
        assert client.get(url).status_code == 403, url
    for url in POST_ACTIONS:
        url = url.format(agent=agent.public_id, key=key.pk)
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert Agent.objects.get(pk=agent.pk).is_active and key.revoked_at is None
    assert CallSession.objects.count() == 1


def test_a_staff_user_without_permissions_may_not_list_or_create_keys(client):
    client.force_login(make_staff_user("nobody"))
    assert client.get("/dashboard/keys/").status_code == 403
    response = client.post("/dashboard/keys/new/", {"kind": "secret", "name": "backend"})
    assert response.status_code == 403
    assert "agents.add_apikey" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_staff_user_with_the_key_permissions_lists_and_creates_keys(client):
    client.force_login(make_staff_user("keys", perms=["agents.view_apikey", "agents.add_apikey"]))
    response = client.post("/dashboard/keys/new/", {"kind": "secret", "name": "backend"})
    assert response.status_code == 200 and response.context["raw_key"].startswith("sk_")
    assert client.get("/dashboard/keys/").status_code == 200
    assert ApiKey.objects.get().name == "backend"
    # Revoking is a change: not granted here.
    key = ApiKey.objects.get()
    assert client.post(f"/dashboard/keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_without_permissions_a_staff_user_sees_only_the_overview_and_changes_nothing(
    client, agent, call
):
    key, _ = make_api_key()
    client.force_login(make_staff_user("nobody"))
    for url in dashboard_urls(agent, call, key):
        expected = 200 if url in ("/dashboard/", "/dashboard/password/") else 403
        assert client.get(url).status_code == expected, url
    for url in POST_ACTIONS:
        url = url.format(agent=agent.public_id, key=key.pk)
        assert client.post(url, agent_form()).status_code == 403, url
    overview = client.get("/dashboard/").content.decode()
    assert call.public_id not in overview and "/dashboard/keys/" not in overview
    agent_after = Agent.objects.get(pk=agent.pk)
    assert agent_after.is_active and agent_after.name == agent.name
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert Agent.objects.count() == 1 and CallSession.objects.count() == 1


def test_viewing_an_agent_does_not_allow_saving_it(client, agent):
    client.force_login(make_staff_user("viewer", perms=["agents.view_agent"]))
    page = client.get(f"/dashboard/agents/{agent.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Save<" not in html and "Talk to this agent" not in html and "/deactivate/" not in html
    response = client.post(f"/dashboard/agents/{agent.public_id}/", agent_form(name="Renamed"))
    assert response.status_code == 403
    assert Agent.objects.get(pk=agent.pk).name == agent.name


def test_links_to_what_the_user_may_not_do_are_hidden(client, agent):
    make_api_key()
    client.force_login(make_staff_user("reader", perms=["agents.view_apikey"]))
    page = client.get("/dashboard/keys/").content.decode()
    assert "/dashboard/keys/new/" not in page and "/revoke/" not in page
    assert "/dashboard/calls/" not in page and "/dashboard/agents/" not in page
    assert 'href="/dashboard/keys/"' in page


def test_anonymous_posts_change_nothing(client, agent):
    key, _ = make_api_key()
    for url in POST_ACTIONS:
        response = client.post(url.format(agent=agent.public_id, key=key.pk), {"name": "x"})
        assert response.status_code == 302
    assert Agent.objects.get(pk=agent.pk).is_active
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_every_page_renders_for_staff(staff, agent, call):
    key, _ = make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    for url in dashboard_urls(agent, call, key):
        if url.endswith("recording.ogg"):
            continue  # this call has none (tests/sessions/test_recordings.py plays one)
        assert staff.get(url).status_code == 200, url


def test_posts_without_a_csrf_token_are_refused(agent):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(make_staff_user("s", superuser=True))
    key, _ = make_api_key()
    for url in POST_ACTIONS:
        assert (
            csrf_client.post(url.format(agent=agent.public_id, key=key.pk), {}).status_code == 403
        )
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_login_and_logout(client):
    get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    response = client.post("/dashboard/login/", {"username": "boss", "password": "wrong"})
    assert (
        response.status_code == 200 and "correct username and password" in response.content.decode()
    )
    response = client.post("/dashboard/login/", {"username": "boss", "password": "pw-boss-123"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    assert client.post("/dashboard/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


# --- agents ---------------------------------------------------------------------------------


def agent_form(**overrides) -> dict:
    data = {
        "name": "Front desk",
        "system_prompt": "You answer for {{company}}.",
        "greeting": "Hi! How can I help?",
        "language": "en",
        "stt_engine": "whisper",
        "tts_engine": "piper",
        "tts_voice": "",
        "tts_speed": "1.0",
        "llm_temperature": "0.7",
        "llm_max_tokens": "160",
        "max_duration_seconds": "600",
        "silence_timeout_seconds": "30",
        "turn_detection": "silence",
        "turn_silence_ms": "600",
    }
    data.update(overrides)
    return data


def test_creating_an_agent(staff):
    response = staff.post("/dashboard/agents/new/", agent_form())
    agent = Agent.objects.get(name="Front desk")
    assert (
        response.status_code == 302
        and response["Location"] == f"/dashboard/agents/{agent.public_id}/"
    )
    assert agent.greeting == "Hi! How can I help?" and agent.recording_enabled is False


def test_a_failed_save_shows_field_errors_keeps_the_input_and_changes_nothing(staff, agent):
    before = Agent.objects.get(pk=agent.pk)
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/",
        agent_form(name="Renamed", tts_speed="9", max_duration_seconds="1"),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved" in page
    assert "less than or equal to 2.0" in page and "greater than or equal to 10" in page
    assert 'value="Renamed"' in page  # what the user typed is still there
    after = Agent.objects.get(pk=agent.pk)
    assert (after.name, after.tts_speed, after.max_duration_seconds) == (
        before.name,
        before.tts_speed,
        before.max_duration_seconds,
    )


def test_editing_and_deactivating_an_agent(staff, agent):
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/", agent_form(recording_enabled="on")
    )
    assert response.status_code == 302
    assert Agent.objects.get(pk=agent.pk).recording_enabled is True
    assert staff.post(f"/dashboard/agents/{agent.public_id}/deactivate/").status_code == 302
    assert Agent.objects.get(pk=agent.pk).is_active is False
    assert staff.post(f"/dashboard/agents/{agent.public_id}/talk/").status_code == 409


def test_talk_to_this_agent_starts_a_call_without_a_key(staff, agent):
    response = staff.post(f"/dashboard/agents/{agent.public_id}/talk/")
    assert response.status_code == 201
    body = response.json()
    assert f"/ws/{body['session_id']}?token=" in body["websocket_url"] and body["token"]
    session = CallSession.objects.get(public_id=body["session_id"])
    assert session.api_key is None and session.context["source"] == "dashboard"


@pytest.mark.parametrize("engine", ["espeak", "piper"])
def test_the_voice_preview_is_audio_in_that_voice(staff, engine):
    response = staff.get(f"/dashboard/voice-preview/?engine={engine}&speed=1.2&text=Hello+there")
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as audio:
        assert audio.getnframes() / audio.getframerate() > 0.3


@pytest.mark.parametrize(
    "query", ["engine=nope", "engine=espeak&speed=5", "engine=espeak&text=" + "a" * 301]
)
def test_a_bad_voice_preview_request_gets_a_json_error(staff, query):
    response = staff.get(f"/dashboard/voice-preview/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


# --- keys and embed -------------------------------------------------------------------------


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


# --- calls ----------------------------------------------------------------------------------


def test_the_call_history_filters_and_searches_transcripts(staff, agent, call):
    other = AgentFactory(name="Other")
    call_session_start(agent=other, api_key=None)

    def listed(query: str) -> list[str]:
        return [
            c.public_id for c in staff.get(f"/dashboard/calls/?{query}").context["page"].object_list
        ]

    assert len(listed("")) == 2
    assert listed(f"agent={agent.public_id}") == [call.public_id]
    assert listed("status=ended") == [call.public_id]
    assert listed("end_reason=user_hangup") == [call.public_id]
    assert listed("q=saturday") == [call.public_id]
    assert listed("q=sunday") == []
    today = timezone.localdate()
    assert len(listed(f"from={today}&to={today}")) == 2
    assert listed(f"to={today - timedelta(days=1)}") == []
    assert len(listed("from=not-a-date&status=bogus")) == 2  # bad filters are ignored


def test_the_call_page_shows_the_timeline_context_and_latency(staff, call):
    page = staff.get(f"/dashboard/calls/{call.public_id}/").content.decode()
    assert "When do you open on Saturday?" in page and "700 ms to answer" in page
    assert "&quot;user_name&quot;: &quot;Jane&quot;" in page and "user_hangup" in page


def test_exports(staff, call):
    exported = staff.get(f"/dashboard/calls/{call.public_id}/export.json").json()
    assert exported["session_id"] == call.public_id and len(exported["transcript"]) == 3
    assert exported["transcript"][2]["latency_ms"] == 700
    response = staff.get("/dashboard/calls/export.csv?status=ended")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "session_id" and [r[0] for r in rows[1:]] == [call.public_id]


def test_the_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(staff, call):
    evil_agent = AgentFactory(name="=cmd|' /C calc'!A0")
    evil = call_session_start(agent=evil_agent, api_key=None).session
    CallSession.objects.filter(pk=evil.pk).update(
        origin='=HYPERLINK("http://evil")', error_message="@SUM(1+1)*cmd|' /C calc'!A0"
    )
    for prefix in ("+", "-", "\t", "\r"):
        CallSession.objects.create(
            agent=evil_agent, origin=f"{prefix}1+1", token_nonce=f"nonce{ord(prefix)}"
        )
    response = staff.get("/dashboard/calls/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_id = {row["session_id"]: row for row in rows}
    assert by_id[evil.public_id]["origin"] == '\'=HYPERLINK("http://evil")'
    assert by_id[evil.public_id]["agent_name"] == "'=cmd|' /C calc'!A0"
    assert by_id[evil.public_id]["error_message"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert sorted(r["origin"] for r in rows if r["origin"].startswith("'")) == sorted(
        ['\'=HYPERLINK("http://evil")', "'+1+1", "'-1+1", "'\t1+1", "'\r1+1"]
    )
    # Harmless cells are left as they were.
    assert by_id[call.public_id]["agent_name"] == call.agent.name
    assert by_id[call.public_id]["duration_seconds"] == "42.0"


def test_analytics_figures(staff, agent, call):
    response = staff.get("/dashboard/analytics/")
    figures = response.context["figures"]
    assert figures["calls"] == 1 and figures["avg_duration_seconds"] == 42.0
    assert figures["p50_latency_ms"] == 700
    assert figures["end_reasons"] == [{"end_reason": "user_hangup", "calls": 1}]
    assert figures["days"][-1]["calls"] == 1 and len(figures["days"]) == 30
    assert staff.get("/dashboard/analytics/?from=2026-01-10&to=2026-01-01").status_code == 400


def test_the_end_of_turn_settings_are_saved_and_checked(staff, agent):
    url = f"/dashboard/agents/{agent.public_id}/"
    response = staff.post(url, agent_form(turn_detection="smart_turn", turn_silence_ms="900"))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.turn_detection, agent.turn_silence_ms) == ("smart_turn", 900)

    response = staff.post(url, agent_form(turn_silence_ms="50", turn_detection="guess"))
    assert response.status_code == 400
    assert "greater than or equal to 200" in response.content.decode()
    agent.refresh_from_db()
    assert agent.turn_silence_ms == 900
