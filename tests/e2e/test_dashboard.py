"""The dashboard in Chromium: log in, create an agent, preview its voice, create a public key,
copy the embed snippet, talk to the agent for real, and find the call in the history.

Every page is screenshotted at desktop and phone widths (test-artifacts/dashboard/) and checked
for layout: nothing wider than the viewport.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
WIDTHS = {"desktop": 1280, "phone": 375}


def check_layout(page, name: str) -> None:
    """Screenshots at both widths; the page never scrolls sideways."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        # Charts follow the width on their next ResizeObserver callback.
        page.wait_for_timeout(300)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px is {overflow}px too wide"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def test_a_staff_user_sets_up_an_agent_talks_to_it_and_finds_the_call(product_separate, browser):
    product = product_separate
    base = product.base_url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The microphone too: granting only the clipboard would leave the fake microphone unanswered.
    context.grant_permissions(["clipboard-read", "clipboard-write", "microphone"], origin=base)
    page = context.new_page()
    try:
        page.goto(f"{base}/dashboard/")
        assert "/dashboard/login/" in page.url
        check_layout(page, "login")
        page.fill("input[name=username]", product.credentials["admin_user"])
        page.fill("input[name=password]", product.credentials["admin_password"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/")
        check_layout(page, "overview")

        # An agent: a bad value first (nothing saved, the input kept), then a good one.
        page.goto(f"{base}/dashboard/agents/new/")
        page.fill("#id_name", "Bakery line")
        page.fill("#id_system_prompt", "You answer questions for a bakery. Keep answers short.")
        page.fill("#id_greeting", "Hello! This is the bakery.")
        page.fill("#id_tts_speed", "7")
        page.click("form.agent-form button[type=submit]")
        assert page.locator(".field-error").count() >= 1
        assert page.input_value("#id_name") == "Bakery line"
        check_layout(page, "agent-form-errors")
        page.fill("#id_tts_speed", "1.0")
        page.click("form.agent-form button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/agents/agent_*/")
        agent_id = page.url.rstrip("/").rsplit("/", 1)[1]

        # Its voice, previewed.
        page.click("#previewBtn")
        page.wait_for_function(
            "() => { const a = document.getElementById('previewAudio');"
            " return !a.hidden && a.duration > 0.5; }",
            timeout=20000,
        )
        check_layout(page, "agent-edit")

        # A public key for this dashboard's origin, shown once, copied.
        page.goto(f"{base}/dashboard/keys/new/")
        page.check("input[name=kind][value=public]")
        page.check("label:has-text('Bakery line') input[name=agents]")
        page.fill("#id_allowed_origins", base)
        page.fill("#id_name", "Website")
        page.click("form.card button[type=submit]")
        raw_key = page.inner_text("#newKey").strip()
        assert raw_key.startswith("pk_")
        page.click("[data-copy='#newKey']")
        page.wait_for_function(
            "document.querySelector(\"[data-copy='#newKey']\").textContent === 'Copied'"
        )
        assert page.evaluate("navigator.clipboard.readText()") == raw_key
        check_layout(page, "key-created")
        page.goto(f"{base}/dashboard/keys/")
        assert raw_key not in page.content()
        assert raw_key[:11] in page.content()
        check_layout(page, "keys")

        # The embed snippet for that agent and key, copied as it is shown.
        page.goto(f"{base}/dashboard/embed/?agent={agent_id}")
        snippet = page.inner_text("#snippetScript")
        assert f"{base}/widget.js" in snippet and agent_id in snippet and raw_key in snippet
        page.select_option("#optTheme", "dark")
        assert "theme: 'dark'" in page.inner_text("#snippetScript")
        page.click("[data-copy='#snippetScript']")
        assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#snippetScript")
        assert page.locator("[data-thinnest-widget] .launcher").is_visible()  # the live preview
        check_layout(page, "embed")

        # Talk to the agent: a real call, with the live transcript beside it.
        page.goto(f"{base}/dashboard/agents/{agent_id}/")
        page.click("#talkBtn")
        page.wait_for_function(
            "[...document.querySelectorAll('#talkTranscript p.user')]"
            ".some(p => /open/i.test(p.textContent) && !p.classList.contains('partial'))",
            timeout=30000,
        )
        page.wait_for_function(
            "document.querySelectorAll('#talkTranscript p.agent').length >= 2", timeout=30000
        )
        check_layout(page, "agent-talk")
        page.click("#talkHangup")
        page.wait_for_selector("#talkResult a", timeout=10000)
        session_id = page.evaluate("window.thinnestTalk.call.sessionId")

        # The call in the history, found by a word the caller said, with its transcript.
        page.goto(f"{base}/dashboard/calls/?q=saturday&agent={agent_id}")
        page.wait_for_selector(f"a[href='/dashboard/calls/{session_id}/']")
        check_layout(page, "calls")
        page.click(f"a[href='/dashboard/calls/{session_id}/']")
        # Celery stores the transcript after the call, and again once the worker has handed in
        # the turn the hang-up cut short: reload until both agent turns are there.
        for _ in range(60):
            if page.locator(".timeline .turn.agent").count() >= 2:
                break
            page.wait_for_timeout(250)
            page.reload()
        assert "Saturday" in page.inner_text(".timeline .turn.user >> nth=0")
        assert page.locator(".timeline .turn.agent").count() >= 2
        assert "user_hangup" in page.inner_text(".details")
        check_layout(page, "call")

        page.goto(f"{base}/dashboard/analytics/")
        page.wait_for_function("window.thinnestCharts === 2")
        assert int(page.inner_text("#figCalls")) >= 1
        check_layout(page, "analytics")
    finally:
        context.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()
