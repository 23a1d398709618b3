from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from sessions import recordings, services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def call_transcript_store(session_id: str) -> None:
    services.call_transcript_store(session_id=session_id)


@shared_task
def calls_finalize_abandoned() -> None:
    for session_id in services.calls_finalize_abandoned():
        call_transcript_store.delay(session_id)


@shared_task
def call_recordings_purge() -> int:
    return recordings.call_recordings_purge()
