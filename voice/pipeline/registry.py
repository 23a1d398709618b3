"""The one place that picks a pipeline implementation for a call (the VOICE_PIPELINE setting)."""

from __future__ import annotations

from django.conf import settings

from voice.pipeline.base import AudioOutput, CallEvents, CallPipeline
from voice.protocol import CallSpec


def pipeline_create(spec: CallSpec, output: AudioOutput, events: CallEvents) -> CallPipeline:
    if settings.VOICE_PIPELINE == "conversation":
        from voice.pipeline.conversation import ConversationPipeline

        return ConversationPipeline(spec, output, events)
    from voice.pipeline.greeting import GreetingPipeline

    return GreetingPipeline(spec, output, events)


def pipeline_preload() -> None:
    """Load the models the default pipeline needs (blocking: run it in a thread)."""
    if settings.VOICE_PIPELINE == "conversation":
        from voice.pipeline.conversation import engines_preload

        engines_preload()
