"""Analytics: calls per day, durations, response latency, end reasons and per-agent figures over
a date range."""

from __future__ import annotations

import json
from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone

from agents.selectors import agent_list
from dashboard.access import VIEW_CALLS, staff_required
from dashboard.shortcuts import date_param
from sessions.selectors import call_analytics

MAX_ANALYTICS_DAYS = 366


@staff_required(perm=VIEW_CALLS)
def analytics(request):
    today = timezone.localdate()
    date_to = date_param(request.GET.get("to")) or today
    date_from = date_param(request.GET.get("from")) or date_to - timedelta(days=29)
    error = ""
    if date_from > date_to or (date_to - date_from).days >= MAX_ANALYTICS_DAYS:
        error = f"Choose a range of 1 to {MAX_ANALYTICS_DAYS} days, oldest first."
        date_from, date_to = today - timedelta(days=29), today
    agent = request.GET.get("agent", "")
    figures = call_analytics(date_from=date_from, date_to=date_to, agent=agent)
    return render(
        request,
        "dashboard/analytics.html",
        {
            "figures": figures,
            "figures_json": json.dumps(figures, default=str),
            "date_from": date_from,
            "date_to": date_to,
            "agent": agent,
            "agents": agent_list(),
            "error": error,
            "nav": "analytics",
        },
        status=400 if error else 200,
    )
