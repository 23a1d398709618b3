"""Silero VAD on real speech and on noise."""

from __future__ import annotations

import numpy as np

from voice.engines import registry
from voice.engines.vad import WINDOW


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
