"""A short text spoken in a voice, as a WAV file: the agent form's preview button."""

from __future__ import annotations

import io
import wave


class VoicePreviewUnavailable(Exception):
    """This server cannot speak in that voice; the message says why (a missing model or voice
    file, an engine that failed)."""


def voice_preview_wav(*, engine: str, voice: str, text: str, speed: float) -> bytes:
    """``text`` spoken by ``engine`` in ``voice`` at ``speed``, as a mono 16-bit WAV file.
    Raises ``VoicePreviewUnavailable``."""
    # Imported here: the engines bring numpy and onnxruntime, which the web process loads on the
    # first preview rather than whenever the dashboard's URLs are imported.
    from voice.engines import registry
    from voice.engines.models import ModelUnavailable

    try:
        tts = registry.tts_get(engine, voice)
        pcm, rate = tts.synthesize(text, voice=voice, speed=speed)
    except (ModelUnavailable, RuntimeError, OSError) as exc:
        raise VoicePreviewUnavailable(str(exc)) from exc
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()
