"""The embed widget and the SDK on a customer's page, served from another origin than the product.

The pages hold the documentation's snippets as written; only the script URL, the agent id and
the key differ. Screenshots go to test-artifacts/widget/.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.e2e.customer_site import Site, public_key_for

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "widget"
MIN_RECEIVED_ENERGY = 1e-4

# The seed's "Script Tag Integration" and "Widget Events" snippets, with our URL and values.
SHOP_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme shop</title>
<style>body {{ font-family: Georgia, serif; margin: 2rem; }} button {{ background: red; }}</style>
</head><body>
<h1>Acme shop</h1><p>Our products. Questions? Talk to us.</p>
<script>window.events = []; window.analytics = {{ track() {{}} }};</script>
<script src="{server}/widget.js"></script>
<script>
ThinnestAI.init({{
agentId: '{agent_id}',
apiKey: '{api_key}',
position: '{position}',
theme: '{theme}',
greeting: 'Click to talk to our AI assistant'
}});
</script>
<script>
ThinnestAI.on('call:start', (data) => {{
console.log('Call started:', data.sessionId);
analytics.track('voice_call_started', {{ page: window.location.pathname }});
window.events.push(['call:start', data]);
}});
ThinnestAI.on('call:end', (data) => {{
console.log('Call ended. Duration:', data.duration);
analytics.track('voice_call_ended', {{ duration: data.duration }});
window.events.push(['call:end', data]);
}});
ThinnestAI.on('call:error', (data) => {{
console.error('Call failed:', data.error);
window.events.push(['call:error', data]);
}});
ThinnestAI.on('transcript', (data) => {{
console.log(`${{data.role}}: ${{data.text}}`);
window.events.push(['transcript', data]);
}});
</script>
</body></html>
"""

# The seed's "Minimal Example", verbatim but for the script URL, agent id and key.
MINIMAL_PAGE = (Path(__file__).parent / "minimal_example.html").read_text()


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.close()


@pytest.fixture
def other_site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("other-site"))
    yield site
    site.close()


def shop_page_html(product, api_key: str, *, position="bottom-right", theme="light") -> str:
    return SHOP_PAGE.format(
        server=product.base_url,
        agent_id=product.credentials["agent_id"],
        api_key=api_key,
        position=position,
        theme=theme,
    )


def shop_page(product, site, api_key: str, *, position="bottom-right", theme="light") -> str:
    html = shop_page_html(product, api_key, position=position, theme=theme)
    return site.page(f"shop-{position}-{theme}.html", html)


def widget_events(page, name: str) -> list[dict]:
    return page.evaluate(f"window.events.filter(e => e[0] === {name!r}).map(e => e[1])")


def wait_for_widget_event(page, name: str, condition: str = "true", timeout_ms: int = 20000):
    page.wait_for_function(
        f"window.events.some(e => e[0] === {name!r} && (d => {condition})(e[1]))",
        timeout=timeout_ms,
    )
    return page.evaluate(
        f"window.events.find(e => e[0] === {name!r} && (d => {condition})(e[1]))[1]"
    )


RECEIVED_AUDIO_JS = """
async (call) => {
  const stats = await call._pc.getStats();
  for (const report of stats.values()) {
    if (report.type === 'inbound-rtp' && report.kind === 'audio') {
      return {energy: report.totalAudioEnergy || 0, packets: report.packetsReceived || 0};
    }
  }
  return null;
}
"""


# Every microphone stream the page takes, so a test can tell whether the microphone is live.
TRACK_MICROPHONES_JS = """
(() => {
  window.microphones = [];
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    window.microphones.push(stream);
    return stream;
  };
})();
"""
MICROPHONE_LIVE_JS = (
    "window.microphones.some(s => s.getAudioTracks().some(t => t.readyState === 'live'))"
)


def widget(page, selector: str):
    return page.locator(f"[data-thinnest-widget] {selector}")


def test_the_script_tag_widget_makes_a_real_call_from_a_customer_site(
    product_separate, site, browser, speech_wav
):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    page = browser.new_page()
    try:
        page.goto(shop_page(product, site, api_key))
        launcher = page.locator("[data-thinnest-widget] .launcher")
        assert launcher.inner_text() == "Click to talk to our AI assistant"
        # "This renders a floating call button. When clicked, it connects to your voice agent."
        launcher.click()
        assert widget(page, ".panel").is_visible()

        started = wait_for_widget_event(page, "call:start")
        session_id = started["sessionId"]
        assert session_id.startswith("session_")
        user = wait_for_widget_event(page, "transcript", "d.role === 'user' && d.final")
        assert "open" in user["text"].lower(), (user, product.logs())
        agent = wait_for_widget_event(
            page, "transcript", "d.role === 'agent' && !d.text.startsWith('Hello!')", 30000
        )
        assert agent["text"].strip()
        page.wait_for_function(
            "ThinnestAI.widget.call.status === 'listening' && "
            "window.events.filter(e => e[0] === 'transcript' && e[1].role === 'agent').length >= 2",
            timeout=30000,
        )
        received = page.evaluate(RECEIVED_AUDIO_JS, page.evaluate_handle("ThinnestAI.widget.call"))
        assert received and received["energy"] > MIN_RECEIVED_ENERGY, (received, product.logs())

        shown = page.locator("[data-thinnest-widget] .transcript").inner_text()
        assert "You:" in shown and "Agent:" in shown and user["text"] in shown
        # `transcript` is once per utterance, final: the documentation's handler may append each.
        transcripts = widget_events(page, "transcript")
        assert all(t["final"] is True for t in transcripts), transcripts
        ids = [t["utteranceId"] for t in transcripts]
        assert len(set(ids)) == len(ids), transcripts
        finals = [f"{'Agent' if t['role'] == 'agent' else 'You'}: {t['text']}" for t in transcripts]
        lines = page.evaluate(
            "[...document.querySelector('[data-thinnest-widget]').shadowRoot"
            ".querySelectorAll('.transcript p:not(.partial)')].map(p => p.textContent)"
        )
        assert lines[: len(finals)] == finals
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "call-in-progress.png"))

        page.locator("[data-thinnest-widget] .hangup").click()
        ended = wait_for_widget_event(page, "call:end")
        assert ended["sessionId"] == session_id
        assert ended["duration"] > speech_wav.speech_seconds
        assert widget_events(page, "call:error") == []
        status = page.locator("[data-thinnest-widget] .status").inner_text()
        assert status.startswith("Call ended")
    finally:
        page.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()
    assert row["origin"] == site.origin
    assert row["duration_seconds"] == pytest.approx(ended["duration"], abs=0.01)


def test_a_dropped_connection_is_resumed_with_a_visible_state_and_the_call_goes_on(
    product_separate, site, browser
):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    page = browser.new_page()
    try:
        page.goto(shop_page(product, site, api_key))
        page.locator("[data-thinnest-widget] .launcher").click()
        session_id = wait_for_widget_event(page, "call:start")["sessionId"]
        page.evaluate(
            "() => { window.statuses = []; const call = ThinnestAI.widget.call;"
            " call.on('status', d => window.statuses.push(d.status));"
            " call.on('reconnected', () => window.statuses.push('reconnected')); }"
        )
        # The network drops the socket (and the peer goes with it).
        page.evaluate("ThinnestAI.widget.call._ws.close()")
        page.wait_for_function("window.statuses.includes('reconnected')", timeout=15000)
        # Shown while it lasts: "reconnecting" before "reconnected" (an "agent_speaking" of the
        # greeting may come first, between the listener going in and the drop).
        statuses = page.evaluate("window.statuses")
        assert "reconnecting" in statuses, statuses
        assert statuses.index("reconnecting") < statuses.index("reconnected"), statuses
        assert page.evaluate("ThinnestAI.widget.call.sessionId") == session_id
        # The same call goes on: the agent is heard on the new connection.
        page.wait_for_function(
            "async (minimum) => { const s = await ThinnestAI.widget.call._pc.getStats();"
            " return [...s.values()].some(r => r.type === 'inbound-rtp' &&"
            " r.totalAudioEnergy > minimum); }",
            arg=MIN_RECEIVED_ENERGY,
            timeout=30000,
            polling=500,
        )
        assert product.call_row(session_id)["status"] == "active"
        assert widget_events(page, "call:end") == []

        page.locator("[data-thinnest-widget] .hangup").click()
        ended = wait_for_widget_event(page, "call:end")
        assert ended["sessionId"] == session_id
        assert widget_events(page, "call:error") == []
    finally:
        page.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()


def test_the_launcher_shows_a_live_call_with_the_panel_closed(product_separate, site, browser):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    page = browser.new_page()
    page.add_init_script(TRACK_MICROPHONES_JS)
    try:
        page.goto(shop_page(product, site, api_key))
        launcher, end = widget(page, ".launcher"), widget(page, ".end")
        assert not end.is_visible()
        launcher.click()
        session_id = wait_for_widget_event(page, "call:start")["sessionId"]

        widget(page, ".close").click()
        assert not widget(page, ".panel").is_visible()
        # The microphone is live, and the button says so: not "Click to talk to…".
        assert page.evaluate(MICROPHONE_LIVE_JS)
        page.wait_for_function(
            "/^On call \\d+:\\d\\d$/.test(document.querySelector('[data-thinnest-widget]')"
            ".shadowRoot.querySelector('.launcher').textContent)",
            timeout=5000,
        )
        assert "Click to talk" not in launcher.inner_text()
        assert widget(page, ".dot").is_visible()
        assert end.is_visible() and end.inner_text() == "End call"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "call-panel-closed.png"))

        # During the call the button shows and hides the panel; it starts no second call.
        launcher.click()
        assert widget(page, ".panel").is_visible()
        launcher.click()
        assert not widget(page, ".panel").is_visible()
        assert page.evaluate("ThinnestAI.widget.call.sessionId") == session_id

        end.click()
        ended = wait_for_widget_event(page, "call:end")
        assert ended["sessionId"] == session_id
        page.wait_for_function(f"!({MICROPHONE_LIVE_JS})", timeout=5000)
        assert launcher.inner_text() == "Click to talk to our AI assistant"
        assert not end.is_visible()
        assert widget_events(page, "call:error") == []
    finally:
        page.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "user_hangup"), product.logs()


def test_a_call_ended_while_it_connects_leaves_the_microphone_off(product_separate, site, browser):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    page = browser.new_page()
    page.add_init_script(TRACK_MICROPHONES_JS)
    try:
        page.goto(shop_page(product, site, api_key))
        widget(page, ".launcher").click()
        widget(page, ".end").click()  # at once: the call is still connecting
        page.wait_for_timeout(3000)  # what was in flight has come back by now
        assert not page.evaluate(MICROPHONE_LIVE_JS)
        assert widget(page, ".launcher").inner_text() == "Click to talk to our AI assistant"
        assert widget_events(page, "call:start") == []
        assert widget_events(page, "call:error") == []
        assert page.evaluate("ThinnestAI.widget.call.status") == "ended"
    finally:
        page.close()


def test_a_site_the_key_does_not_allow_shows_visitors_plain_words_and_the_operator_the_detail(
    product_separate, site, other_site, browser
):
    product = product_separate
    api_key = public_key_for(product, site.origin)  # allowed on `site`, not on `other_site`
    before = product.call_count()
    html = shop_page_html(product, api_key).replace(
        "greeting: 'Click to talk to our AI assistant'",
        "greeting: 'Click to talk to our AI assistant', fallbackPhone: '+1 555 0100'",
    )
    page = browser.new_page()
    console = []
    page.on("console", lambda m: console.append((m.type, m.text)))
    try:
        page.goto(other_site.page("shop.html", html))
        widget(page, ".launcher").click()
        error = wait_for_widget_event(page, "call:error")
        # The operator's detail: in call:error and the console.
        assert "not allowed" in error["error"] and other_site.origin in error["error"]
        assert error["code"] == "origin_not_allowed"
        assert any(kind == "error" and other_site.origin in text for kind, text in console)
        # The visitor's words: plain, with the phone number to call instead.
        status = widget(page, ".status").inner_text()
        assert status == "Voice calls aren't available right now."
        fallback = widget(page, ".fallback")
        assert fallback.is_visible() and "+1 555 0100" in fallback.inner_text()
        assert fallback.locator("a").get_attribute("href") == "tel:+15550100"
        panel_text = widget(page, ".panel").inner_text()
        assert other_site.origin not in panel_text and "allowed origins" not in panel_text
        assert widget(page, ".launcher").inner_text() == "Click to talk to our AI assistant"
        assert widget(page, ".call").inner_text() == "Try again"
        assert widget_events(page, "call:start") == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "origin-not-allowed.png"))
    finally:
        page.close()
    assert product.call_count() == before


def test_a_bad_configuration_is_reported_and_the_host_page_goes_on(product_separate, site, browser):
    product = product_separate
    html = (
        SHOP_PAGE.format(
            server=product.base_url,
            agent_id=product.credentials["agent_id"],
            api_key=product.credentials["secret_key"],  # a secret key must never go in a page
            position="top-center",
            theme="light",
        )
        + "<script>window.afterWidget = true;</script>"
    )
    page = browser.new_page()
    messages = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    try:
        page.goto(site.page("bad.html", html))
        error = wait_for_widget_event(page, "call:error")
        assert "secret key" in error["error"] and "position" in error["error"]
        assert page.evaluate("window.afterWidget") is True
        assert any(kind == "error" and "secret key" in text for kind, text in messages)
        # A visitor who clicks gets plain words, and no call is attempted.
        before = product.call_count()
        widget(page, ".launcher").click()
        assert widget(page, ".status").inner_text() == "Voice calls aren't available right now."
        assert "secret" not in widget(page, ".panel").inner_text()
        page.wait_for_timeout(500)
        assert widget_events(page, "call:start") == []
        assert product.call_count() == before
    finally:
        page.close()


def test_the_minimal_example_page_makes_a_call_with_the_sdk(product_separate, site, browser):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    html = (
        MINIMAL_PAGE.replace("https://cdn.thinnest.ai/sdk.js", f"{product.base_url}/sdk.js")
        .replace("agent_xyz", product.credentials["agent_id"])
        .replace("YOUR_PUBLIC_KEY", api_key)
    )
    page = browser.new_page()
    try:
        page.goto(site.page("minimal.html", html))
        page.click("#callBtn")
        page.wait_for_function(
            "document.getElementById('status').textContent === 'Connected'", timeout=20000
        )
        page.wait_for_function(
            "[...document.querySelectorAll('#transcript p.user')].some(p => /open/i.test(p.textContent))",
            timeout=20000,
        )
        page.wait_for_function(
            "document.querySelectorAll('#transcript p.agent').length >= 2", timeout=30000
        )
        assert page.is_visible("#hangupBtn")
        page.click("#hangupBtn")
        page.wait_for_function(
            "document.getElementById('status').textContent === 'Call ended'", timeout=10000
        )
        assert page.is_visible("#callBtn")
        transcript = page.inner_text("#transcript")
        assert "You:" in transcript and "Agent:" in transcript
        # The page, run verbatim, appends a line per `transcript` event: each caller utterance
        # and each agent reply shows exactly once (before: "Agent: Good morning," then
        # "Agent: Good morning, Tom! What's up?" twice). Read back against the stored call.
        shown = page.eval_on_selector_all(
            "#transcript p", "ps => ps.map(p => [p.className, p.textContent])"
        )
        lines = [
            ("agent" if cls == "agent" else "user", text.split(": ", 1)[1]) for cls, text in shown
        ]
        assert len(set(lines)) == len(lines), lines
        for (role, text), (next_role, next_text) in itertools.pairwise(lines):
            assert not (role == next_role and next_text.startswith(text)), lines
        deadline = time.monotonic() + 20
        while len(stored := product.latest_call_transcript()) < len(lines):
            assert time.monotonic() < deadline, (lines, stored)
            time.sleep(0.2)
        # A reply cut by the hang-up is stored as heard after the page's socket closed.
        assert stored[: len(lines)] == lines and len(stored) - len(lines) <= 1, (lines, stored)
    finally:
        page.close()


@pytest.mark.parametrize(
    "position, theme, width",
    [
        ("bottom-right", "light", 1280),
        ("bottom-left", "dark", 1280),
        ("bottom-right", "dark", 375),
        ("bottom-left", "light", 375),
    ],
)
def test_the_widget_stays_inside_the_viewport(
    product_separate, site, browser, position, theme, width
):
    product = product_separate
    api_key = public_key_for(product, site.origin)
    page = browser.new_page(viewport={"width": width, "height": 720})
    try:
        page.goto(shop_page(product, site, api_key, position=position, theme=theme))
        launcher = page.locator("[data-thinnest-widget] .launcher")
        inside(launcher.bounding_box(), width, 720)
        box = launcher.bounding_box()
        if width > 600:  # on a phone the button spans the width
            assert (box["x"] > width / 2) == (position == "bottom-right")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"closed-{position}-{theme}-{width}.png"))

        launcher.focus()
        page.keyboard.press("Enter")  # keyboard users start the call too
        panel, bar = widget(page, ".panel"), widget(page, ".bar")
        assert panel.is_visible()
        assert launcher.get_attribute("aria-expanded") == "true"
        wait_for_widget_event(page, "call:start")
        # In a call the button grows an "End call" half: all of it still fits.
        assert widget(page, ".end").is_visible()
        inside(panel.bounding_box(), width, 720)
        inside(bar.bounding_box(), width, 720)
        assert not overlaps(panel.bounding_box(), bar.bounding_box())
        colors = page.evaluate(
            "() => { const r = document.querySelector('[data-thinnest-widget]').shadowRoot"
            ".querySelector('.panel'); return getComputedStyle(r).backgroundColor; }"
        )
        assert colors == ("rgb(255, 255, 255)" if theme == "light" else "rgb(22, 27, 34)")
        # The host page's `button { background: red }` does not reach into the widget.
        launcher_bg = page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-thinnest-widget]').shadowRoot"
            ".querySelector('.launcher')).backgroundColor"
        )
        assert launcher_bg == "rgb(0, 102, 255)"
        page.screenshot(path=str(ARTIFACTS / f"open-{position}-{theme}-{width}.png"))
        page.keyboard.press("Escape")
        assert not panel.is_visible()
        assert widget(page, ".end").is_visible()  # the call goes on
        page.screenshot(path=str(ARTIFACTS / f"in-call-{position}-{theme}-{width}.png"))
        widget(page, ".end").click()
        wait_for_widget_event(page, "call:end")
    finally:
        page.close()


def test_a_denied_microphone_shows_a_readable_message_and_starts_no_call(
    product_separate, site, browser, speech_wav
):
    from tests.e2e.conftest import CHROMIUM, chromium_args

    product = product_separate
    api_key = public_key_for(product, site.origin)
    before = product.call_count()
    # A browser that answers "Block" to the permission prompt.
    args = [a for a in chromium_args(speech_wav.path) if a != "--use-fake-ui-for-media-stream"]
    denied = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=[*args, "--deny-permission-prompts"]
    )
    try:
        page = denied.new_page()
        page.goto(shop_page(product, site, api_key))
        page.locator("[data-thinnest-widget] .launcher").click()
        error = wait_for_widget_event(page, "call:error")
        assert error["code"] == "microphone_denied"
        assert error["error"] == "Please allow microphone access to start the call."
        # The visitor is told how to allow it again: the browser will not ask a second time.
        status = widget(page, ".status").inner_text()
        assert "blocking the microphone" in status
        assert "lock icon" in status and "site's settings" in status
        assert widget(page, ".call").inner_text() == "Try again"
        assert widget(page, ".launcher").inner_text() == "Click to talk to our AI assistant"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "microphone-denied.png"))
    finally:
        denied.close()
    assert product.call_count() == before


def inside(box: dict, width: int, height: int) -> None:
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, box


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )
