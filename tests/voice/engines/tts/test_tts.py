"""The text-to-speech engines of this virtualenv, through the registry."""

from __future__ import annotations

import numpy as np
import pytest

from voice.engines import registry


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_tts_engines_speak_at_the_requested_speed(engine):
    tts = registry.tts_get(engine)
    normal, rate = tts.synthesize("We are open from nine in the morning until five.")
    fast, fast_rate = tts.synthesize("We are open from nine in the morning until five.", speed=1.5)
    seconds = normal.size / rate
    assert 1.5 < seconds < 6
    assert np.sqrt(np.mean(normal.astype(np.float64) ** 2)) > 300
    assert fast.size / fast_rate < seconds * 0.85
