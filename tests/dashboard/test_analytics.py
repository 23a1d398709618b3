"""The analytics page (dashboard/views/analytics.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_analytics_figures(staff, agent, call):
    response = staff.get("/dashboard/analytics/")
    figures = response.context["figures"]
    assert figures["calls"] == 1 and figures["avg_duration_seconds"] == 42.0
    assert figures["p50_latency_ms"] == 700
    assert figures["end_reasons"] == [{"end_reason": "user_hangup", "calls": 1}]
    assert figures["days"][-1]["calls"] == 1 and len(figures["days"]) == 30
    assert staff.get("/dashboard/analytics/?from=2026-01-10&to=2026-01-01").status_code == 400


def test_analytics_show_durations_as_minutes_and_latencies_in_seconds(staff, call):
    page = staff.get("/dashboard/analytics/").content.decode()
    assert ">0:42</span>" in page and ">0.7 s</span>" in page
    assert " ms</span>" not in page
