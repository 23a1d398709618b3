"""An agent's save refuses settings this server cannot run, with field errors that say what is
allowed: before, they saved and the agent failed or fell silent on its first call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from agents.models import Agent
from agents.services import agent_create, agent_update
from voice import checks
from voice.engines.tts import TTS_ENGINES

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


def test_the_prompt_must_leave_room_for_the_knowledge_bases_facts(settings):
    # Facts retrieved for each turn go beside the question: an agent whose prompt only fits
    # without them would lose its history, or its reply, once documents are added.
    prompt = "We bake bread and cakes every morning. " * 60
    settings.KNOWLEDGE_BUDGET_TOKENS = 0
    assert agent_create(name="Fits", system_prompt=prompt).pk
    settings.KNOWLEDGE_BUDGET_TOKENS = settings.LLM_CONTEXT_TOKENS // 2
    message = save_errors(system_prompt=prompt)["system_prompt"][0]
    assert "KNOWLEDGE_BUDGET_TOKENS" in message and "tokens shorter" in message


def test_an_espeak_language_code_is_accepted():
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


def test_every_engine_an_agent_may_choose_has_an_engine():
    assert checks.agent_engine_choices_check() == []


@contextmanager
def engine_removed(table: dict, name: str) -> Iterator[None]:
    # Not monkeypatch.delitem: it puts the engine back at the end, and the tables' order is the
    # order the form lists them in.
    kept = dict(table)
    del table[name]
    try:
        yield
    finally:
        table.clear()
        table.update(kept)


def test_a_choice_without_an_engine_fails_the_system_check():
    # What adding a choice to Agent.TtsEngine without its engine would do.
    with engine_removed(TTS_ENGINES, "coqui"):
        (error,) = checks.agent_engine_choices_check()
    assert error.id == "voice.E001"
    assert "Agent.tts_engine offers 'coqui'" in error.msg
    assert "voice/engines/tts/__init__.py" in error.msg


def test_the_check_runs_with_djangos_system_checks():
    with (
        engine_removed(TTS_ENGINES, "espeak"),
        pytest.raises(SystemCheckError, match=r"voice\.E001"),
    ):
        call_command("check")
    call_command("check")  # and passes with the engine back


def test_an_unknown_engine_is_refused_with_the_engines_there_are():
    agent = Agent(stt_engine="kaldi", tts_engine="alexa", llm_model="smollm2")
    errors = checks.agent_settings_errors(agent)
    assert errors["stt_engine"] == "Unknown speech-to-text engine 'kaldi': use whisper or vosk."
    assert errors["tts_engine"] == (
        "Unknown text-to-speech engine 'alexa': use piper, espeak or coqui."
    )
