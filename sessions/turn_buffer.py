"""Where a call's transcript turns wait, during the call, for the task that stores them.

With Redis (``REDIS_URL``) turns are appended to a Redis list the moment they happen, so they
survive a media worker crash; the post-call task (or the periodic finaliser, if the worker died)
writes them to the database. Without Redis the whole product is one process, which a crash takes
down with any buffer, so an in-process list is as durable as anything there.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache

import redis
from django.conf import settings

# Turns stay readable this long after the last append, so that a late or repeated store task
# still finds them; the database is the long-term record.
_TTL_SECONDS = 7 * 24 * 3600

_local_turns: dict[str, list[str]] = {}
_local_lock = threading.Lock()


@lru_cache(maxsize=1)
def _redis() -> redis.Redis | None:
    return redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None


def _key(session_id: str) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:turns:{session_id}"


def turn_buffer_append(session_id: str, turn: dict) -> None:
    payload = json.dumps(turn, separators=(",", ":"))
    client = _redis()
    if client is None:
        with _local_lock:
            _local_turns.setdefault(session_id, []).append(payload)
        return
    key = _key(session_id)
    with client.pipeline() as pipe:
        pipe.rpush(key, payload)
        pipe.expire(key, _TTL_SECONDS)
        pipe.execute()


def turn_buffer_read(session_id: str) -> list[dict]:
    client = _redis()
    if client is None:
        with _local_lock:
            raw = list(_local_turns.get(session_id, []))
    else:
        raw = client.lrange(_key(session_id), 0, -1)
    return [json.loads(item) for item in raw]


def turn_buffer_release(session_id: str) -> None:
    """Forget a stored call's turns. Redis lets them expire instead, for late store runs."""
    if _redis() is None:
        with _local_lock:
            _local_turns.pop(session_id, None)
