"""The dashboard in Chromium: log in, create an agent, preview its voice, create a public key,
copy and edit it, copy the embed snippet, talk to the agent for real (its prompt's placeholder
filled in, muted at the end), find the call in the history with its summary, give the agent a
document and chat with it (a grounded answer, with its source), and duplicate, deactivate and
reactivate the agent.

Every page is screenshotted at desktop and phone widths (test-artifacts/dashboard/) and checked
for layout: nothing wider than the viewport.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
WIDTHS = {"desktop": 1280, "phone": 375}
# A fact no model knows: a grounded answer can only have it from the document.
TART = "The Moonberry Tart costs 13 dollars 70. It is baked every Friday."


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

        # An agent: bad values first (every error shown at once, nothing saved, the input
        # kept), then good ones.
        page.goto(f"{base}/dashboard/agents/new/")
        page.fill("#id_name", "Bakery line")
        page.fill(
            "#id_system_prompt",
            "You answer questions for {{company}}, a bakery. Keep answers short.",
        )
        page.fill("#id_greeting", "Hello! This is the bakery.")
        page.fill("#id_tts_speed", "7")
        page.fill("#id_llm_model", "gpt-4o")
        # The voice suggestions follow the engine: eSpeak NG's languages once it is chosen.
        assert page.get_attribute("#id_tts_voice", "list") == "tts-choices-piper"
        page.select_option("#id_tts_engine", "espeak")
        assert page.get_attribute("#id_tts_voice", "list") == "tts-choices-espeak"
        assert page.locator("[data-catalog=tts] [data-engine=espeak]").is_visible()
        assert page.locator("[data-catalog=tts] [data-engine=piper]").is_hidden()
        page.select_option("#id_tts_engine", "piper")
        page.click("form.agent-form button[type=submit]")
        assert page.locator("#id_tts_speed-errors .field-error").count() == 1
        assert page.locator("#id_llm_model-errors .field-error").count() == 1
        assert page.locator(".error-summary li").count() == 2
        assert page.input_value("#id_name") == "Bakery line"
        check_layout(page, "agent-form-errors")
        page.fill("#id_tts_speed", "1.0")
        page.fill("#id_llm_model", "")
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
        # Idle: only "Start call" (button.danger's display once beat [hidden]).
        assert page.locator("#talkBtn").is_visible()
        assert page.locator("#talkHangup").is_hidden() and page.locator("#talkMute").is_hidden()
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
        # The key list: the public key copied again, the secret key never shown.
        page.goto(f"{base}/dashboard/keys/")
        assert raw_key not in page.inner_text("body") and raw_key[:11] in page.content()
        assert product.credentials["secret_key"] not in page.content()
        row = page.locator("tr", has_text="Website")
        page.evaluate("navigator.clipboard.writeText('')")
        row.locator("button[data-copy]").click()
        page.wait_for_function("navigator.clipboard.readText().then(t => t.length > 0)")
        assert page.evaluate("navigator.clipboard.readText()") == raw_key
        check_layout(page, "keys")

        # Edited in place: another origin and a concurrent-call limit, the same key.
        row.locator("a", has_text="Edit").click()
        assert page.locator("input[name=kind]").count() == 0
        page.fill("#id_allowed_origins", f"{base}\nhttps://www.example.com")
        page.fill("#id_max_concurrent_calls", "0")
        page.click("form.card button[type=submit]")
        assert page.locator("#id_max_concurrent_calls-errors").is_visible()
        check_layout(page, "key-edit-errors")
        page.fill("#id_max_concurrent_calls", "3")
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/keys/")
        row = page.locator("tr", has_text="Website")
        assert "https://www.example.com" in row.inner_text() and "3 at once" in row.inner_text()

        # The embed snippet for that agent and key, copied as it is shown.
        page.goto(f"{base}/dashboard/embed/?agent={agent_id}")
        snippet = page.inner_text("#snippetScript")
        assert f"{base}/widget.js" in snippet and agent_id in snippet and raw_key in snippet
        page.select_option("#optTheme", "dark")
        assert 'theme: "dark"' in page.inner_text("#snippetScript")
        page.click("[data-copy='#snippetScript']")
        assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#snippetScript")
        assert page.locator("[data-thinnest-widget] .launcher").is_visible()  # the live preview
        check_layout(page, "embed")

        # Talk to the agent: a real call, its prompt's placeholder filled in, with the live
        # transcript beside it.
        page.goto(f"{base}/dashboard/agents/{agent_id}/")
        page.fill(".talk-context-value[data-name=company]", "Tom's Bakery")
        page.click("#talkBtn")
        page.wait_for_function(
            "[...document.querySelectorAll('#talkTranscript p.user')]"
            ".some(p => /open/i.test(p.textContent) && !p.classList.contains('partial'))",
            timeout=30000,
        )
        page.wait_for_function(
            "document.querySelectorAll('#talkTranscript p.agent').length >= 2", timeout=30000
        )
        # One line per utterance: the greeting once, no line twice.
        utterances = page.eval_on_selector_all(
            "#talkTranscript p", "ps => ps.map(p => p.dataset.utterance)"
        )
        assert len(utterances) == len(set(utterances)), utterances
        lines = page.eval_on_selector_all("#talkTranscript p", "ps => ps.map(p => p.textContent)")
        assert lines.count("Agent: Hello! This is the bakery.") == 1, lines
        # Mute takes the microphone off the call, and back.
        page.click("#talkMute")
        assert page.get_attribute("#talkMute", "aria-pressed") == "true"
        assert page.evaluate(
            "window.thinnestTalk.call.muted && window.thinnestTalk.call._stream"
            ".getAudioTracks().every(t => !t.enabled)"
        )
        check_layout(page, "agent-talk")
        page.click("#talkMute")
        assert page.inner_text("#talkMute") == "Mute" and not page.evaluate(
            "window.thinnestTalk.call.muted"
        )
        page.click("#talkHangup")
        page.wait_for_selector("#talkResult a", timeout=10000)
        session_id = page.evaluate("window.thinnestTalk.call.sessionId")

        # The call in the history, found by a word the caller said, with its transcript.
        # Celery stores the transcript after the call: search until the call is found there.
        call_link = f"a[href='/dashboard/calls/{session_id}/']"
        page.goto(f"{base}/dashboard/calls/?q=saturday&agent={agent_id}")
        for _ in range(60):
            if page.locator(call_link).count():
                break
            page.wait_for_timeout(500)
            page.reload()
        else:
            page.goto(f"{base}/dashboard/calls/{session_id}/")
            raise AssertionError(f"call not found by its words: {page.inner_text('main')}")
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
        # Then the model's summary and the call's outcome (Celery, after the transcript).
        for _ in range(120):
            if "Being written" not in page.inner_text("#callSummary"):
                break
            page.wait_for_timeout(500)
            page.reload()
        summary = page.inner_text("#callSummary")
        assert summary.strip() and "Being written" not in summary and "could not" not in summary
        assert page.locator(".details .badge.answered, .details .badge.not_answered").count() == 1
        check_layout(page, "call")

        page.goto(f"{base}/dashboard/analytics/")
        page.wait_for_function("window.thinnestCharts === 2")
        assert int(page.inner_text("#figCalls")) >= 1
        check_layout(page, "analytics")

        # Knowledge: a file with a fact no model knows, stored at once and indexed in the
        # background (the list moves on by itself), and a question with its answer.
        page.goto(f"{base}/dashboard/agents/{agent_id}/")
        # The product's default model answers from its knowledge where the tests' smallest one
        # (SmolLM2-135M) often does not; temperature 0: the same answer on every run.
        page.fill("#id_llm_model", "qwen2.5-0.5b")
        page.fill("#id_llm_temperature", "0")
        page.click("form.agent-form button[type=submit]")
        page.wait_for_selector("text=Saved.")
        page.click("a.button:has-text('Knowledge')")
        page.set_input_files(
            "#id_upload-file",
            files=[{"name": "tart.txt", "mimeType": "text/plain", "buffer": TART.encode()}],
        )
        page.fill("#id_upload-title", "Moonberry Tart")
        page.click("#uploadForm button[type=submit]")
        page.wait_for_selector("text=being indexed in the background")
        page.fill("#id_faq-question", "Do you deliver?")
        page.fill("#id_faq-answer", "Yes, within 5 miles of the shop.")
        page.click("#faqForm button[type=submit]")
        page.wait_for_selector("#documents tr:has-text('Do you deliver?')")
        page.wait_for_function(
            "document.querySelectorAll('#documents [data-status=ready]').length === 2",
            timeout=120000,
        )
        assert page.locator("#documents [data-status=pending]").count() == 0
        check_layout(page, "knowledge")
        page.click("#documents a:has-text('Moonberry Tart')")
        assert "13 dollars 70" in page.inner_text(".chunks")
        check_layout(page, "knowledge-document")

        # The chat box: a grounded answer, its source linked, the time it took; then a second
        # question in the same conversation.
        page.goto(f"{base}/dashboard/agents/{agent_id}/")
        page.fill(".talk-context-value[data-name=company]", "Tom's Bakery")
        page.fill("#chatQuestion", "How much is the Moonberry Tart?")
        page.click("#chatSend")
        # The first reply loads the model into the web process (joined from its parts first).
        page.wait_for_selector("#chatLog p.agent", timeout=120000)
        reply = page.inner_text("#chatLog p.agent >> nth=0")
        assert re.search(r"13\D{1,12}70", reply), reply
        source = page.locator("#chatLog p.agent >> nth=0").locator(".turn-sources a").first
        assert source.inner_text() == "Moonberry Tart"
        assert re.search(r"\d+\.\d s to answer", reply)
        page.fill("#chatQuestion", "Do you deliver?")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelectorAll('#chatLog p.agent').length === 2", timeout=60000
        )
        assert page.evaluate("window.thinnestChat.history.length") == 4
        check_layout(page, "agent-chat")
        source.click()
        page.wait_for_url(f"{base}/dashboard/agents/{agent_id}/knowledge/doc_*/")
        assert "Moonberry Tart" in page.inner_text("h1")

        # A copy of the agent, then the copy deactivated and reactivated, each confirmed.
        page.goto(f"{base}/dashboard/agents/{agent_id}/")
        page.click("a:has-text('Duplicate')")
        check_layout(page, "agent-duplicate")
        page.click("form.card button[type=submit]")
        page.wait_for_function(f"!location.pathname.includes({agent_id!r})")
        assert "Bakery line (copy)" in page.inner_text("h1")
        page.click("a:has-text('Deactivate')")
        page.click("form.card button[type=submit]")
        page.click("a:has-text('Bakery line (copy)')")
        assert "deactivated" in page.inner_text("h1") and page.locator("#talkBtn").is_disabled()
        page.click("a:has-text('Reactivate')")
        page.click("form.card button[type=submit]")
        page.wait_for_selector("text=is active again")
        assert "deactivated" not in page.inner_text("h1")
        assert page.locator("#talkBtn").is_enabled()
    finally:
        context.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()
    assert json.loads(row["context"])["company"] == "Tom's Bakery"
