"""An agent's save refuses settings this server cannot run, with field errors that say what is
allowed: before, they saved and the agent failed or fell silent on its first call."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents.services import agent_create, agent_update
from voice import checks
from voice.engines import models

pytestmark = pytest.mark.django_db


def save_errors(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        agent_create(name="Checked", **fields)
    return refused.value.message_dict


def test_an_agent_the_server_can_run_saves():
    agent = agent_create(name="Fine", system_prompt="You are the assistant of a bakery.")
    assert agent.pk


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"llm_model": "gpt-4o"}, "llm_model", "qwen2.5-0.5b"),
        ({"llm_model": "/nowhere/model.gguf"}, "llm_model", "not found"),
        ({"tts_voice": "alloy"}, "tts_voice", "Piper .onnx"),
        ({"tts_voice": "/nowhere/voice.onnx"}, "tts_voice", "not found"),
        ({"tts_engine": "espeak", "tts_voice": "klingon"}, "tts_voice", "espeak-ng --voices"),
        ({"tts_engine": "coqui"}, "tts_engine", "COQUI_MODEL_PATH"),
        ({"stt_engine": "vosk", "stt_model_path": "/nowhere/vosk"}, "stt_model_path", "VOSK"),
        ({"stt_model_path": "/nowhere/whisper"}, "stt_model_path", "WHISPER_MODEL_PATH"),
    ],
)
def test_a_missing_model_or_voice_is_refused_with_what_is_allowed(fields, field, says):
    errors = save_errors(**fields)
    assert says in errors[field][0], errors


def test_a_prompt_far_over_the_context_window_is_refused(settings):
    # Before: it saved, and the agent never answered in a call (22 s of silence).
    prompt = "Our opening hours and every product we sell are listed here. " * 400
    errors = save_errors(system_prompt=prompt)
    message = errors["system_prompt"][0]
    assert f"{settings.LLM_CONTEXT_TOKENS}-token context window" in message
    assert "Shorten it" in message


def test_the_prompt_is_counted_with_the_models_own_vocabulary():
    path = models.llm_model_path("smollm2", join=False)
    text = "Croissants are baked every morning at six."
    counted = checks.count_tokens(text, path)
    assert 5 <= counted <= 15 and counted != (len(text) + 2) // 3


def test_an_espeak_language_code_is_accepted():
    assert "en" in checks.espeak_voices()
    agent_create(name="Robot", tts_engine="espeak", tts_voice="de")


def test_an_update_that_breaks_the_agent_saves_nothing():
    agent = agent_create(name="Kept", llm_model="smollm2")
    with pytest.raises(ValidationError):
        agent_update(agent=agent, llm_model="gpt-4o")
    agent.refresh_from_db()
    assert agent.llm_model == "smollm2"


def test_the_check_can_be_turned_off_for_a_web_tier_without_models(settings):
    settings.AGENT_SETTINGS_CHECK = ""
    assert agent_create(name="Unchecked", llm_model="gpt-4o").pk
