"""What a benchmark caller says: questions in the Piper voice, or recorded human speech.

Human speech comes from the sample recordings the `moonshine-voice` wheel ships (a man reading
Dickens and Beckett; installed from requirements-models.txt, only its .wav files are read). They
are cut into caller turns at their pauses by Silero VAD, as a caller's turns would be: longer,
less even and less clean than a TTS voice, which is what the latency issue measured 2.4 s on.
No transcript ships with them, so a clip's reference text is what the product's own speech
recognizer makes of the whole clip offline: the word error rate of a call's turns against it says
what the live path (streaming, end of turn, transport) loses, not how good Whisper is.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass

import numpy as np

# The recordings in the moonshine-voice wheel (moonshine_voice/assets/) that are speech.
HUMAN_RECORDINGS = ("beckett.wav", "endgame_nagg_nell.wav", "two_cities.wav")
VAD_RATE = 16000
WINDOW = 512  # Silero's window at 16 kHz, 32 ms
SPEECH_PROBABILITY = 0.5


@dataclass(frozen=True)
class Utterance:
    name: str
    pcm16k: np.ndarray  # int16, 16 kHz
    reference: str  # the words the turn should be transcribed as

    @property
    def seconds(self) -> float:
        return len(self.pcm16k) / VAD_RATE


def piper_utterances(questions: list[str]) -> list[Utterance]:
    from voice.audio import resample
    from voice.engines import registry

    piper = registry.tts_get("piper")
    out = []
    for index, text in enumerate(questions):
        pcm, rate = piper.synthesize(text)
        out.append(Utterance(f"piper-{index}", resample(pcm, rate, VAD_RATE), text))
    return out


def human_utterances(
    *, max_pause_ms: int = 400, min_ms: int = 1200, max_ms: int = 7000, pad_ms: int = 150
) -> list[Utterance]:
    """The recordings cut into turns: speech runs joined across pauses shorter than
    ``max_pause_ms`` (under the product's end-of-turn silence, so a clip is one turn), a turn
    closed before it would pass ``max_ms``, and clips under ``min_ms`` left out. Each clip gets
    ``pad_ms`` of its own recording around its speech."""
    from voice.engines import registry
    from voice.engines.models import package_dir

    assets = package_dir("moonshine_voice") / "assets"
    stt = registry.stt_get("whisper")
    clips = []
    for name in HUMAN_RECORDINGS:
        pcm = _read_16k(assets / name)
        for number, (start, end) in enumerate(
            _turns(_speech_windows(pcm), max_pause_ms, min_ms, max_ms)
        ):
            pad = pad_ms * VAD_RATE // 1000
            clip = pcm[max(start - pad, 0) : end + pad]
            reference = stt.transcribe_padded(clip).strip()
            if reference:
                clips.append(Utterance(f"{name.removesuffix('.wav')}-{number}", clip, reference))
    return clips


def word_error_rate(references: list[str], hypotheses: list[str]) -> float | None:
    """WER over all turns (jiwer), on lower-case words without punctuation."""
    import jiwer

    pairs = [(_words(r), _words(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None
    return round(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]), 3)


def _words(text: str) -> str:
    import re

    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _read_16k(path) -> np.ndarray:
    from voice.audio import resample

    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: 16-bit PCM expected")
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        if wav.getnchannels() > 1:
            frames = frames.reshape(-1, wav.getnchannels())[:, 0]
        return resample(frames.copy(), wav.getframerate(), VAD_RATE)


def _speech_windows(pcm: np.ndarray) -> np.ndarray:
    from voice.engines.vad import SileroModel, SileroVad

    vad = SileroVad(SileroModel.from_setting())
    count = len(pcm) // WINDOW
    return np.array(
        [
            vad.probability(pcm[i * WINDOW : (i + 1) * WINDOW]) >= SPEECH_PROBABILITY
            for i in range(count)
        ]
    )


def _turns(speech: np.ndarray, max_pause_ms: int, min_ms: int, max_ms: int):
    """(start, end) sample offsets of each turn."""
    window_ms = WINDOW * 1000 // VAD_RATE
    runs = []  # (first window, end window) of each speech run
    index = 0
    while index < len(speech):
        if speech[index]:
            first = index
            while index < len(speech) and speech[index]:
                index += 1
            runs.append((first, index))
        index += 1
    turns = []
    for first, end in runs:
        if turns:
            prev_first, prev_end = turns[-1]
            pause = (first - prev_end) * window_ms
            if pause < max_pause_ms and (end - prev_first) * window_ms <= max_ms:
                turns[-1] = (prev_first, end)
                continue
        turns.append((first, end))
    return [
        (first * WINDOW, end * WINDOW)
        for first, end in turns
        if (end - first) * window_ms >= min_ms
    ]
