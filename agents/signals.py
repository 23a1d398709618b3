"""CORS for /voice/start: answered for any origin, so that a page whose origin a key does not
allow can read why (a 403 ``origin_not_allowed``) instead of an opaque network error.

That opens nothing: browsers cannot forge ``Origin``, and the POST itself is checked against the
presented key's allowed origins (sessions.services.call_start_agent_resolve); a script outside a
browser was never stopped by CORS. Credentials (cookies) are never allowed.
"""

from __future__ import annotations

import re

from corsheaders.signals import check_request_enabled
from django.conf import settings
from django.dispatch import receiver


@receiver(check_request_enabled)
def cors_allow_start_call(sender, request, **kwargs) -> bool:
    # The signal enables CORS for whatever path it answers True for, so it checks the path too.
    if not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    return bool(request.headers.get("Origin"))
