"""The dashboard's pages and actions, through Django's test client (tests/e2e/test_dashboard.py
drives them in Chromium)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import wave
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from agents.models import Agent, ApiKey
from agents.selectors import api_key_get_by_raw_key
from agents.services import agent_deactivate, agent_duplicate, agent_update, api_key_revoke
from agents.views import embed_snippets, prompt_placeholders
from sessions.models import CallSession, TranscriptEntry
from sessions.services import call_session_start
from sessions.templatetags.dashboard_format import EMPTY, clock, duration, latency
from tests.factories import AgentFactory, make_api_key, make_staff_user
from voice.engines.text import fill_placeholders

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
        f"/dashboard/agents/{agent.public_id}/reactivate/",
        f"/dashboard/agents/{agent.public_id}/duplicate/",
        "/dashboard/keys/",
        "/dashboard/keys/new/",
        f"/dashboard/keys/{key.pk}/",
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
    "/dashboard/agents/{agent}/reactivate/",
    "/dashboard/agents/{agent}/duplicate/",
    "/dashboard/agents/{agent}/talk/",
    "/dashboard/keys/new/",
    "/dashboard/keys/{key}/",
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
    assert "When do you open on Saturday?" in page and "0.7 s to answer" in page
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


# --- the front door ---------------------------------------------------------------------------


def test_the_home_page_sends_new_users_to_the_dashboard(client):
    page = client.get("/").content.decode()
    links = re.findall(r'href="([^"]+)"', page.split("<main>", 1)[1])
    assert links[0] == "/dashboard/"
    assert 'href="/admin/">Admin<' not in page  # the site header's first stop was the admin


def test_the_readme_quick_start_and_dashboard_sections_point_at_the_dashboard():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "http://127.0.0.1:8000/dashboard/" in quick_start
    assert quick_start.index("/dashboard/") < quick_start.index("/admin/")


# --- labels, choices and errors of the agent form ---------------------------------------------


def test_the_agent_form_has_human_labels_and_help_texts(staff):
    page = staff.get("/dashboard/agents/new/").content.decode()
    for label in (
        "Speech-to-text engine",
        "Speech-to-text model",
        "Text-to-speech engine",
        "Text-to-speech voice",
        "Speaking speed",
        "LLM model",
        "LLM temperature",
        "Reply length (tokens)",
        "Maximum call length (seconds)",
        "Silence timeout (seconds)",
        "End-of-turn detection",
        "Record calls",
    ):
        assert f">{label}</label>" in page or f"> {label}</label>" in page, label
    for raw in ("Stt engine", "Llm model", "Tts voice", "Llm max tokens"):
        assert raw not in page
    assert "a token is about three quarters of an English word" in page


def test_the_catalog_lists_what_this_server_has_without_loading_a_model(settings, tmp_path):
    from voice.catalog import voice_catalog

    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    settings.LLM_MODEL_PATH = str(gguf)
    before = set(sys.modules)
    catalog = voice_catalog().as_dict()
    loaded = {name.split(".")[0] for name in set(sys.modules) - before}
    assert not loaded & {"faster_whisper", "ctranslate2", "vosk", "piper", "llama_cpp", "TTS"}

    stt = {engine["name"]: engine for engine in catalog["stt"]}
    assert stt["whisper"]["available"] and stt["whisper"]["choices"][0]["label"].startswith(
        "tiny.en"
    )
    assert "Korean" in stt["vosk"]["choices"][0]["label"]
    tts = {engine["name"]: engine for engine in catalog["tts"]}
    assert tts["piper"]["choices"][0]["label"] == "en_US-joe-medium (packaged)"
    espeak = {choice["value"] for choice in tts["espeak"]["choices"]}
    assert {"de", "en-us", "fr"} <= espeak and not any("/" in code for code in espeak)
    assert not tts["coqui"]["available"] and "COQUI_MODEL_PATH" in tts["coqui"]["about"]
    llm = {choice["value"]: choice for choice in catalog["llm"]}
    assert llm["qwen2.5-0.5b"]["available"] and llm["smollm2"]["available"]
    assert llm[str(gguf)]["available"] and llm[""]["label"] == f"Server default ({gguf})"


def test_the_catalog_says_what_is_missing(settings, tmp_path):
    from voice.catalog import voice_catalog

    settings.VOSK_MODEL_PATH = str(tmp_path / "no-such-model")
    settings.LLM_MODEL_PATH = ""
    settings.COQUI_MODEL_PATH = str(tmp_path / "model.pth")
    settings.COQUI_CONFIG_PATH = str(tmp_path / "config.json")
    catalog = voice_catalog().as_dict()
    vosk = next(engine for engine in catalog["stt"] if engine["name"] == "vosk")
    assert not vosk["available"] and "not found" in vosk["choices"][0]["about"]
    coqui = next(engine for engine in catalog["tts"] if engine["name"] == "coqui")
    assert not coqui["available"] and "no model is set" in coqui["about"]


def test_the_agent_form_offers_the_servers_engines_voices_and_models(staff, agent):
    page = staff.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    # Free text with suggestions: the voice field follows the selected engine's list.
    assert 'list="tts-choices-piper"' in page and 'list="stt-choices-whisper"' in page
    assert 'list="llm-choices"' in page
    espeak = page.split('<datalist id="tts-choices-espeak">', 1)[1].split("</datalist>", 1)[0]
    assert '<option value="de"' in espeak and '<option value="en-us"' in espeak
    models = page.split('<datalist id="llm-choices">', 1)[1].split("</datalist>", 1)[0]
    assert 'value="qwen2.5-0.5b"' in models and 'value="smollm2"' in models
    # What each is, and what cannot run here.
    assert "en_US-joe-medium (packaged)" in page and "Korean (packaged)" in page
    assert "Coqui TTS (not usable on this server)</option>" in page
    assert 'placeholder="Empty: en_US-joe-medium (packaged)"' in page


def test_an_agent_save_shows_every_error_at_once_each_beside_its_field(staff, agent):
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/",
        agent_form(
            name="",
            tts_speed="9",
            max_duration_seconds="1",
            tts_voice="nobody",
            llm_model="gpt-4o",
            system_prompt="Be brief. " * 1500,
        ),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {
        "name",
        "tts_speed",
        "max_duration_seconds",
        "tts_voice",
        "llm_model",
        "system_prompt",
    }
    page = response.content.decode()
    assert "Nothing was saved" in page
    for field, errors in form.errors.items():
        beside = page.split(f'id="id_{field}-errors"', 1)[1].split("</ul>", 1)[0]
        for error in errors:
            # Beside the field, and in the list at the top, linked to the field.
            assert escape(error) in beside, field
            assert page.count(escape(error)) == 2, field
        assert f'href="#id_{field}"' in page


# --- keys ---------------------------------------------------------------------------------------


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


# --- reactivate and duplicate -------------------------------------------------------------------


def test_a_deactivated_agent_is_reactivated_after_a_confirmation(staff, agent):
    agent_deactivate(agent=agent)
    page = staff.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert f"/dashboard/agents/{agent.public_id}/reactivate/" in page and "/deactivate/" not in page
    confirm = staff.get(f"/dashboard/agents/{agent.public_id}/reactivate/")
    assert "takes new calls again" in confirm.content.decode()
    assert not Agent.objects.get(pk=agent.pk).is_active

    response = staff.post(f"/dashboard/agents/{agent.public_id}/reactivate/")
    assert response.status_code == 302
    assert Agent.objects.get(pk=agent.pk).is_active
    assert staff.post(f"/dashboard/agents/{agent.public_id}/talk/").status_code == 201


def test_an_agent_this_server_cannot_run_is_not_reactivated(staff, agent):
    agent_deactivate(agent=agent)
    Agent.objects.filter(pk=agent.pk).update(llm_model="gpt-4o")  # saved before the check
    response = staff.post(f"/dashboard/agents/{agent.public_id}/reactivate/", follow=True)
    assert not Agent.objects.get(pk=agent.pk).is_active
    assert "Unknown LLM &#x27;gpt-4o&#x27;" in response.content.decode()


def test_reactivating_needs_the_change_permission(client, agent):
    agent_deactivate(agent=agent)
    client.force_login(make_staff_user("viewer", perms=["agents.view_agent"]))
    assert client.post(f"/dashboard/agents/{agent.public_id}/reactivate/").status_code == 403
    assert not Agent.objects.get(pk=agent.pk).is_active


def test_duplicating_an_agent_copies_its_settings_under_a_new_id(staff, agent):
    agent_update(agent=agent, tts_engine="espeak", tts_voice="de", turn_silence_ms=900)
    make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    assert "(copy)" in staff.get(f"/dashboard/agents/{agent.public_id}/duplicate/").content.decode()
    response = staff.post(f"/dashboard/agents/{agent.public_id}/duplicate/")
    copy = Agent.objects.exclude(pk=agent.pk).get()
    assert response["Location"] == f"/dashboard/agents/{copy.public_id}/"
    assert copy.name == f"{agent.name} (copy)" and copy.public_id != agent.public_id
    assert copy.public_id.startswith("agent_") and copy.is_active
    for field in ("system_prompt", "greeting", "tts_engine", "tts_voice", "turn_silence_ms"):
        assert getattr(copy, field) == getattr(agent, field), field
    assert not copy.api_keys.exists()


def test_a_copy_of_a_long_name_still_fits(agent):
    agent_update(agent=agent, name="x" * 120)
    copy = agent_duplicate(agent=agent)
    assert len(copy.name) == 120 and copy.name.endswith("x (copy)")


def test_duplicating_needs_the_add_permission(client, agent):
    client.force_login(
        make_staff_user("editor", perms=["agents.view_agent", "agents.change_agent"])
    )
    page = client.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert "/duplicate/" not in page
    assert client.post(f"/dashboard/agents/{agent.public_id}/duplicate/").status_code == 403
    assert Agent.objects.count() == 1


# --- times ---------------------------------------------------------------------------------------


def test_time_filters():
    assert [clock(ms) for ms in (0, 999, 17503, 61_000, 3_725_000)] == [
        "0:00",
        "0:00",
        "0:17",
        "1:01",
        "1:02:05",
    ]
    assert [latency(ms) for ms in (700, 1249, 17503, 59_960, 125_000)] == [
        "0.7 s",
        "1.2 s",
        "17.5 s",
        "1:00",
        "2:05",
    ]
    assert [duration(s) for s in (42.0, 42.6, 600, None, "bogus", -1)] == [
        "0:42",
        "0:43",
        "10:00",
        EMPTY,
        EMPTY,
        EMPTY,
    ]


def test_call_pages_show_turn_times_as_minutes_and_dates_with_their_time_zone(
    staff, call, settings
):
    TranscriptEntry.objects.create(
        call=call, seq=3, role="user", text="Thanks", start_ms=17503, end_ms=18000
    )
    CallSession.objects.filter(pk=call.pk).update(
        created_at=datetime(2026, 12, 2, 14, 5, 9, tzinfo=UTC), duration_seconds=125.0
    )
    detail = staff.get(f"/dashboard/calls/{call.public_id}/").content.decode()
    assert ">0:17</span>" in detail and "17503 ms" not in detail.replace('title="17503 ms', "")
    assert "0.7 s to answer" in detail and ">2:05</dd>" in detail
    assert "2026-12-02 14:05:09 UTC" in detail
    listing = staff.get("/dashboard/calls/").content.decode()
    assert "2026-12-02 14:05 UTC" in listing and ">2:05</td>" in listing

    settings.TIME_ZONE = "Asia/Tokyo"
    listing = staff.get("/dashboard/calls/").content.decode()
    assert "2026-12-02 23:05 JST" in listing and "Days and times are in JST" in listing


def test_analytics_show_durations_as_minutes_and_latencies_in_seconds(staff, call):
    page = staff.get("/dashboard/analytics/").content.decode()
    assert ">0:42</span>" in page and ">0.7 s</span>" in page
    assert " ms</span>" not in page


# --- the test call --------------------------------------------------------------------------------


def test_the_test_call_offers_an_input_for_each_placeholder_of_the_prompt(staff, agent):
    agent_update(
        agent=agent,
        system_prompt="You are the assistant of {{company}}, a bakery. Page: {{ page }}. "
        "Again {{company}}; not one: {{ two words }}.",
    )
    response = staff.get(f"/dashboard/agents/{agent.public_id}/")
    assert response.context["placeholders"] == ["company", "page"]
    page = response.content.decode()
    assert 'data-name="company"' in page and 'data-name="page"' in page
    assert 'id="talkMute"' in page


def test_the_placeholders_found_are_the_ones_the_prompt_fills():
    prompt = "Hi {{name}} from {{ city }} at {{ bad-name }} {{x_1}}"
    names = prompt_placeholders(prompt)
    filled = fill_placeholders(prompt, {name: "V" for name in names})
    assert names == ["name", "city", "x_1"] and filled == "Hi V from V at {{ bad-name }} V"


def test_a_test_call_starts_with_the_context_given(staff, agent):
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/talk/",
        {"context": {"company": "Tom's Bakery", "page": "pricing", "source": "elsewhere"}},
        content_type="application/json",
    )
    assert response.status_code == 201
    session = CallSession.objects.get(public_id=response.json()["session_id"])
    assert session.context == {
        "user_name": "staff",
        "company": "Tom's Bakery",
        "page": "pricing",
        "source": "dashboard",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"context": {"company": {"name": "Acme"}}}', "must be a string, number"),
        ('{"context": ["Acme"]}', "context must be a JSON object"),
        ("not json", "must be JSON"),
        ('"a string"', "must be a JSON object"),
    ],
)
def test_a_test_call_with_a_bad_context_is_refused(staff, agent, body, message):
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/talk/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]
    assert not CallSession.objects.exists()


# --- the embed snippet ----------------------------------------------------------------------------

HOSTILE_GREETINGS = [
    "Let's talk",
    'Say "hi"',
    "</script><script>window.pwned = 1</script>",
    "<!--<script>",
    "back\\slash and\nnew line\u2028and U+2028",
    "Café ☕ — ok?",
]


def snippet_on_page(staff, agent, key, greeting: str) -> str:
    query = urlencode(
        {
            "agent": agent.public_id,
            "key": key.pk,
            "greeting": greeting,
            "theme": "dark",
            "color": "#112233",
        }
    )
    page = staff.get(f"/dashboard/embed/?{query}").content.decode()
    return unescape(page.split('<pre id="snippetScript" class="snippet">', 1)[1].split("</pre>")[0])


class _Scripts(HTMLParser):
    """The <script> elements of a page as a browser's parser splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append({"attrs": dict(attrs), "text": ""})

    def handle_data(self, data):
        if self.scripts and self.lasttag == "script":
            self.scripts[-1]["text"] += data


needs_node = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node runs the generated JavaScript (apt-get install nodejs)",
)


def run_node(source: str, tmp_path: Path) -> str:
    script = tmp_path / "snippet.js"
    script.write_text(source)
    check = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    result = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_node
@pytest.mark.parametrize("greeting", HOSTILE_GREETINGS)
def test_the_embed_snippet_runs_with_any_button_text(staff, agent, tmp_path, greeting):
    key, raw = make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    snippet = snippet_on_page(staff, agent, key, greeting)
    parser = _Scripts()
    parser.feed(snippet)
    # Exactly the two elements of the snippet: no value ends one or starts another.
    assert [bool(s["attrs"].get("src")) for s in parser.scripts] == [True, False]
    assert parser.scripts[0]["attrs"]["src"] == "http://testserver/widget.js"
    inline = parser.scripts[1]["text"]
    output = run_node(
        "const calls = [];\nglobalThis.ThinnestAI = { init: (o) => calls.push(o) };\n"
        + inline
        + "\nconsole.log(JSON.stringify(calls));",
        tmp_path,
    )
    assert json.loads(output) == [
        {
            "agentId": agent.public_id,
            "apiKey": raw,
            "position": "bottom-right",
            "theme": "dark",
            "greeting": greeting.strip(),
            "primaryColor": "#112233",
        }
    ]


@needs_node
def test_the_live_snippet_is_the_servers_snippet(tmp_path):
    """static/dashboard/embed.js builds the snippets as you type; for any value they are the
    ones the server renders (agents.views.embed_snippets)."""
    embed_js = Path(__file__).resolve().parents[1] / "static" / "dashboard" / "embed.js"
    cases = [
        {
            "agentId": "agent_abc",
            "apiKey": "pk_x",
            "position": "bottom-left",
            "theme": "light",
            "greeting": greeting,
            "primaryColor": "#0066ff",
        }
        for greeting in HOSTILE_GREETINGS
    ]
    server = "https://voice.example.com"
    output = run_node(
        f"const s = require({json.dumps(str(embed_js))});\n"
        f"const cases = {json.dumps(cases)};\n"
        f"console.log(JSON.stringify(cases.map((o) => ({{script: s.scriptTag({json.dumps(server)}, o),"
        f" react: s.react({json.dumps(server)}, o)}}))));",
        tmp_path,
    )
    assert json.loads(output) == [embed_snippets(server, case) for case in cases]
    # The React snippet writes such values in braces: a JSX string attribute has no escapes.
    assert 'greeting="Let\'s talk"' in embed_snippets(server, cases[0])["react"]
    assert 'greeting={"Say \\"hi\\""}' in embed_snippets(server, cases[1])["react"]
