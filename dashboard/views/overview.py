"""The page every login lands on: the last week's figures and the latest calls."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone

from agents.selectors import agent_count
from dashboard.access import VIEW_CALLS, staff_required
from sessions.selectors import CallFilters, call_analytics, calls_filter


@staff_required
def overview(request):
    # Where every login lands, so any staff user may open it; the call figures only with the
    # permission that the call pages need.
    figures, recent = None, []
    if request.user.has_perm(VIEW_CALLS):
        today = timezone.localdate()
        figures = call_analytics(date_from=today - timedelta(days=6), date_to=today)
        recent = calls_filter(CallFilters())[:10]
    return render(
        request,
        "dashboard/overview.html",
        {"figures": figures, "recent": recent, "agents": agent_count(), "nav": "home"},
    )
