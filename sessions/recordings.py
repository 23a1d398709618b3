"""Writes of call recordings: stored after the call, deleted with it or when retention runs out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from sessions.models import CallSession


def call_recording_save(*, session_id: str, path: Path) -> str:
    """Move a finished recording (a temporary file the media worker wrote) into the configured
    storage and attach it to its call. Returns the stored name."""
    session = CallSession.objects.get(public_id=session_id)
    try:
        with path.open("rb") as handle:
            name = default_storage.save(
                f"recordings/{timezone.now():%Y/%m}/{session_id}.ogg", handle
            )
    finally:
        path.unlink(missing_ok=True)
    # An update, not save(): the call's other fields belong to whoever ends it.
    CallSession.objects.filter(pk=session.pk).update(recording=name)
    return name


def call_recording_delete(*, session: CallSession) -> None:
    """Remove a call's recording file (when the call is deleted, or its retention ran out)."""
    name = session.recording.name
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def call_recordings_purge(*, now: datetime | None = None) -> int:
    """Delete recordings older than RECORDING_RETENTION_DAYS (0 keeps them). Returns how many."""
    days = settings.RECORDING_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = CallSession.objects.exclude(recording="").filter(created_at__lt=cutoff)
    purged = 0
    for session in expired.only("pk", "recording").iterator():
        with transaction.atomic():
            call_recording_delete(session=session)
            CallSession.objects.filter(pk=session.pk).update(recording="")
        purged += 1
    return purged
