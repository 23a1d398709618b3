"""The Procfile, run as an operator runs it: honcho starts the web process, a media worker and
Celery; a real caller (an aiortc peer over the real WebSocket) calls through them; SIGTERM stops
them all.

The processes run on a SQLite file in a temporary directory, not PostgreSQL: these tests run in a
loopback-only network namespace where the machine's PostgreSQL is out of reach (tests/e2e/
conftest.py). Redis is a private redis-server. The Procfile itself takes DATABASE_URL and
REDIS_URL from the environment like any process, so production runs it on PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product, in_own_loop
from thinnest_site import launch
from thinnest_site.launch import BIN, ROOT, wait_for_port

pytestmark = pytest.mark.e2e

PROCESSES = ("web", "worker", "celery")
# The greeting pipeline (espeak-ng, no models): what is tested is the processes, not the voice.
GREETING_ONLY = {"VOICE_PIPELINE": "greeting"}
# The setting's default: a media worker told to stop lets its calls go on this long, then exits
# within 5 s more (voice/shutdown.py).
SHUTDOWN_GRACE_SECONDS = 30.0
HONCHO = [str(BIN / "honcho")]
RUN_PROCFILE = [str(BIN / "python"), str(ROOT / "deploy" / "run_procfile.py")]


class ProcfileProduct(Product):
    """The product as honcho (or ``runner``, a command that takes honcho's arguments) runs the
    Procfile, on this product's port. The database is prepared as for the other end-to-end
    products (LocalProduct): migrated, with the demo agent and keys."""

    def __init__(self, directory: Path, *, runner: list[str], **kwargs) -> None:
        super().__init__(directory, **kwargs)
        self.runner = runner
        # The Procfile's commands are looked up on PATH, as in an activated virtualenv.
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["PORT"] = str(self.port)
        self.env.pop("HOST", None)

    def start(self) -> ProcfileProduct:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        self.credentials = self.manage_json("bootstrap_demo", "--origin", self.base_url)
        self._spawn("honcho", [*self.runner, "start", "-f", str(ROOT / "Procfile"), "--no-colour"])
        try:
            wait_for_port(self.port, self.honcho, timeout=60)
            # A call made before the worker reads the dispatch channel would be declined.
            self.wait_for_line("worker", "media worker ready")
            self.wait_for_line("celery", " ready.")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def honcho(self) -> subprocess.Popen:
        return self.processes["honcho"]

    def output(self) -> str:
        return (self.log_dir / "honcho.log").read_text()

    def lines_of(self, name: str) -> list[str]:
        # honcho prefixes each line with the time and "<process>.<n> |".
        return [
            line.split("|", 1)[1]
            for line in self.output().splitlines()
            if re.match(rf"^\S+ {name}\.1\s+\|", line)
        ]

    def wait_for_line(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines_of(name)):
            if self.honcho.poll() is not None:
                raise RuntimeError(f"honcho exited with {self.honcho.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never said {text!r}:\n{self.output()}")
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        """Each process's pid, which is also its process group's id (honcho starts each in a
        session of its own)."""
        started = re.findall(r"(\w+)\.1 started \(pid=(\d+)\)", self.output())
        return {name: int(pid) for name, pid in started}

    def exit_codes(self) -> dict[str, int]:
        stopped = re.findall(r"(\w+)\.1 stopped \(rc=(-?\d+)\)", self.output())
        return {name: int(rc) for name, rc in stopped}

    def stop(self) -> None:
        # Whatever a failed test left running.
        if self.honcho.poll() is None:
            self.honcho.terminate()
            try:
                self.honcho.wait(SHUTDOWN_GRACE_SECONDS + 10)
            except subprocess.TimeoutExpired:
                self.honcho.kill()
        for pgid in self.pids().values():
            if process_group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def process_group_alive(pgid: int) -> bool:
    """Whether a process of this group still runs. Zombies do not count: the processes honcho
    leaves are reparented to the machine's init, which may take its time to reap them."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait_until(condition, timeout: float, explain) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(explain())
        time.sleep(0.2)


async def call_started(product: ProcfileProduct):
    """A WebSocketCaller whose call has started, and the call's session id."""
    from voice.testing import WebSocketCaller

    key, agent_id = product.credentials["secret_key"], product.credentials["agent_id"]
    started = await asyncio.to_thread(launch.start_call, product.base_url, key, agent_id)
    caller = WebSocketCaller(started["websocket_url"], started["token"])
    try:
        await caller.connect()
        await caller.wait_for("call_started", timeout=20)
    except BaseException:
        await caller.close()
        raise
    return caller, started["session_id"]


@in_own_loop
async def test_the_procfile_serves_a_call_and_stops_on_sigterm(tmp_path, redis_url):
    with ProcfileProduct(
        tmp_path, runner=HONCHO, redis_url=redis_url, env=GREETING_ONLY
    ) as product:
        pids = product.pids()
        assert pids.keys() == set(PROCESSES), product.output()

        caller, session_id = await call_started(product)
        try:
            deadline = time.monotonic() + 15
            while caller.browser.heard_seconds() < 0.5 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert caller.browser.heard_seconds() >= 0.5, product.output()  # the greeting
            assert (await caller.hangup())["reason"] == "user_hangup"
        finally:
            await caller.close()

        # Recorded by the media worker; its transcript (the greeting) stored by Celery.
        row = product.call_row(session_id)
        assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), row
        await asyncio.to_thread(
            wait_until,
            product.latest_call_transcript,
            20,
            lambda: f"Celery stored no transcript:\n{product.output()}",
        )
        assert product.latest_call_transcript()[0][0] == "agent"

        product.honcho.send_signal(signal.SIGTERM)
        await asyncio.to_thread(product.honcho.wait, SHUTDOWN_GRACE_SECONDS + 10)
        # Each stopped by itself (a process killed by the signal would be -15, by honcho -9).
        assert product.exit_codes() == dict.fromkeys(PROCESSES, 0), product.output()
        assert "SIGKILL" not in product.output()
        assert not [name for name, pgid in pids.items() if process_group_alive(pgid)]


@in_own_loop
async def test_run_procfile_lets_the_media_worker_drain_past_honchos_kill_wait(tmp_path, redis_url):
    from honcho.manager import KILL_WAIT

    # The call goes on for the grace period less the shutdown notice's 8 s (voice/worker.py):
    # 7 s, past the 5 s after which plain honcho SIGKILLs the worker (the web process and Celery
    # exit at once).
    grace = 15.0
    env = {**GREETING_ONLY, "SHUTDOWN_GRACE_SECONDS": str(grace)}
    with ProcfileProduct(tmp_path, runner=RUN_PROCFILE, redis_url=redis_url, env=env) as product:
        caller, session_id = await call_started(product)
        try:
            signalled_at = time.monotonic()
            product.honcho.send_signal(signal.SIGTERM)
            await asyncio.to_thread(product.honcho.wait, grace + 10)
            took = time.monotonic() - signalled_at
        finally:
            await caller.close()

        assert product.exit_codes() == dict.fromkeys(PROCESSES, 0), product.output()
        assert "SIGKILL" not in product.output()
        assert took > KILL_WAIT + 1, product.output()
        assert product.call_row(session_id)["end_reason"] == "server_shutdown"
