"""CORS preflight for /voice/start: allowed for origins that some active public key lists.

django-cors-headers asks this hook per request; the actual POST is then checked against the
presented key (sessions.services.call_start_agent_resolve).
"""

from __future__ import annotations

import re

from corsheaders.signals import check_request_enabled
from django.conf import settings
from django.dispatch import receiver

from agents.selectors import origin_allowed_by_any_public_key


@receiver(check_request_enabled)
def cors_allow_public_key_origins(sender, request, **kwargs) -> bool:
    # The signal enables CORS for whatever path it answers True for, so it checks the path too.
    if not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    origin = request.headers.get("Origin", "")
    return bool(origin) and origin_allowed_by_any_public_key(origin)
