"""Background work when there is no broker: a few worker threads and a timer heap.

Without REDIS_URL, Celery runs tasks eagerly: inline, in the thread that queued them. For a
webhook send that thread is Channels' one shared sync thread, so a receiver that never answers
stalls every call; and nothing runs the beat schedule. Celery has no in-process executor that
leaves the caller free (eager mode is inline by design; its ``memory://`` transport still needs a
worker process), hence this small runner. Threads, not asyncio: the work is blocking database
and HTTP calls, and the ORM is synchronous.

With a broker none of this runs: ``task_enqueue`` hands the task to Celery, and Celery beat runs
the schedule.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger(__name__)

# One-off jobs waiting or running beyond this are refused rather than piled up: the work queued
# here (webhook sends) stays pending in the database, and the periodic sweep queues it again.
MAX_PENDING_JOBS = 1000


@dataclass(order=True)
class _Job:
    due: float  # time.monotonic()
    seq: int
    run: Callable[[], Any] = field(compare=False)
    name: str = field(compare=False)
    every: float | None = field(compare=False, default=None)  # periodic: seconds between runs
    generation: int = field(compare=False, default=0)


class BackgroundRunner:
    """Runs callables on ``workers`` daemon threads, now or after a countdown, once or every so
    many seconds. Threads start with the first job, so a process that queues nothing has none."""

    def __init__(self, *, workers: int, max_pending: int = MAX_PENDING_JOBS) -> None:
        self._workers = max(1, workers)
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # one-off jobs queued or running
        self._running = 0  # jobs of any kind running now
        self._periodic: set[str] = set()  # names of the periodic jobs, waiting or running
        # Bumped by ``periodic_clear``: a periodic job of an older generation is not run again.
        self._generation = 0

    def submit(self, run: Callable[[], Any], *, name: str, countdown: float = 0) -> bool:
        """Queue ``run`` to start in ``countdown`` seconds. False when the queue is full."""
        with self._cond:
            if self._pending >= self._max_pending:
                logger.warning("Background queue full (%d jobs): dropped %s", self._pending, name)
                return False
            self._pending += 1
            self._push(run, name=name, due=time.monotonic() + max(0.0, countdown))
        return True

    def every(self, run: Callable[[], Any], *, name: str, seconds: float) -> bool:
        """Run ``run`` every ``seconds``, the first time ``seconds`` from now (as Celery beat
        does). Runs of one job never overlap: the next is timed from the end of the last.
        False, and nothing added, if a periodic job of that name exists."""
        with self._cond:
            if name in self._periodic:
                return False
            self._periodic.add(name)
            self._push(
                run,
                name=name,
                due=time.monotonic() + seconds,
                every=seconds,
                generation=self._generation,
            )
        return True

    def periodic_clear(self) -> None:
        with self._cond:
            self._generation += 1
            self._periodic.clear()
            self._heap = [job for job in self._heap if job.every is None]
            heapq.heapify(self._heap)

    def cancel_pending(self) -> int:
        """Drop the one-off jobs not started yet (a test's leftovers); returns how many."""
        with self._cond:
            kept = [job for job in self._heap if job.every is not None]
            dropped = len(self._heap) - len(kept)
            self._heap = kept
            heapq.heapify(self._heap)
            self._pending -= dropped
            self._cond.notify_all()
        return dropped

    def periodic_names(self) -> list[str]:
        with self._cond:
            return sorted(self._periodic)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no one-off job is queued (countdowns included) and nothing runs. Periodic
        jobs waiting for their next run do not count. False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _push(self, run: Callable[[], Any], *, name: str, due: float, **extra: Any) -> None:
        # Called with the lock held.
        heapq.heappush(self._heap, _Job(due, next(self._seq), run, name, **extra))
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers:
            thread = threading.Thread(
                target=self._work, name=f"background-{len(self._threads) + 1}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._cond.notify_all()

    def _next_job(self) -> _Job:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._running += 1
                    return heapq.heappop(self._heap)
                self._cond.wait(self._heap[0].due - now if self._heap else None)

    def _work(self) -> None:
        while True:
            job = self._next_job()
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1
                    if job.every is None:
                        self._pending -= 1
                    elif job.generation == self._generation:
                        self._push(
                            job.run,
                            name=job.name,
                            due=time.monotonic() + job.every,
                            every=job.every,
                            generation=job.generation,
                        )
                    self._cond.notify_all()

    def _run(self, job: _Job) -> None:
        # Each job is a request of its own as far as the database goes: a connection left
        # broken or past CONN_MAX_AGE by the last one is not reused (as Django does around each
        # HTTP request). Nothing a job raises may end the thread.
        _connections_close_old(job.name)
        try:
            job.run()
        except Exception:
            logger.exception("Background job %s failed", job.name)
        finally:
            _connections_close_old(job.name)


def _connections_close_old(job_name: str) -> None:
    try:
        close_old_connections()
    except Exception:
        logger.exception("Closing database connections around background job %s failed", job_name)


_runner: BackgroundRunner | None = None
_runner_lock = threading.Lock()


def background_runner() -> BackgroundRunner:
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = BackgroundRunner(workers=settings.BACKGROUND_WORKERS)
        return _runner


def _forget_runner_after_fork() -> None:
    # A forked child has none of the parent's threads, and its copy of the lock may be held.
    global _runner, _runner_lock
    _runner, _runner_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_runner_after_fork)


def task_enqueue(task: Task, args: Sequence[Any] = (), *, countdown: float = 0) -> None:
    """Queue a Celery task to run ``countdown`` seconds from now, never in the caller's thread.

    With a broker this is ``apply_async``. Without one (eager mode) the task runs on the
    background runner. The Celery app's flag decides, not the setting it was read from: the two
    agree in production, and tests switch the app's (tests/conftest.py, real-worker fixtures)."""
    if not task.app.conf.task_always_eager:
        task.apply_async(tuple(args), countdown=countdown or None)
        return
    args = tuple(args)
    background_runner().submit(lambda: task.apply(args), name=task.name, countdown=countdown)


def background_wait_idle(timeout: float = 10.0) -> bool:
    """For tests and shutdown: wait until the queued one-off work is done."""
    return background_runner().wait_idle(timeout)


def background_cancel_pending() -> int:
    return background_runner().cancel_pending()


def _schedule_seconds(schedule: Any) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every.total_seconds() if isinstance(run_every, timedelta) else None


def background_schedule_start() -> list[str]:
    """Run the jobs of CELERY_BEAT_SCHEDULE on the background runner, so that there is one list
    of periodic jobs whether or not Celery beat runs. Returns the names started; calling it again
    starts nothing twice."""
    from thinnest_site.celery import app

    # Celery imports the apps' tasks modules when a worker starts; this process is no worker.
    app.loader.import_default_modules()
    runner = background_runner()
    started = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        seconds = _schedule_seconds(entry["schedule"])
        if not seconds or seconds <= 0:
            # A crontab needs beat's calendar logic; every entry today is an interval.
            logger.warning("Background schedule: %s has no fixed interval, not run", name)
            continue
        task = app.tasks[entry["task"]]
        args = tuple(entry.get("args", ()))
        if runner.every(lambda task=task, args=args: task.apply(args), name=name, seconds=seconds):
            started.append(name)
    return started


def background_schedule_stop() -> None:
    background_runner().periodic_clear()
