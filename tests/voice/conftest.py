from __future__ import annotations

import pytest

from voice import worker as worker_module
from voice.ice import restrict_host_addresses


@pytest.fixture
def media_on_loopback(settings, monkeypatch):
    """A media worker in the test's process: aiortc on 127.0.0.1 only, the greeting pipeline
    (transport tests need no models; a test that needs the conversation sets it), and its timers
    ticking every 0.1 s."""
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.VOICE_PIPELINE = "greeting"
    monkeypatch.setattr(worker_module, "SUPERVISE_INTERVAL_SECONDS", 0.1)
    yield
    restrict_host_addresses([])
