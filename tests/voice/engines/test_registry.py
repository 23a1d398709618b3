"""The registry looks engines up in the stages' tables and keeps one of each model per process."""

from __future__ import annotations

import pytest

from agents.models import Agent
from voice.catalog import voice_catalog
from voice.engines import defaults, registry
from voice.engines.llm import LLM_ENGINES
from voice.engines.models import ModelUnavailable
from voice.engines.stt import STT_ENGINES
from voice.engines.tts import TTS_ENGINES


def test_a_new_agent_starts_on_the_engines_an_empty_setting_stands_for():
    # The agents app may not import voice, so its field defaults are written out twice.
    fields = Agent._meta.get_field
    assert fields("stt_engine").default == defaults.STT_ENGINE
    assert fields("tts_engine").default == defaults.TTS_ENGINE
    assert fields("turn_detection").default == defaults.TURN_DETECTION
    assert defaults.LLM_ENGINE in LLM_ENGINES


def test_an_engine_not_in_its_table_is_not_available_in_this_build():
    with pytest.raises(ModelUnavailable, match="Speech-to-text engine 'kaldi' is not available"):
        registry.stt_get("kaldi")
    with pytest.raises(ModelUnavailable, match="Text-to-speech engine 'alexa' is not available"):
        registry.tts_get("alexa")


def test_an_empty_engine_is_the_default_one():
    assert registry.tts_get("") is registry.tts_get(defaults.TTS_ENGINE)
    assert registry.stt_get("") is registry.stt_get(defaults.STT_ENGINE)


def test_a_model_name_and_its_file_share_one_loaded_model(settings):
    engine = LLM_ENGINES[defaults.LLM_ENGINE]
    path = str(engine.resolve(settings.LLM_MODEL))
    assert registry.llm_get("") is registry.llm_get(settings.LLM_MODEL) is registry.llm_get(path)


def test_the_catalog_lists_each_tables_engines_in_its_order():
    catalog = voice_catalog()
    assert [engine.name for engine in catalog.stt] == list(STT_ENGINES)
    assert [engine.name for engine in catalog.tts] == list(TTS_ENGINES)
    assert catalog.llm[0].value == ""  # the server's default model first
    assert "GGUF" in catalog.llm_own
