"""The one place that picks a pipeline implementation for a call (the VOICE_PIPELINE setting)."""

from __future__ import annotations

import threading

from django.conf import settings

from voice.pipeline.base import AudioOutput, CallEvents, CallPipeline
from voice.protocol import CallSpec


def pipeline_create(spec: CallSpec, output: AudioOutput, events: CallEvents) -> CallPipeline:
    if settings.VOICE_PIPELINE == "conversation":
        from voice.pipeline.conversation import ConversationPipeline

        return ConversationPipeline(spec, output, events)
    from voice.pipeline.greeting import GreetingPipeline

    return GreetingPipeline(spec, output, events)


_preloaded: dict[str, dict[str, int]] = {}
_preload_lock = threading.Lock()


def pipeline_preload() -> dict[str, int]:
    """Load the models the default pipeline needs and run each once (blocking: run it in a
    thread). Once per process: the web process of the embedded mode does it before it listens,
    and its media worker then finds everything ready. Returns the ms each stage took."""
    with _preload_lock:
        if settings.VOICE_PIPELINE not in _preloaded:
            timings: dict[str, int] = {}
            if settings.VOICE_PIPELINE == "conversation":
                from voice.pipeline.inference import engines_preload

                timings = engines_preload()
            _preloaded[settings.VOICE_PIPELINE] = timings
        return _preloaded[settings.VOICE_PIPELINE]
