"""The agent pages (dashboard/views/agents.py), through Django's test client
(tests/e2e/test_dashboard.py drives them in Chromium)."""

from __future__ import annotations

import io
import sys
import wave
from html import escape

import pytest

from agents.models import Agent
from agents.services import agent_deactivate, agent_duplicate, agent_update
from dashboard.views.agents import prompt_placeholders
from sessions.models import CallSession
from tests.factories import make_api_key, make_staff_user
from voice.engines.text import fill_placeholders

pytestmark = pytest.mark.django_db


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


def test_a_voice_this_server_lacks_gets_a_json_error_that_says_why(staff):
    response = staff.get("/dashboard/voice-preview/?engine=piper&voice=/nowhere/voice.onnx")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "voice_unavailable" and "/nowhere/voice.onnx" in error["message"]


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


# --- reactivate and duplicate -----------------------------------------------------------------


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


# --- the test call ----------------------------------------------------------------------------


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
