"""The React package (widget/react, `@thinnest/embed-sdk`) in a customer's React app.

The app is widget/react/example built from the package's dist/, as an app that installed it
from npm would be; it is served from the customer's origin and makes a real call through the
product. Its callbacks write one JSON line per event into <pre id="log">, which the test reads.
Screenshots go to test-artifacts/react/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.customer_site import Site, public_key_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "widget" / "react"
EXAMPLE_DIST = PACKAGE / "example" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "react"
# What the example app's build depends on: a newer one of these means a rebuild.
BUILD_INPUTS = [
    "src",
    "example/main.tsx",
    "example/index.html",
    "example/vite.config.ts",
    "vite.config.ts",
    "tsconfig.json",
    "tsconfig.build.json",
    "package-lock.json",
]


def _newest_input() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = PACKAGE / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


@pytest.fixture(scope="session")
def react_example() -> Path:
    """The example app's dist/, built here when missing or older than its sources.

    The build needs no network (this runs in the loopback-only namespace), only the package's
    node_modules, which `npm ci` in widget/react installs (scripts/test.sh does)."""
    index = EXAMPLE_DIST / "index.html"
    if index.exists() and index.stat().st_mtime >= _newest_input():
        return EXAMPLE_DIST
    npm = shutil.which("npm")
    if npm is None or not (PACKAGE / "node_modules").is_dir():
        pytest.fail("the React example needs npm and widget/react/node_modules: run `npm ci` there")
    for script in ("build", "build:example"):
        done = subprocess.run(
            [npm, "run", script], cwd=PACKAGE, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            pytest.fail(f"npm run {script} failed:\n{done.stdout}\n{done.stderr}")
    return EXAMPLE_DIST


@pytest.fixture
def react_site(react_example):
    site = Site(react_example)
    yield site
    site.close()


def logged(page) -> list[tuple[str, dict]]:
    text = page.locator("#log").inner_text()
    return [tuple(json.loads(line)) for line in text.splitlines() if line.strip()]


def wait_for_logged(page, event: str, condition: str = "true", timeout_ms: int = 20000) -> dict:
    """The first logged `event` whose data `d` meets the JavaScript `condition`."""
    found = page.wait_for_function(
        "([event, condition]) => {"
        " const test = new Function('d', 'return ' + condition);"
        " const entries = document.getElementById('log').textContent.split('\\n')"
        ".filter(Boolean).map(JSON.parse);"
        " const hit = entries.find(([e, d]) => e === event && test(d));"
        " return hit ? hit[1] : null; }",
        arg=[event, condition],
        timeout=timeout_ms,
    )
    return found.json_value()


def test_the_react_component_makes_a_real_call_from_a_customer_app(
    product_separate, react_site, browser, speech_wav
):
    product = product_separate
    api_key = public_key_for(product, react_site.origin)
    query = urlencode(
        {"server": product.base_url, "agent": product.credentials["agent_id"], "key": api_key}
    )
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        page.goto(f"{react_site.origin}/index.html?{query}")
        launcher = page.locator("[data-thinnest-widget] .launcher")
        assert launcher.inner_text(timeout=10000) == "Talk to Acme", console
        launcher.click()  # one click: the panel opens and the call starts

        started = wait_for_logged(page, "call-start")
        session_id = started["sessionId"]
        assert session_id.startswith("session_"), console
        agent = wait_for_logged(page, "transcript", "d.role === 'agent' && d.final", 30000)
        assert agent["text"].strip()
        user = wait_for_logged(page, "transcript", "d.role === 'user' && d.final", 30000)
        assert "open" in user["text"].lower(), (user, product.logs())

        # Each event re-rendered the app with new callbacks: still one widget, one script.
        assert page.locator("[data-thinnest-widget]").count() == 1
        assert page.locator("script[data-thinnest-embed]").count() == 1
        assert page.locator("script[data-thinnest-embed]").get_attribute("src") == (
            f"{product.base_url}/widget.js"
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "call-in-progress.png"))

        page.locator("[data-thinnest-widget] .hangup").click()
        ended = wait_for_logged(page, "call-end")
        assert ended["sessionId"] == session_id
        assert ended["duration"] > speech_wav.speech_seconds
        assert [d for e, d in logged(page) if e == "error"] == [], console
        page.screenshot(path=str(ARTIFACTS / "call-ended.png"))
    finally:
        page.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()
    assert row["origin"] == react_site.origin
    assert json.loads(row["context"]) == {"page": "/index.html", "plan": "pro"}
    assert row["duration_seconds"] == pytest.approx(ended["duration"], abs=0.01)


def test_a_key_for_another_site_reaches_on_error(product_separate, react_site, browser):
    product = product_separate
    api_key = public_key_for(product, "https://shop.example.com")  # not this page's origin
    before = product.call_count()
    query = urlencode(
        {"server": product.base_url, "agent": product.credentials["agent_id"], "key": api_key}
    )
    page = browser.new_page()
    try:
        page.goto(f"{react_site.origin}/index.html?{query}")
        page.locator("[data-thinnest-widget] .launcher").click()
        error = wait_for_logged(page, "error")
        assert error["code"] == "origin_not_allowed"
        assert react_site.origin in error["error"]
        assert [e for e, _ in logged(page) if e == "call-start"] == []
    finally:
        page.close()
    assert product.call_count() == before


def test_an_unreachable_voice_server_reaches_on_error(react_site, browser):
    from thinnest_site.launch import free_port

    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    page = browser.new_page()
    try:
        page.goto(f"{react_site.origin}/index.html?{urlencode({'server': server})}")
        error = wait_for_logged(page, "error")
        assert error["code"] == "script_load_failed"
        assert f"{server}/widget.js" in error["error"]
        assert page.locator("[data-thinnest-widget]").count() == 0
    finally:
        page.close()
