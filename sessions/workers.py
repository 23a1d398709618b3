"""Media workers as the database knows them, and the calls that a dead one left behind (the
reads are in sessions/selectors.py).

Each media worker process reports itself every ``REPORT_SECONDS`` (voice/worker.py): its
capacity, the calls it holds and would take, whether it is draining. A worker not heard from
for ``MEDIA_WORKER_GONE_AFTER_SECONDS`` (sessions/selectors.py) is dead (killed, or its machine
gone), and the calls it held, which it can no longer end, are closed with what was stored.
The database rather than Redis: it is there in every mode, the embedded one included, and a
few writes a second cost nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from sessions.models import CallSession, MediaWorkerRecord
from sessions.selectors import media_worker_seen_since
from sessions.services import call_session_end

REPORT_SECONDS = 2.0
# Rows of workers gone this long are deleted: /healthz lists the live ones only anyway.
FORGET_AFTER = timedelta(days=1)
_OPEN_STATUSES = (CallSession.Status.CONNECTING, CallSession.Status.ACTIVE)


def media_worker_report(
    *,
    name: str,
    host: str,
    pid: int,
    embedded: bool,
    capacity: int,
    calls: int,
    draining: bool,
    free: int,
    load: dict,
) -> None:
    now = timezone.now()
    state = {
        "host": host[:255],
        "pid": pid,
        "embedded": embedded,
        "capacity": capacity,
        "calls": calls,
        "draining": draining,
        "free": free,
        "load": load,
        "seen_at": now,
    }
    MediaWorkerRecord.objects.update_or_create(
        name=name, defaults=state, create_defaults={**state, "started_at": now}
    )


def media_worker_forget(*, name: str) -> None:
    """A worker that stopped cleanly (its calls are ended and recorded)."""
    MediaWorkerRecord.objects.filter(name=name).delete()


def call_session_assign_worker(*, session_id: str, worker: str) -> None:
    CallSession.objects.filter(public_id=session_id).update(media_worker=worker)


def calls_close_orphaned(*, every_open_call: bool = False) -> list[str]:
    """End the calls no process will end any more, with what was stored of them (reason
    ``error``), and return their ids: those held by a worker that is gone, or, with
    ``every_open_call`` (the embedded mode's one process starting: nothing else can hold a
    call), every call still connecting or active."""
    calls = CallSession.objects.filter(status__in=_OPEN_STATUSES)
    if not every_open_call:
        live = MediaWorkerRecord.objects.filter(seen_at__gte=media_worker_seen_since()).values(
            "name"
        )
        calls = calls.exclude(media_worker="").exclude(media_worker__in=live)
    closed = []
    for session_id in calls.values_list("public_id", flat=True):
        call_session_end(
            session_id=session_id,
            reason="error",
            error_message="The process that held the call stopped before the call ended.",
        )
        closed.append(session_id)
    MediaWorkerRecord.objects.filter(seen_at__lt=timezone.now() - FORGET_AFTER).delete()
    return closed
