"""Speech to text. One interface; one class per engine."""

from __future__ import annotations

import atexit
import json
import threading
from typing import Protocol, runtime_checkable

import numpy as np


class SpeechToText(Protocol):
    """Shared by the calls of a process; ``transcribe`` may be called from several threads."""

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str: ...


class SttStream(Protocol):
    """One utterance being recognized as it is spoken. Not thread-safe: one caller at a time."""

    def accept(self, pcm16k: np.ndarray) -> str:
        """Feed more audio; returns the text so far (a partial result, may still change)."""

    def finish(self) -> str:
        """The final text of the utterance; the stream is done after this."""


@runtime_checkable
class StreamingSpeechToText(SpeechToText, Protocol):
    """An engine that also recognizes while the caller speaks, so partial text is real."""

    def stream(self, language: str = "en") -> SttStream: ...


class WhisperStt:
    """faster-whisper (CTranslate2). One model per process; calls take turns on it."""

    def __init__(self, model_dir: str, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        audio = pcm16k.astype(np.float32) / 32768.0
        with self._lock:
            segments, _ = self.model.transcribe(
                audio,
                language=(language or "en")[:2],
                beam_size=1,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,  # the pipeline's VAD already cut the utterance
            )
            return " ".join(segment.text.strip() for segment in segments).strip()


class VoskStream:
    """A Kaldi recognizer over one utterance. Vosk cuts long speech into segments at its own
    endpoints (AcceptWaveform returns True); the text so far is the finished segments plus the
    current partial."""

    def __init__(self, recognizer) -> None:
        self._recognizer = recognizer
        self._segments: list[str] = []

    def accept(self, pcm16k: np.ndarray) -> str:
        data = np.ascontiguousarray(pcm16k, dtype=np.int16).tobytes()
        if self._recognizer.AcceptWaveform(data):
            self._keep(json.loads(self._recognizer.Result()).get("text", ""))
            return self._text()
        return self._text(json.loads(self._recognizer.PartialResult()).get("partial", ""))

    def finish(self) -> str:
        self._keep(json.loads(self._recognizer.FinalResult()).get("text", ""))
        return self._text()

    def _keep(self, text: str) -> None:
        if text.strip():
            self._segments.append(text.strip())

    def _text(self, partial: str = "") -> str:
        return " ".join([*self._segments, partial.strip()]).strip()


class VoskStt:
    """Vosk (Kaldi). The model is shared by the calls of a process (it is read-only once
    loaded); each utterance gets a recognizer of its own. A Vosk model knows one language, so
    ``language`` is not used."""

    def __init__(self, model_dir: str) -> None:
        import vosk

        vosk.SetLogLevel(-1)  # Kaldi logs every recognizer to stderr otherwise
        self._vosk = vosk
        self.model = vosk.Model(model_dir)
        # Free it while the interpreter still works: vosk's Model.__del__ fails at exit.
        atexit.register(self._release)

    def _release(self) -> None:
        self.model = None

    def stream(self, language: str = "en") -> VoskStream:
        return VoskStream(self._vosk.KaldiRecognizer(self.model, 16000))

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        stream = self.stream(language)
        stream.accept(pcm16k)
        return stream.finish()
