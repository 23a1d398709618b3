"""A cheap per-frame measure of what the caller sends: how long, how loud, when they spoke.

It drives the silence timeout and the call's media stats; the speech pipeline has its own, far
better, voice activity detection.
"""

from __future__ import annotations

import numpy as np

from voice.audio import PIPELINE_RATE

# RMS of int16 samples above which a 20 ms frame counts as voiced (about -36 dBFS).
SPEECH_RMS = 500.0
# Silence shorter than this does not end a segment: words have gaps.
HANGOVER_MS = 400
MAX_SEGMENTS = 20


class InboundMeter:
    def __init__(self) -> None:
        self.samples = 0
        self.frames = 0
        self._sum_squares = 0.0
        self.segments: list[dict] = []
        self._segment_start: int | None = None
        self._last_voiced_ms: int | None = None

    @property
    def now_ms(self) -> int:
        return self.samples * 1000 // PIPELINE_RATE

    @property
    def last_voiced_ms(self) -> int | None:
        return self._last_voiced_ms

    def add(self, pcm: np.ndarray) -> bool:
        """Account for one frame; returns whether it was voiced."""
        if pcm.size == 0:
            return False
        start_ms = self.now_ms
        self.samples += pcm.size
        self.frames += 1
        samples = pcm.astype(np.float32)
        square = float(np.dot(samples, samples))
        self._sum_squares += square
        voiced = (square / pcm.size) ** 0.5 > SPEECH_RMS
        if voiced:
            if self._segment_start is None:
                self._segment_start = start_ms
            self._last_voiced_ms = self.now_ms
        elif self._segment_start is not None and self.now_ms - self._last_voiced_ms > HANGOVER_MS:
            self._close_segment()
        return voiced

    def _close_segment(self) -> None:
        if len(self.segments) < MAX_SEGMENTS:
            self.segments.append({"start_ms": self._segment_start, "end_ms": self._last_voiced_ms})
        self._segment_start = None

    def stats(self) -> dict:
        if self._segment_start is not None:
            self._close_segment()
        rms = (self._sum_squares / self.samples) ** 0.5 if self.samples else 0.0
        return {
            "inbound_seconds": round(self.samples / PIPELINE_RATE, 3),
            "inbound_frames": self.frames,
            "inbound_rms": round(rms, 1),
            "speech_segments": list(self.segments),
        }
