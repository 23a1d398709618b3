"""End-of-turn detection: Smart Turn on real speech, and silence, which needs no model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.voice.engines.speech import cut_after, steady_speech
from voice.engines import registry
from voice.engines.models import ModelUnavailable

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
    assert registry.turn_detector_get("") is registry.turn_detector_get("smart_turn")  # default
    with pytest.raises(ModelUnavailable):
        registry.turn_detector_get("psychic")
