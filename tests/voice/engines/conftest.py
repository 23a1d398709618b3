from __future__ import annotations

import numpy as np
import pytest

from voice.audio import resample
from voice.engines import registry


@pytest.fixture(scope="session")
def piper():
    return registry.tts_get("piper")


@pytest.fixture(scope="session")
def speak(piper):
    """Natural-sounding speech at 16 kHz for a sentence (Piper), like a caller's microphone."""

    def make(text: str) -> np.ndarray:
        pcm, rate = piper.synthesize(text)
        return resample(pcm, rate, 16000)

    return make
