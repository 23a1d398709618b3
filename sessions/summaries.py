"""After the call: its summary (the local model's two sentences) and its outcome (rules on its
turns), written once its transcript is stored, then ``call.ended``, which carries both.

The model part is voice/summary.py. Here: when it runs, that it runs once, and that a call whose
summary cannot be written still gets its outcome and its ``call.ended``.

Without a broker the summary runs on the web process's background threads, with the very model
instance live calls answer with (one generation at a time): a summary written during a call
would hold that call's next reply back by seconds. So there it waits while any call is
connecting or live, checking again every ``RECHECK_SECONDS``, for at most
``CALL_SUMMARY_MAX_DELAY_SECONDS``; then it runs anyway, so that a server that is never idle
still summarizes. A call that connects while a summary is being written stops it
(``SummaryDeferred``: the task waits again): measured before, the next call's first reply waited
4.6 s behind a summary begun in the second between two calls. With a broker a Celery worker
writes it with a model of its own, but on the same cores when it runs on the media worker's
machine: there it gives way to calls all the same (``CALL_SUMMARY_GIVES_WAY_TO_CALLS``, on by
default; measured: a 5-6 s summary during the next call held its first words back by 1-2 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from agents.models import WebhookEndpoint
from sessions.events import call_event_emit
from sessions.models import CallSession
from sessions.selectors import (
    call_session_get,
    call_sessions_in_progress_exist,
    call_sessions_summary_overdue,
    call_transcript_list,
)
from voice.summary import SummaryInterrupted, Turn, call_outcome, call_summarize

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 15.0
# The periodic sweep (``call_summaries_overdue``) leaves a call this long past the longest wait
# to its own queued task, and looks back no further than a day: older calls (from before
# summaries existed, say) are not summarized wholesale.
OVERDUE_MARGIN = timedelta(minutes=5)
OVERDUE_LOOKBACK = timedelta(days=1)
OVERDUE_BATCH = 20

# One summary at a time in this process: the model takes one generation at a time anyway, and
# summaries waiting for it would hold the few background threads that webhook sends need.
_running = threading.Lock()
# How often a summary that gives way to calls looks for one (a query each time).
CALL_WATCH_SECONDS = 0.2


class SummaryDeferred(Exception):
    """A call connected while the summary was being written: it was stopped, nothing stored."""


def call_summary_enqueue(session_id: str, *, queued_at: float | None = None) -> None:
    """Queue the call's summary for after the commit, never in the caller's thread (it takes
    seconds). ``queued_at`` (Unix time) starts the clock of its longest wait."""
    from sessions.tasks import call_summary_write  # tasks import this module
    from thinnest_site.background import task_enqueue

    queued_at = time.time() if queued_at is None else queued_at
    # robust: a broker that is down must not undo the stored transcript; the periodic sweep
    # queues the summary again.
    transaction.on_commit(
        lambda: task_enqueue(call_summary_write, (session_id, queued_at)), robust=True
    )


def call_summary_delay(*, queued_at: float, gives_way: bool) -> float:
    """Seconds to wait before writing a summary queued at ``queued_at``; 0: write it now.
    ``gives_way``: the summary would take the model (no broker, embedded media worker) or the
    cores (CALL_SUMMARY_GIVES_WAY_TO_CALLS) from live calls."""
    if not gives_way or call_summary_overdue(queued_at):
        return 0.0
    left = settings.CALL_SUMMARY_MAX_DELAY_SECONDS - (time.time() - queued_at)
    if _running.locked() or call_sessions_in_progress_exist():
        return min(RECHECK_SECONDS, left)
    return 0.0


def call_summary_overdue(queued_at: float) -> bool:
    """It has waited for the live calls as long as it may: written now, calls or not."""
    return time.time() - queued_at >= settings.CALL_SUMMARY_MAX_DELAY_SECONDS


def call_summary_write(
    *, session_id: str, force: bool = False, yield_to_calls: bool = False
) -> CallSession | None:
    """Write the call's summary and outcome, then emit ``call.ended``. ``yield_to_calls``: the
    model is the live calls' one; a call that connects meanwhile stops the summary and this
    raises ``SummaryDeferred``, having stored and sent nothing.

    Idempotent: a written summary is kept (``force`` writes it anew), so running this again only
    reads the turns again; the outcome follows the stored turns (the same turns, the same
    outcome). When the model fails (not installed, a broken file) the call keeps its outcome,
    gets no summary, and ``call.ended`` goes out all the same. Only ended calls (media flowed)
    are summarized; None when the call is gone."""
    session = call_session_get(public_id=session_id)
    if session is None or session.status != CallSession.Status.ENDED:
        return session
    agent = session.agent
    turns = [Turn(role=entry.role, text=entry.text) for entry in call_transcript_list(call=session)]
    outcome = call_outcome(turns=turns, handoff_line=agent.handoff_line)
    summary = ""
    if force or not session.summary:
        started = time.monotonic()
        try:
            with _running, _calls_watched(yield_to_calls) as cancel:
                summary, outcome = call_summarize(
                    turns=turns,
                    handoff_line=agent.handoff_line,
                    llm_model=agent.llm_model,
                    cancel=cancel,
                )
        except SummaryInterrupted as exc:
            logger.info("Call %s: its summary gave way to a call that connected", session_id)
            raise SummaryDeferred(session_id) from exc
        except Exception:
            logger.exception(
                "Summarizing call %s failed: it keeps its outcome (%s), without a summary",
                session_id,
                outcome,
            )
        else:
            logger.info(
                "Call %s summarized in %.1f s (%s)",
                session_id,
                time.monotonic() - started,
                outcome,
            )
    with transaction.atomic():
        # The row lock orders two runs at once: the second keeps the first one's summary.
        current = CallSession.objects.select_for_update().get(pk=session.pk)
        fields = []
        if summary and (force or not current.summary):
            current.summary = summary
            fields.append("summary")
        if current.outcome != outcome:
            current.outcome = outcome
            fields.append("outcome")
        if fields:
            current.save(update_fields=fields)
        call_event_emit(session=current, event=WebhookEndpoint.Event.CALL_ENDED)
    return current


@contextmanager
def _calls_watched(watch: bool) -> Iterator[threading.Event]:
    """An event set as soon as a call is connecting or live (``watch``), looked for every
    ``CALL_WATCH_SECONDS`` on a thread of its own until the block ends."""
    cancel, done = threading.Event(), threading.Event()
    if not watch:
        yield cancel
        return

    def look() -> None:
        try:
            while not done.is_set():
                if call_sessions_in_progress_exist():
                    cancel.set()
                    return
                done.wait(CALL_WATCH_SECONDS)
        finally:
            connection.close()  # this thread's own database connection

    watcher = threading.Thread(target=look, name="summary-call-watch", daemon=True)
    watcher.start()
    try:
        yield cancel
    finally:
        done.set()
        watcher.join()


def call_summaries_overdue() -> list[str]:
    """Queue the summaries (and with them ``call.ended``) that should have been written by now
    and were not; returns the calls' ids."""
    now = timezone.now()
    waited = timedelta(seconds=settings.CALL_SUMMARY_MAX_DELAY_SECONDS) + OVERDUE_MARGIN
    overdue = call_sessions_summary_overdue(
        ended_before=now - waited, ended_after=now - OVERDUE_LOOKBACK, limit=OVERDUE_BATCH
    )
    for session_id in overdue:
        # Overdue: no more waiting for live calls to end.
        call_summary_enqueue(session_id, queued_at=0.0)
    return overdue
