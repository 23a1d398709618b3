"""Log lines as LOG_FORMAT says, each with the id of the call it was logged for."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from thinnest_site.logs import call_logging, current_call_id, logging_config

ROOT = Path(__file__).resolve().parent.parent


class CapturedLog:
    """A logger whose lines are written by the console handler LOGGING describes (its formatter
    and filters), into a buffer instead of stderr."""

    def __init__(self, log_format: str) -> None:
        config = logging_config(log_format=log_format, level="INFO")
        console = config["handlers"]["console"]
        self.buffer = io.StringIO()
        handler = logging.StreamHandler(self.buffer)
        handler.setFormatter(import_string(config["formatters"][console["formatter"]]["()"])())
        for name in console["filters"]:
            handler.addFilter(import_string(config["filters"][name]["()"])())
        self.logger = logging.getLogger(f"tests.logs.{log_format}")
        self.logger.handlers = [handler]
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def json_log():
    return CapturedLog("json")


def test_a_json_line_logged_in_a_call_carries_its_id(json_log):
    with call_logging("session_x"):
        json_log.logger.warning("peer %s connected", "a")
    json_log.logger.info("between calls")

    in_call, outside = json_log.json_lines()
    assert in_call["call_id"] == "session_x"
    assert in_call["level"] == "WARNING"
    assert in_call["logger"] == "tests.logs.json"
    assert in_call["message"] == "peer a connected"
    assert datetime.fromisoformat(in_call["time"]).tzinfo is not None
    assert outside["call_id"] == ""
    assert outside["message"] == "between calls"


def test_a_json_line_keeps_the_traceback(json_log):
    try:
        raise RuntimeError("broken voice")
    except RuntimeError:
        json_log.logger.exception("the call failed")
    (line,) = json_log.json_lines()
    assert "RuntimeError: broken voice" in line["exc_info"]


def test_the_call_id_is_restored_after_a_nested_call_block(json_log):
    with call_logging("session_outer"):
        with call_logging("session_inner"):
            json_log.logger.info("inner")
        json_log.logger.info("outer")
    assert [line["call_id"] for line in json_log.json_lines()] == ["session_inner", "session_outer"]


def test_a_thread_from_asyncio_to_thread_logs_with_the_call_id_of_its_task(json_log):
    async def call_task(session_id: str) -> int:
        current_call_id.set(session_id)  # in the task's own copy of the context
        return await asyncio.to_thread(log_from_this_thread, json_log.logger, "in a thread")

    async def two_calls() -> list[int]:
        return await asyncio.gather(call_task("session_a"), call_task("session_b"))

    thread_ids = asyncio.run(two_calls())
    json_log.logger.info("after the calls")

    assert threading.get_ident() not in thread_ids
    lines = json_log.json_lines()
    assert sorted(line["call_id"] for line in lines[:2]) == ["session_a", "session_b"]
    assert lines[2]["call_id"] == ""


def test_the_call_paths_database_threads_log_with_the_call_id(json_log, db):
    # call_db (Channels' database_sync_to_async on a pool of its own) copies the context too.
    from thinnest_site.db import call_db

    async def call_task() -> int:
        with call_logging("session_db"):
            return await call_db(log_from_this_thread)(json_log.logger, "a database call")

    assert asyncio.run(call_task()) != threading.get_ident()
    assert json_log.json_lines()[0]["call_id"] == "session_db"


def test_run_in_executor_loses_the_call_id_unless_the_context_is_copied(json_log):
    # Unlike asyncio.to_thread, loop.run_in_executor runs the function in the worker thread's
    # own context: code that hands work to a pool that way must pass the context along.
    async def call_task() -> None:
        loop = asyncio.get_running_loop()
        with call_logging("session_pool"), ThreadPoolExecutor(1) as pool:
            await loop.run_in_executor(pool, log_from_this_thread, json_log.logger, "bare")
            in_context = functools.partial(
                contextvars.copy_context().run, log_from_this_thread, json_log.logger, "copied"
            )
            await loop.run_in_executor(pool, in_context)

    asyncio.run(call_task())
    bare, copied = json_log.json_lines()
    assert (bare["message"], bare["call_id"]) == ("bare", "")
    assert (copied["message"], copied["call_id"]) == ("copied", "session_pool")


def test_the_inference_pool_runs_a_calls_model_work_with_its_id(json_log):
    from voice.pipeline.inference import inference_pool

    async def call_task() -> None:
        loop = asyncio.get_running_loop()
        with call_logging("session_models"):
            await loop.run_in_executor(inference_pool(), log_from_this_thread, json_log.logger, "x")

    asyncio.run(call_task())
    assert json_log.json_lines()[0]["call_id"] == "session_models"


def test_a_plain_line_is_todays_format_with_the_call_id_when_there_is_one():
    log = CapturedLog("plain")
    with call_logging("session_x"):
        log.logger.info("opened")
    log.logger.info("idle")

    in_call, outside = log.lines()
    assert in_call.endswith(" INFO tests.logs.plain [session_x]: opened")
    assert outside.endswith(" INFO tests.logs.plain: idle")
    # "2026-01-31 12:00:00,123", as before LOG_FORMAT existed.
    datetime.strptime(outside.split(" INFO ")[0], "%Y-%m-%d %H:%M:%S,%f")


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config(log_format="xml", level="INFO")


def test_log_format_json_from_the_environment_makes_every_line_of_a_process_json(tmp_path):
    # The settings as a real process loads them: LOG_FORMAT read, LOGGING applied by Django.
    script = textwrap.dedent(
        """
        import django, logging
        django.setup()
        from thinnest_site.logs import call_logging
        log = logging.getLogger("voice.worker")
        log.info("ready")
        with call_logging("session_env"):
            log.info("call opened")
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "thinnest_site.settings",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Every line, Django's and its apps' as well (django-axes says hello), is JSON.
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [
        (line["message"], line["call_id"]) for line in lines if line["logger"] == "voice.worker"
    ] == [
        ("ready", ""),
        ("call opened", "session_env"),
    ]


def log_from_this_thread(logger: logging.Logger, message: str) -> int:
    logger.info(message)
    return threading.get_ident()
