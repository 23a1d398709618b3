"""ASGI entry point: daphne serves HTTP and the signaling WebSocket from this one application."""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from sessions.routing import websocket_urlpatterns  # noqa: E402
from thinnest_site.background import background_schedule_start  # noqa: E402

if settings.BACKGROUND_SCHEDULE_ENABLED:
    # No broker, so no Celery beat: the web process (the one process that imports this module)
    # runs the periodic jobs itself, on its background threads.
    background_schedule_start()

if settings.MEDIA_WORKER_EMBEDDED and settings.VOICE_PRELOAD_AT_START:
    # The media worker lives in this process: load and warm its models now, before daphne
    # listens, so that the first caller does not wait for them (3-4 s, and the LLM's join from
    # its parts on a fresh install).
    from voice.pipeline.registry import pipeline_preload

    logging.getLogger(__name__).info("voice models ready: %s (ms)", pipeline_preload())

if settings.MEDIA_WORKER_EMBEDDED:
    # Under daphne: close the calls its last run left open, and drain calls on SIGTERM.
    from voice.shutdown import embedded_process_start

    embedded_process_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No AllowedHostsOriginValidator: calls come from customers' sites on any origin; the
        # single-use call token is what authorizes a socket.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
