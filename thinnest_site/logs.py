"""Log lines that say which call they belong to, as plain text or as JSON (``LOG_FORMAT``).

Where a call's work starts (the media worker's call tasks, the call WebSocket consumer), the code
runs inside ``call_logging(session_id)``; every line logged from there on, by any logger, carries
``call_id``. The id lives in a context variable, so it follows the work into the asyncio tasks
started from there, ``asyncio.to_thread`` and Channels' ``database_sync_to_async`` (they copy the
context), and never leaks into another call's task. ``loop.run_in_executor`` does not copy it:
hand it ``functools.partial(contextvars.copy_context().run, function, ...)`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.json import JsonFormatter

current_call_id: ContextVar[str] = ContextVar("current_call_id", default="")

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_FORMAT_IN_CALL = "%(asctime)s %(levelname)s %(name)s [%(call_id)s]: %(message)s"
# The fields of a JSON line besides call_id and time; ``exc_info`` is added when there is one,
# and whatever a line passed with ``extra=``.
JSON_FIELDS = ["levelname", "name", "message"]
JSON_RENAMED = {"levelname": "level", "name": "logger"}


@contextmanager
def call_logging(session_id: str) -> Iterator[None]:
    """Lines logged inside this block, and in tasks and ``to_thread`` threads started from it,
    carry ``call_id=session_id``. In a task of its own, ``current_call_id.set(session_id)`` at its
    start does the same for the rest of the task."""
    token = current_call_id.set(session_id)
    try:
        yield
    finally:
        current_call_id.reset(token)


class CallIdFilter(logging.Filter):
    """Puts the current call's id on each record as ``call_id`` ("" outside a call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = current_call_id.get()
        return True


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message``, with ``[call_id]`` after the logger inside a call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(PLAIN_FORMAT, *args, **kwargs)
        self._in_call = logging.PercentStyle(PLAIN_FORMAT_IN_CALL)

    def formatMessage(self, record: logging.LogRecord) -> str:
        if getattr(record, "call_id", ""):
            return self._in_call.format(record)
        return super().formatMessage(record)


def json_formatter() -> JsonFormatter:
    """One JSON object per line: call_id, level, logger, message and time (ISO 8601, UTC)."""
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields=JSON_RENAMED,
        timestamp="time",
        # call_id comes with the record's other extra attributes; a record that did not pass
        # through CallIdFilter (a handler added elsewhere) still gets the field.
        defaults={"call_id": ""},
    )


def logging_config(*, log_format: str, level: str) -> dict:
    """Django's LOGGING for ``log_format`` "plain" or "json": every line to stderr."""
    if log_format not in ("plain", "json"):
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {log_format!r}")
    formatter = "PlainFormatter" if log_format == "plain" else "json_formatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"call_id": {"()": f"{__name__}.CallIdFilter"}},
        "formatters": {log_format: {"()": f"{__name__}.{formatter}"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["call_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.channels.server": {"level": "WARNING"}},
    }
