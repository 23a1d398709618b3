"""For operators and load balancers: ``/healthz`` (is this server able to take a call now?) and
``/metrics`` (Prometheus text, thinnest_site/metrics.py).

``/healthz`` is public, as load balancers probe without credentials: it tells whether the
database and the channel layer answer and how many calls the media workers can still take, and
nothing about the machines. ``/metrics`` is for staff users and for the addresses in
``METRICS_ALLOWED_ADDRESSES`` (a Prometheus server), since its labels name hosts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

from sessions.selectors import client_ip_get, media_workers_live
from thinnest_site.errors import error_body
from thinnest_site.metrics import CONTENT_TYPE, metrics_exposition

# A check slower than this counts as failed: a probe must answer quickly either way.
CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(request):
    """200 when a call could be taken now: the database and the channel layer answer and some
    media worker has a free place; else 503. The body says which part is missing."""
    database, channel_layer = await asyncio.gather(_database_check(), _channel_layer_check())
    workers = await sync_to_async(media_workers_live)() if database["ok"] else []
    free = sum(worker.free for worker in workers)
    checks = {"database": database, "channel_layer": channel_layer}
    problems = [name for name, check in checks.items() if not check["ok"]]
    if database["ok"] and not workers:
        problems.append("no_media_worker")
    elif workers and not free:
        problems.append("no_free_capacity")
    body = {
        "status": "ok" if not problems else "unavailable",
        "problems": problems,
        "database": database,
        "channel_layer": channel_layer,
        "media_workers": [
            {
                "capacity": worker.capacity,
                "calls": worker.calls,
                "free": worker.free,
                "draining": worker.draining,
                "embedded": worker.embedded,
            }
            for worker in workers
        ],
        "free_capacity": free,
    }
    return JsonResponse(body, status=200 if not problems else 503)


async def _database_check() -> dict:
    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    return await _timed(sync_to_async(select_one)())


async def _channel_layer_check() -> dict:
    """A message to a fresh channel of this process and back: what every call's signaling does."""

    async def round_trip() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "healthz.ping"})
        await layer.receive(channel)

    return await _timed(round_trip())


async def _timed(check) -> dict:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def metrics(request):
    if not _metrics_allowed(request):
        return JsonResponse(
            error_body(
                "forbidden",
                "Metrics are for staff users and the addresses in METRICS_ALLOWED_ADDRESSES.",
            ),
            status=403,
        )
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE)


def _metrics_allowed(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    address = client_ip_get(request)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in settings.METRICS_ALLOWED_NETWORKS)
