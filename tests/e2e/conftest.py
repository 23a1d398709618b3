"""End-to-end fixtures: the product as separate real processes, and headless Chromium.

These tests must run in a loopback-only network namespace, so that no packet can leave this
machine (scripts/test.sh runs them under ``unshare -rn``). Outside one they are skipped with that
reason. Inside, the machine's PostgreSQL and Redis are out of reach, so the product runs on a
SQLite file and on a private redis-server started here.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from thinnest_site.launch import LocalProduct

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _only_loopback() -> bool:
    # if_nameindex asks the kernel about this process's namespace (/sys/class/net may not).
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason="end-to-end tests need a loopback-only network namespace: run scripts/test.sh "
        "(it uses `unshare -rn`)"
    )
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            if not _only_loopback():
                item.add_marker(skip)


def in_own_loop(coroutine_function):
    """An async test, run to its end on an event loop of its own in another thread: the sync
    Playwright of the browser tests keeps a loop running in this thread for the whole session,
    and asyncio refuses to start a second one here."""

    @functools.wraps(coroutine_function)
    def test(*args, **kwargs):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine_function(*args, **kwargs)).result()

    return test


class Product(LocalProduct):
    def call_row(self, session_id: str) -> dict:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT * FROM call_sessions_callsession WHERE public_id = ?", (session_id,)
            ).fetchone()
        data = dict(row)
        data["media_stats"] = json.loads(data["media_stats"] or "{}")
        return data

    def latest_call_transcript(self) -> list[tuple[str, str]]:
        """(role, text) of each stored turn of the newest call, in order."""
        with sqlite3.connect(self.db_path) as db:
            return db.execute(
                "SELECT t.role, t.text FROM call_sessions_transcriptentry t "
                "WHERE t.call_id = (SELECT MAX(id) FROM call_sessions_callsession) "
                "ORDER BY t.seq"
            ).fetchall()

    def call_count(self) -> int:
        with sqlite3.connect(self.db_path) as db:
            return db.execute("SELECT COUNT(*) FROM call_sessions_callsession").fetchone()[0]


def _start_product(directory: Path, *, redis_url: str | None) -> Iterator[Product]:
    with Product(directory, redis_url=redis_url) as product:
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        yield product


@pytest.fixture(scope="session")
def product_separate(tmp_path_factory, redis_url) -> Iterator[Product]:
    """daphne + a separate media worker process, Redis channel layer."""
    yield from _start_product(tmp_path_factory.mktemp("separate"), redis_url=redis_url)


@pytest.fixture
def product_to_break(tmp_path, redis_url) -> Iterator[Product]:
    """A product of its own for a test that kills its media worker."""
    yield from _start_product(tmp_path, redis_url=redis_url)


@pytest.fixture(scope="session")
def product_embedded(tmp_path_factory) -> Iterator[Product]:
    """One daphne process with the media worker inside it, in-memory channel layer."""
    yield from _start_product(tmp_path_factory.mktemp("embedded"), redis_url=None)


@dataclass
class SpeechWav:
    path: Path
    speech_seconds: float  # length of the spoken part, before the trailing silence
    total_seconds: float


QUESTION = "What time do you open on Saturday?"


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> SpeechWav:
    """The caller's microphone: 4 s of silence, a question spoken by Piper, 12 s of silence.

    Chromium starts playing the file when the page takes the microphone, before the call is up,
    and loops it: the leading silence lets the whole question reach the server, the trailing
    silence gives the agent time to answer before the question comes round again. (With 2 s, a
    call set up on a busy machine missed the question's first words.)
    """
    if not shutil.which("sox"):
        pytest.fail("sox is needed: scripts/test.sh installs it")
    from voice.engines import registry

    pcm, rate = registry.tts_get("piper").synthesize(QUESTION)
    tmp = tmp_path_factory.mktemp("audio")
    raw, path = tmp / "raw.wav", tmp / "question.wav"
    with wave.open(str(raw), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    # 48 kHz mono 16-bit is what Chromium's fake capture device plays without resampling surprises.
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path), "pad", "4", "12"],
        check=True,
    )
    loud = np.flatnonzero(np.abs(pcm) > 500)
    return SpeechWav(
        path=path,
        speech_seconds=(loud[-1] - loud[0]) / rate,
        total_seconds=(pcm.size / rate) + 16,
    )


def chromium_args(wav: Path) -> list[str]:
    return [
        "--allow-loopback-in-peer-connection",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]


@pytest.fixture(scope="session")
def browser(speech_wav):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(speech_wav.path)
        )
        yield browser
        browser.close()
