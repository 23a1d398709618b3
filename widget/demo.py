"""Who may use the demo: its start-call route needs no credential, so it is off unless asked for."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user

from agents.origins import origin_for_record
from sessions.selectors import public_base_url


def demo_available(request) -> bool:
    """On with DEMO_ENABLED (default: DEBUG only), and always for logged-in staff, who can
    start any agent from the dashboard anyway."""
    if settings.DEMO_ENABLED:
        return True
    # From the session itself: DRF replaces request.user on the API views that have no
    # authentication classes.
    user = get_user(request)
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def demo_request_is_cross_site(request) -> bool:
    """True for a browser request sent by another site's page: a stranger's page must not start
    calls on this server through the demo (and spend its capacity). Browsers send Origin on
    every POST and Sec-Fetch-Site on every request; a client without either (curl) is no page."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin_for_record(origin) != origin_for_record(public_base_url(request))
