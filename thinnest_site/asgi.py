"""ASGI entry point: daphne serves HTTP and the signaling WebSocket from this one application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from sessions.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No AllowedHostsOriginValidator: calls come from customers' sites on any origin; the
        # single-use call token is what authorizes a socket.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
