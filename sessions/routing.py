from __future__ import annotations

from django.urls import re_path

from sessions.consumers import CallConsumer

websocket_urlpatterns = [
    re_path(r"^ws/(?P<session_id>session_[A-Za-z0-9]{1,40})/?$", CallConsumer.as_asgi()),
]
