from django.apps import AppConfig


class CallSessionsConfig(AppConfig):
    # The label avoids a clash with django.contrib.sessions, whose label is "sessions".
    name = "sessions"
    label = "call_sessions"
    verbose_name = "Calls"

    def ready(self) -> None:
        from sessions import signals  # noqa: F401
