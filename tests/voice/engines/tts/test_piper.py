"""Piper: the packaged voice, or a .onnx file of the agent's."""

from __future__ import annotations

import pytest

from voice.engines import registry
from voice.engines.models import ModelUnavailable
from voice.engines.tts.piper import PiperTts


def test_piper_speaks_with_the_packaged_voice_by_default():
    assert PiperTts.resolve("").name == "en_US-joe-medium.onnx"
    assert registry.tts_get("piper") is registry.tts_get("piper", "")


def test_a_piper_voice_must_be_an_onnx_file_that_exists(tmp_path):
    assert "not a Piper voice" in PiperTts.settings_error("alloy")
    with pytest.raises(ModelUnavailable, match="not found"):
        registry.tts_get("piper", str(tmp_path / "voice.onnx"))
