"""One utterance of the agent (play, interrupt, wait for playout), and the speaking/listening
signal the browser gets around the agent's audio."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from voice.pipeline.base import AudioOutput
from voice.pipeline.transcript import Transcript
from voice.protocol import browser


class SpeakingSignal:
    """``agent_speaking`` when agent audio starts out of an idle track, ``agent_listening`` when
    it has all been played and no utterance is still producing more: the track goes quiet between
    chunks too, and the caller hears one agent turn."""

    def __init__(self, output: AudioOutput, emit: Callable[[dict], None]) -> None:
        self.output = output
        self._emit = emit
        # Set by whichever utterance is producing audio now (one at a time on a call).
        self.producing = False
        self._announced = False

    def playback_started(self) -> None:
        if not self._announced:
            self._announced = True
            self._emit(browser.agent_speaking())

    def playback_ended(self) -> None:
        if not self.producing:
            self._finish()

    def production_done(self) -> None:
        self.producing = False
        if not self.output.is_playing:
            self._finish()

    async def play_alone(self, pcm: np.ndarray, rate: int) -> None:
        """Play one line outside any utterance (an apology, the last words of a call cut short)
        with the same signals, and return once it has been played out."""
        self.producing = True
        self.output.play(pcm, rate)
        self.production_done()
        await self.output.wait_idle()

    def _finish(self) -> None:
        if self._announced:
            self._announced = False
            self._emit(browser.agent_listening())


class Speech:
    """One utterance of the agent, from its first chunk to its playout. Its chunks are queued on
    the output as they come and shown as one live transcript line; ``interrupt`` tells what of it
    the caller heard and what they did not (the rest is worth saying again after a noise)."""

    def __init__(
        self, output: AudioOutput, transcript: Transcript, signal: SpeakingSignal, *, start_ms: int
    ) -> None:
        self.output = output
        self._transcript = transcript
        self._signal = signal
        self.start_ms = start_ms
        # When its first audio left an idle track (the reply's response latency).
        self.first_audio_at: float | None = None
        self.dropped_ms = 0
        self._played_before = output.played_ms
        self._chunks: list[tuple[str, int]] = []  # (chunk text, its audio ms), in order queued
        signal.producing = True

    @property
    def text(self) -> str:
        return " ".join(text for text, _ in self._chunks)

    def play(self, text: str, pcm: np.ndarray, rate: int) -> None:
        """Queue one chunk after the others and show the utterance so far."""
        self.output.play(pcm, rate)
        self._chunks.append((text, len(pcm) * 1000 // rate))
        self._transcript.partial("agent", self.text)

    def produced(self) -> None:
        """No more chunks are coming: the agent stops speaking once these are played."""
        self._signal.production_done()

    async def wait_for_playout(self) -> None:
        await self.output.wait_idle()

    def end(self, text: str) -> None:
        """Close the utterance's line with its final text."""
        self._transcript.final("agent", text)

    def on_playback_start(self) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()

    def heard(self) -> tuple[str, str]:
        """The text actually played so far, and the rest."""
        played = self.output.played_ms - self._played_before
        heard, rest = [], []
        for text, ms in self._chunks:
            if played >= ms:
                heard.append(text)
                played -= ms
            elif played > 0:
                words = text.split()
                cut = round(len(words) * played / ms)
                heard.append(" ".join(words[:cut]))
                rest.append(" ".join(words[cut:]))
                played = 0
            else:
                rest.append(text)
        return " ".join(h for h in heard if h).strip(), " ".join(r for r in rest if r).strip()

    def interrupt(self) -> tuple[str, str]:
        """Stop now: the agent's queued audio is dropped (``dropped_ms`` of it). Returns what the
        caller heard of this utterance, and the rest."""
        self.dropped_ms = self.output.clear()
        return self.heard()
