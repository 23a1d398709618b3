"""The media worker inside the web process, for installs without Redis (one process tree).

The in-memory channel layer only reaches consumers of the same process, so the worker has to
live there too: started on daphne's event loop by the first call that needs it.
"""

from __future__ import annotations

import asyncio
import logging

from voice.worker import MediaWorker

logger = logging.getLogger(__name__)

_worker: MediaWorker | None = None
_task: asyncio.Task | None = None
# Set by a drain (SIGTERM): no new worker is started any more.
_shutting_down = False


def ensure_embedded_worker() -> MediaWorker | None:
    global _worker, _task
    loop = asyncio.get_running_loop()
    if _shutting_down:
        return _worker  # draining (it declines the call) or gone: no new one
    if _worker is None or _task is None or _task.done() or _task.get_loop() is not loop:
        _worker = MediaWorker(embedded=True)
        _task = loop.create_task(_worker.run(), name="embedded-media-worker")
        _task.add_done_callback(_log_failure)
    return _worker


def _log_failure(task: asyncio.Task) -> None:
    # Nobody awaits this task: without this a worker that cannot start (a missing model) would
    # only show as calls timing out with media_unavailable. The next call tries again.
    if not task.cancelled() and task.exception() is not None:
        logger.error("the embedded media worker stopped", exc_info=task.exception())


async def drain_embedded_worker(grace_seconds: float) -> None:
    """SIGTERM: the worker declines new calls and ends its calls within ``grace_seconds``."""
    global _shutting_down
    _shutting_down = True
    if _worker is not None:
        await _worker.drain(grace_seconds)
    if _task is not None:
        await asyncio.gather(_task, return_exceptions=True)


async def stop_embedded_worker() -> None:
    global _worker, _task
    if _worker is not None:
        await _worker.stop()
    if _task is not None:
        await asyncio.gather(_task, return_exceptions=True)
    _worker = _task = None
