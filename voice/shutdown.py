"""Stopping a process that holds calls: on SIGTERM, drain; whatever happens, exit in time.

A supervisor (systemd, Docker, honcho) sends SIGTERM and waits a while before SIGKILL. In that
while the media worker declines new calls, lets the calls in progress go on for up to
``SHUTDOWN_GRACE_SECONDS``, then cuts the rest, telling each caller why (voice/worker.py). The
process then exits, at the latest ``SHUTDOWN_GRACE_SECONDS`` + 5 s after the signal: a thread
blocked on a model or a socket must not keep it alive (it once took six minutes and a SIGKILL).

A second SIGTERM, or SIGINT (Ctrl-C), stops at once: calls end as ``server_shutdown`` unheard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# After the drain, what is left (closing sockets, joining idle threads) takes well under this.
EXIT_AFTER_DRAIN_SECONDS = 5.0
# Ctrl-C, or a second SIGTERM: ending the calls and recording them.
EXIT_AFTER_STOP_SECONDS = 5.0

_deadline_lock = threading.Lock()
_deadline: float | None = None


def exit_deadline(seconds: float) -> None:
    """Make sure the process is gone ``seconds`` from now, whatever still runs in it. A later
    deadline than one already set changes nothing."""
    global _deadline
    due = time.monotonic() + seconds
    with _deadline_lock:
        if _deadline is not None and _deadline <= due:
            return
        _deadline = due
    timer = threading.Timer(seconds, _exit_if_due, args=(due,))
    timer.daemon = True
    timer.start()


def _exit_if_due(due: float) -> None:
    with _deadline_lock:
        if _deadline != due:
            return  # an earlier deadline has been set since, and has its own timer
    logger.error("the process did not exit in time after it was asked to stop: exiting now")
    logging.shutdown()
    os._exit(1)


def install_drain_handlers(loop: asyncio.AbstractEventLoop, *, drain, stop, after_stop) -> None:
    """On the first SIGTERM run ``drain(grace)`` on ``loop``; on SIGINT or a second SIGTERM run
    ``stop()``; after either, ``after_stop()`` (e.g. stop the server). Plain ``signal.signal``
    rather than ``loop.add_signal_handler``: under daphne the loop is Twisted's, which has its
    own signal plumbing."""
    grace = settings.SHUTDOWN_GRACE_SECONDS
    state = {"draining": False}

    async def drain_then_exit() -> None:
        try:
            await drain(grace)
        except Exception:
            logger.exception("the drain failed; stopping")
            await stop()
        exit_deadline(EXIT_AFTER_DRAIN_SECONDS)
        _quietly(after_stop)

    async def stop_then_exit() -> None:
        try:
            await stop()
        finally:
            _quietly(after_stop)

    def on_signal(signum, frame) -> None:
        if signum == signal.SIGTERM and not state["draining"]:
            state["draining"] = True
            logger.info("SIGTERM: draining calls for up to %.0f s", grace)
            exit_deadline(grace + EXIT_AFTER_DRAIN_SECONDS)
            loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit()))
            return
        logger.info("%s: ending the calls now", signal.Signals(signum).name)
        exit_deadline(EXIT_AFTER_STOP_SECONDS)
        loop.call_soon_threadsafe(lambda: loop.create_task(stop_then_exit()))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _quietly(function) -> None:
    try:
        function()
    except Exception:  # e.g. the reactor has already stopped
        logger.debug("%r failed while stopping", function, exc_info=True)


def embedded_process_start() -> None:
    """The web process of the embedded mode, once daphne runs: it is the one process that can
    hold calls, so any call still connecting or active was left by its last run and is closed;
    and SIGTERM will drain the in-process media worker, then stop the server. Daphne's Twisted
    reactor installs its own handlers (stop at once) as it starts, so ours go in after it, once
    the reactor runs. Elsewhere (tests, another ASGI server) the reactor never runs and nothing
    happens."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return

    def install() -> None:
        try:
            install_at_start()
        except Exception:  # Twisted would swallow it: the process would not drain, unsaid
            logger.exception("could not prepare the embedded media worker's start and stop")

    def install_at_start() -> None:
        from voice import embedded

        # Before the first request is served; the ORM may not run on the event loop's thread.
        closing = threading.Thread(target=_calls_close_left_open, name="close-left-open")
        closing.start()
        closing.join()
        loop = asyncio.get_event_loop()  # Twisted's; it runs once the startup calls are done
        install_drain_handlers(
            loop,
            drain=embedded.drain_embedded_worker,
            stop=embedded.stop_embedded_worker,
            after_stop=reactor.stop,
        )
        # The media worker starts now rather than with the first call: /healthz finds it ready.
        loop.call_soon(embedded.ensure_embedded_worker)

    reactor.callWhenRunning(install)


def _calls_close_left_open() -> None:
    from django.db import connection

    from sessions.workers import calls_close_orphaned

    try:
        closed = calls_close_orphaned(every_open_call=True)
    except Exception:  # the server starts all the same; the periodic finaliser tries later
        logger.exception("could not close the calls left open by the last run")
        return
    finally:
        connection.close()
    if closed:
        logger.info("closed %d calls left open when this server last stopped", len(closed))
