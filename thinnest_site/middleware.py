from __future__ import annotations

from corsheaders.middleware import CorsMiddleware as _CorsMiddleware


class CorsMiddleware(_CorsMiddleware):
    # Our origin check (agents.signals) reads API keys through the ORM, which refuses to run in
    # an async context; as a sync-only middleware Django runs it in a thread under ASGI.
    async_capable = False
    sync_capable = True
