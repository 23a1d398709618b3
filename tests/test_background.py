"""Background work without a broker: real worker threads and a real timer, no mocks."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from sessions.models import CallSession
from sessions.services import call_session_start
from tests.sessions.test_transcript_tasks import wait_until
from thinnest_site.background import (
    BackgroundRunner,
    background_cancel_pending,
    background_runner,
    background_schedule_start,
    background_schedule_stop,
    background_wait_idle,
    task_enqueue,
)
from thinnest_site.celery import app

ROOT = Path(__file__).resolve().parent.parent
# Runs of the periodic test task, by the thread that ran them.
TICKS: list[tuple[float, str]] = []


@app.task(name="tests.background.tick")
def tick() -> None:
    TICKS.append((time.monotonic(), threading.current_thread().name))


@app.task(name="tests.background.slow")
def slow(seconds: float, done: list) -> None:
    time.sleep(seconds)
    done.append(threading.current_thread().name)


@pytest.fixture(autouse=True)
def _runner_left_clean():
    TICKS.clear()
    yield
    background_schedule_stop()
    background_cancel_pending()
    assert background_wait_idle(timeout=30)


@pytest.fixture
def runner():
    runner = BackgroundRunner(workers=2)
    yield runner
    runner.periodic_clear()
    runner.cancel_pending()
    assert runner.wait_idle(timeout=10)


def test_a_job_runs_on_a_worker_thread_after_its_countdown(runner):
    ran: list[tuple[float, str]] = []
    queued = time.monotonic()
    assert runner.submit(
        lambda: ran.append((time.monotonic(), threading.current_thread().name)),
        name="later",
        countdown=0.3,
    )
    assert runner.wait_idle(timeout=5)
    ((at, thread),) = ran
    assert at - queued >= 0.3 and thread.startswith("background-")


def test_jobs_run_side_by_side_up_to_the_number_of_workers(runner):
    running, most = [0], [0]
    lock = threading.Lock()

    def job() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1

    for _ in range(5):
        runner.submit(job, name="job")
    assert runner.wait_idle(timeout=5)
    assert most[0] == 2


def test_a_failing_job_is_logged_and_the_workers_go_on(runner, caplog):
    ran = []

    def fail() -> None:
        raise RuntimeError("receiver exploded")

    with caplog.at_level(logging.ERROR, logger="thinnest_site.background"):
        runner.submit(fail, name="fail")
        runner.submit(lambda: ran.append(1), name="after", countdown=0.05)
        assert runner.wait_idle(timeout=5)
    assert ran == [1]
    assert "Background job fail failed" in caplog.text and "receiver exploded" in caplog.text


def test_a_full_queue_refuses_work_instead_of_piling_it_up(caplog):
    runner = BackgroundRunner(workers=1, max_pending=2)
    assert runner.submit(lambda: None, name="a", countdown=60)
    assert runner.submit(lambda: None, name="b", countdown=60)
    assert not runner.submit(lambda: None, name="c")
    assert "Background queue full" in caplog.text
    assert runner.cancel_pending() == 2 and runner.wait_idle(timeout=1)


def test_without_a_broker_a_queued_task_leaves_the_caller_at_once():
    assert app.conf.task_always_eager  # as in the default installation (and tests/conftest.py)
    done: list[str] = []
    began = time.monotonic()
    task_enqueue(slow, (0.5, done))
    assert time.monotonic() - began < 0.2 and done == []
    assert background_wait_idle(timeout=5)
    assert done and done[0].startswith("background-")


def test_a_periodic_job_runs_again_and_again(runner):
    ran: list[float] = []
    began = time.monotonic()
    assert runner.every(lambda: ran.append(time.monotonic()), name="tick", seconds=0.1)
    assert not runner.every(lambda: None, name="tick", seconds=0.1)  # one job per name
    wait_until(lambda: len(ran) >= 3, timeout=5)
    # The first run waits an interval too, as under Celery beat.
    assert ran[0] - began >= 0.1 and all(b - a >= 0.1 for a, b in itertools.pairwise(ran))
    runner.periodic_clear()
    assert runner.wait_idle(timeout=5)
    count = len(ran)
    time.sleep(0.3)
    assert len(ran) == count  # cleared means stopped


def test_the_schedule_runs_the_beat_schedule_entries(settings):
    settings.CELERY_BEAT_SCHEDULE = {"tick": {"task": "tests.background.tick", "schedule": 0.1}}
    assert background_schedule_start() == ["tick"]
    assert background_schedule_start() == []  # started once
    wait_until(lambda: len(TICKS) >= 3, timeout=5)
    assert all(thread.startswith("background-") for _, thread in TICKS)
    background_schedule_stop()
    assert background_runner().periodic_names() == []


def test_the_default_schedule_is_the_celery_beat_schedule():
    assert background_schedule_start() == list(django_settings.CELERY_BEAT_SCHEDULE)
    assert background_runner().periodic_names() == sorted(
        [
            "finalize-abandoned-calls",
            "purge-old-recordings",
            "resume-call-summaries",
            "resume-knowledge-indexing",
            "resume-webhook-deliveries",
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_a_never_redeemed_session_expires_with_no_celery_beat(agent, secret_key, settings):
    settings.CALL_TOKEN_TTL_SECONDS = 60
    schedule = dict(settings.CELERY_BEAT_SCHEDULE)
    schedule["finalize-abandoned-calls"] = {
        **schedule["finalize-abandoned-calls"],
        "schedule": 0.2,
    }
    settings.CELERY_BEAT_SCHEDULE = schedule
    session = call_session_start(agent=agent, api_key=secret_key[0]).session
    CallSession.objects.filter(pk=session.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )

    background_schedule_start()

    wait_until(
        lambda: CallSession.objects.get(pk=session.pk).status == CallSession.Status.EXPIRED,
        timeout=10,
    )
    assert CallSession.objects.get(pk=session.pk).end_reason == "token_expired"


def _web_process_schedule(**env: str) -> str:
    # The web process is the one that imports thinnest_site.asgi; a fresh interpreter shows what
    # importing it starts. No broker unless told.
    unset = (
        "REDIS_URL",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CELERY_TASK_ALWAYS_EAGER",
        "BACKGROUND_SCHEDULE_ENABLED",
    )
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(env)
    script = (
        "import thinnest_site.asgi\n"
        "from thinnest_site.background import background_runner\n"
        "print(','.join(background_runner().periodic_names()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_the_web_process_runs_the_schedule_when_there_is_no_broker():
    started = _web_process_schedule()
    assert started == (
        "finalize-abandoned-calls,purge-old-recordings,resume-call-summaries,"
        "resume-knowledge-indexing,resume-webhook-deliveries"
    )
    assert _web_process_schedule(BACKGROUND_SCHEDULE_ENABLED="false") == ""
