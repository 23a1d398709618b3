"""A real call from headless Chromium through the /demo/ page (the seed's Step 2 code, as written)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# Audio energy that a silent or absent stream cannot reach (sum of squared [-1, 1] samples x s).
MIN_RECEIVED_ENERGY = 1e-4

INBOUND_AUDIO_STATS_JS = """
async () => {
  const pc = window.thinnestDemo.call.peerConnection;
  const stats = await pc.getStats();
  for (const report of stats.values()) {
    if (report.type === 'inbound-rtp' && report.kind === 'audio') {
      return {energy: report.totalAudioEnergy || 0, duration: report.totalSamplesDuration || 0,
              packets: report.packetsReceived || 0};
    }
  }
  return null;
}
"""


def event_types(page) -> list[str]:
    return page.evaluate("window.thinnestDemo.events.map(e => e.type)")


def wait_for_event(page, kind: str, timeout_ms: int = 20000) -> dict:
    page.wait_for_function(
        f"window.thinnestDemo.events.some(e => e.type === {kind!r})", timeout=timeout_ms
    )
    return page.evaluate(f"window.thinnestDemo.events.find(e => e.type === {kind!r}).message")


@pytest.mark.parametrize("mode", ["separate", "embedded"])
def test_a_browser_call_through_the_demo_page(request, mode, browser, speech_wav):
    product = request.getfixturevalue(f"product_{mode}")
    page = browser.new_page()
    try:
        page.goto(f"{product.base_url}/demo/")
        page.click("#callBtn")

        started = wait_for_event(page, "call_started")
        session_id = started["session_id"]
        assert session_id.startswith("session_")

        # The caller's spoken question is heard, transcribed and answered aloud.
        page.wait_for_function(
            "window.thinnestDemo.events.some(e => e.type === 'transcript' && e.message.role === 'user')",
            timeout=20000,
        )
        user = page.evaluate(
            "window.thinnestDemo.events.find(e => e.type === 'transcript' && e.message.role === 'user').message"
        )
        assert "open" in user["text"].lower(), (user, product.logs())
        page.wait_for_function(
            "window.thinnestDemo.events.some(e => e.type === 'transcript' && e.message.role === 'agent'"
            " && e.message.final && !e.message.text.startsWith('Hello!'))",
            timeout=30000,
        )
        page.wait_for_function(
            "window.thinnestDemo.events.filter(e => e.type === 'agent_listening').length >= 2",
            timeout=30000,
        )
        received = page.evaluate(INBOUND_AUDIO_STATS_JS)
        assert received and received["packets"] > 0, product.logs()
        assert received["energy"] > MIN_RECEIVED_ENERGY, (received, product.logs())
        # The demo page shows the live transcript.
        shown = page.inner_text("#transcript")
        assert "You:" in shown and "Agent:" in shown

        row = product.call_row(session_id)
        assert row["status"] == "active" and row["started_at"]

        page.click("#hangupBtn")
        ended = wait_for_event(page, "call_ended", timeout_ms=10000)
        assert ended["reason"] == "user_hangup"
        assert ended["duration"] > speech_wav.speech_seconds
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('Call ended')"
        )
        assert "error" not in event_types(page)
    finally:
        page.close()

    row = product.call_row(session_id)
    assert row["status"] == "ended", product.logs()
    assert row["end_reason"] == "user_hangup"
    assert row["duration_seconds"] == pytest.approx(ended["duration"], abs=0.01)

    # What the server heard: the spoken question, whole, at about its real length.
    stats = row["media_stats"]
    assert stats, product.logs()
    first = stats["speech_segments"][0]
    assert first["start_ms"] > 100, stats["speech_segments"]
    heard = (first["end_ms"] - first["start_ms"]) / 1000
    assert heard == pytest.approx(speech_wav.speech_seconds, abs=0.4), stats["speech_segments"]
    assert stats["outbound_seconds"] > 0


def test_a_killed_media_worker_ends_the_call_with_an_error_within_5_seconds(
    product_to_break, browser
):
    product = product_to_break
    page = browser.new_page()
    try:
        page.goto(f"{product.base_url}/demo/")
        page.click("#callBtn")
        session_id = wait_for_event(page, "call_started")["session_id"]

        product.processes["worker"].kill()  # SIGKILL: no goodbye message to anyone
        killed_at = page.evaluate("performance.now()")
        error = wait_for_event(page, "error", timeout_ms=8000)
        ended = wait_for_event(page, "call_ended", timeout_ms=8000)
        ended_at = page.evaluate("window.thinnestDemo.events.find(e => e.type === 'call_ended').at")
        assert error["code"] == "media_worker_lost"
        assert ended["reason"] == "error"
        assert ended_at - killed_at < 5000
        page.wait_for_function("document.getElementById('status').className.includes('error')")
    finally:
        page.close()
    row = product.call_row(session_id)
    assert (row["status"], row["end_reason"]) == ("ended", "error")
