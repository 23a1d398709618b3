"""espeak-ng: formant synthesis, robotic and tiny, in about a hundred languages. Nothing to load:
it runs as a program per utterance."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from functools import cache

import numpy as np

from voice.engines.listing import Choice, EngineListing

# Language tags ("en", "en-us", "pt-br", "yue"), not espeak-ng's voice names or file names.
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)*$")


class EspeakTts:
    """espeak-ng: tiny, robotic, and speaks about a hundred languages (``voice`` = language code)."""

    voice_is_model = False

    def __init__(self, default_voice: str = "en") -> None:
        self.default_voice = default_voice

    def synthesize(
        self, text: str, *, voice: str = "", speed: float = 1.0
    ) -> tuple[np.ndarray, int]:
        result = subprocess.run(
            [
                "espeak-ng",
                "--stdout",
                "-v",
                voice or self.default_voice,
                "-s",
                str(int(165 * speed)),
                text,
            ],
            capture_output=True,
            check=False,
            # Out of the worker's process group: a supervisor's SIGTERM to the group (honcho
            # does that) must not kill the synthesis of the caller's last words.
            start_new_session=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace')[:200]}")
        with wave.open(io.BytesIO(result.stdout)) as wav:
            return np.frombuffer(
                wav.readframes(wav.getnframes()), dtype=np.int16
            ), wav.getframerate()

    @classmethod
    def from_setting(cls, voice: str = "") -> EspeakTts:
        # The voice is passed to each synthesize(): one instance speaks them all.
        return cls()

    @classmethod
    def settings_error(cls, voice: str) -> str:
        known = espeak_voices()
        if voice and known and voice not in known:
            return (
                f"espeak-ng has no voice '{voice}': use a language code such as "
                f"{', '.join(sorted(known)[:8])}… (espeak-ng --voices lists them)."
            )
        return ""

    @classmethod
    def listing(cls, name: str) -> EngineListing:
        codes = sorted(code for code in espeak_voices() if _LANGUAGE_TAG.match(code))
        available = bool(codes) or shutil.which("espeak-ng") is not None
        return EngineListing(
            name=name,
            label="eSpeak NG",
            available=available,
            about=(
                f"Formant synthesis: robotic and tiny, {len(codes)} languages and accents."
                if available
                else "espeak-ng is not installed (apt-get install espeak-ng)."
            ),
            choices=[Choice("", "en (default)", available, "English.")]
            + [Choice(code, code, True) for code in codes if code != "en"],
            own="A language or voice espeak-ng knows (espeak-ng --voices lists them).",
        )


@cache
def espeak_voices() -> frozenset[str]:
    """Language codes espeak-ng speaks on this machine; empty when it is not installed."""
    try:
        listing = subprocess.run(
            ["espeak-ng", "--voices"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    # "Pty Language Age/Gender VoiceName File ...": espeak-ng takes the language ("en-us"), its
    # base ("en"), the voice name or the file name.
    codes = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            language = fields[1]
            codes.update({language, language.split("-")[0], fields[3], fields[4]})
    return frozenset(codes)
