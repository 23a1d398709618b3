from __future__ import annotations

from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "voice"
    verbose_name = "Voice media worker"

    def ready(self) -> None:
        # Registers the system check that every engine an agent may choose has an engine here.
        from voice import checks  # noqa: F401
