"""``honcho``, with time for the media worker to drain its calls when the product is stopped.

    python deploy/run_procfile.py start [honcho start options]

honcho 2 (honcho/manager.py) answers SIGINT or SIGTERM, or any one of its processes exiting, by
sending SIGTERM to every process, and SIGKILL to those still running ``KILL_WAIT`` (5) seconds
after the first one exited. The web process and Celery exit within a second of SIGTERM, so a
media worker that is letting its calls finish (SHUTDOWN_GRACE_SECONDS, 30 by default) is killed
about 5 s in, its calls cut without a word and recorded as lost. honcho has no option for that
wait; ``KILL_WAIT`` is a module global its loop reads on each pass, so it is set here before
honcho's own command line runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho import environ, manager
from honcho.command import main

DEFAULT_SHUTDOWN_GRACE_SECONDS = 30.0
# A draining process exits at the latest SHUTDOWN_GRACE_SECONDS + 5 s after SIGTERM
# (voice/shutdown.py); this leaves it 5 s more before SIGKILL.
KILL_MARGIN_SECONDS = 10.0


def kill_wait_seconds(env: Mapping[str, str]) -> float:
    """How long honcho waits before SIGKILL, given the processes' environment."""
    grace = env.get("SHUTDOWN_GRACE_SECONDS") or DEFAULT_SHUTDOWN_GRACE_SECONDS
    return float(grace) + KILL_MARGIN_SECONDS


def processes_env(env_file: Path) -> dict[str, str]:
    # What honcho gives the processes: its .env file under the environment it was started with.
    dotenv = environ.parse(env_file.read_text()) if env_file.is_file() else {}
    return {**os.environ, **dotenv}


if __name__ == "__main__":
    manager.KILL_WAIT = kill_wait_seconds(processes_env(Path(".env")))
    main(sys.argv[1:] or ["start"])
