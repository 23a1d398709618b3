"""Database calls from the call path's async code (the call consumer, the media worker).

Channels' ``database_sync_to_async`` runs every call on one thread the whole process shares
with sync views and other consumers, so one slow query or page (a large CSV export) makes every
live call wait, and its worker heartbeats with it. The call path gets a small pool of its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings

_executor: ThreadPoolExecutor | None = None


def _call_path_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=settings.CALL_DB_THREADS, thread_name_prefix="call-db"
        )
    return _executor


def call_db(func):
    """``database_sync_to_async(func)`` on the call path's own threads (connections are closed
    around each call, as Channels does)."""
    return database_sync_to_async(func, thread_sensitive=False, executor=_call_path_executor())
