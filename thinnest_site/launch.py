"""Start the product as real, separate processes on loopback: for end-to-end tests and benchmarks.

with LocalProduct(tmp_dir, redis_url=..., worker=True) as product:
    product.base_url, product.manage("create_agent", "--name", "x", "--json")
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_call(
    base_url: str,
    key: str,
    agent_id: str,
    *,
    origin: str | None = None,
    context: dict | None = None,
) -> dict:
    """``POST /voice/start`` as a customer's backend (or, with ``origin``, a page) sends it."""
    import urllib.request

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    body = {"agent_id": agent_id, **({"context": context} if context else {})}
    request = urllib.request.Request(
        f"{base_url}/voice/start", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class LocalProduct:
    """daphne (and, with Redis, a separate media worker) on a SQLite file in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        redis_url: str | None = None,
        worker: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_path = directory / "db.sqlite3"
        self.log_dir = directory / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "VAR_DIR": str(directory),
            "MEDIA_HOST_ADDRESSES": "127.0.0.1",
            "ICE_SERVERS": "[]",
            "PYTHONUNBUFFERED": "1",
            # The demo page and its credential-free start-call route, on loopback only.
            "DEMO_ENABLED": "true",
            # Products sharing one Redis each get their own key space, or one product's media
            # worker would take another's calls.
            "CHANNEL_LAYER_PREFIX": f"p{self.port}",
            "CACHE_KEY_PREFIX": f"p{self.port}",
            "CELERY_QUEUE": f"p{self.port}",
            **(env or {}),
        }
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.with_worker = worker and bool(redis_url)

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def manage_json(self, *args: str) -> dict:
        return json.loads(self.manage(*args, "--json"))

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> LocalProduct:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        self._spawn(
            "daphne",
            [
                str(BIN / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "thinnest_site.asgi:application",
            ],
        )
        if self.with_worker:
            self._spawn("worker", [str(BIN / "python"), "manage.py", "run_media_worker"])
            # Transcripts and webhooks are stored/sent after the call by Celery.
            self._spawn(
                "celery",
                [
                    str(BIN / "celery"),
                    "-A",
                    "thinnest_site",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "INFO",
                    "-Q",
                    self.env["CELERY_QUEUE"],
                ],
            )
        # The embedded mode loads and warms the voice models before it listens.
        wait_for_port(self.port, self.processes["daphne"], timeout=180)
        # A media worker of its own loads and times its models first: a call before that
        # would wait for a worker in vain.
        self.wait_until_healthy(timeout=180)
        return self

    def wait_until_healthy(self, *, workers: int = 1, timeout: float = 180) -> None:
        """Until /healthz lists ``workers`` media workers ready to take calls."""
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                    if len(json.loads(response.read())["media_workers"]) >= workers:
                        return
            except (OSError, ValueError):
                pass  # 503 (none yet) or not answering yet
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            time.sleep(0.2)
        raise TimeoutError(f"no media worker became ready:\n{self.logs()}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.log_dir.glob("*.log")
        )

    def __enter__(self) -> LocalProduct:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalRedis:
    """A private redis-server on a free loopback port, keeping nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalRedis:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
