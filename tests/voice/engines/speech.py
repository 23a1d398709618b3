"""Test speech for models that judge how something is said, not only what."""

from __future__ import annotations

import numpy as np

from voice.audio import resample
from voice.engines import registry


def steady_speech(text: str) -> np.ndarray:
    """A sentence spoken by Piper without its sampling noise, so the same audio every time (16 kHz,
    silence trimmed): Smart Turn's verdict on synthetic speech moves with that noise."""
    from piper import SynthesisConfig

    piper = registry.tts_get("piper")
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pcm = np.concatenate([c.audio_int16_array for c in piper.voice.synthesize(text, config)])
    loud = np.flatnonzero(np.abs(pcm) > 300)
    return resample(pcm[loud[0] : loud[-1] + 1], piper.sample_rate, 16000)


def cut_after(pcm16k: np.ndarray, word: str) -> np.ndarray:
    """The recording stopped right after ``word`` (Whisper's word timings): a caller pausing
    mid-sentence, whose voice does not fall as at the end of one (a sentence synthesized only up
    to that word would)."""
    model = registry.stt_get("whisper").model
    segments, _ = model.transcribe(
        pcm16k.astype(np.float32) / 32768.0, language="en", beam_size=1, word_timestamps=True
    )
    for segment in segments:
        for timed in segment.words:
            if timed.word.strip(" ,.?!").lower() == word:
                return pcm16k[: int(timed.end * 16000)]
    raise AssertionError(f"'{word}' not heard")
