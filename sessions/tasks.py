from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from sessions import recordings, services, summaries, workers
from thinnest_site.background import task_enqueue


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def call_transcript_store(session_id: str) -> None:
    services.call_transcript_store(session_id=session_id)


@shared_task(bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def call_summary_write(self, session_id: str, queued_at: float = 0.0) -> None:
    # Eager (no broker): this runs in the web process, whose embedded media worker may be
    # answering calls with the same model. Elsewhere it shares the machine's cores with them
    # unless the setting says otherwise. The service says how long to wait the calls out.
    gives_way = (
        bool(self.request.is_eager) and settings.MEDIA_WORKER_EMBEDDED
    ) or settings.CALL_SUMMARY_GIVES_WAY_TO_CALLS
    wait = summaries.call_summary_delay(queued_at=queued_at, gives_way=gives_way)
    if wait:
        task_enqueue(call_summary_write, (session_id, queued_at), countdown=wait)
        return
    try:
        summaries.call_summary_write(
            session_id=session_id,
            yield_to_calls=gives_way and not summaries.call_summary_overdue(queued_at),
        )
    except summaries.SummaryDeferred:
        task_enqueue(
            call_summary_write, (session_id, queued_at), countdown=summaries.RECHECK_SECONDS
        )


@shared_task
def call_summaries_overdue() -> list[str]:
    return summaries.call_summaries_overdue()


@shared_task
def calls_finalize_abandoned() -> None:
    for session_id in services.calls_finalize_abandoned():
        call_transcript_store.delay(session_id)
    # Calls whose media worker died (their end stores their transcript).
    workers.calls_close_orphaned()


@shared_task
def call_recordings_purge() -> int:
    return recordings.call_recordings_purge()
