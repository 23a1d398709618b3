"""How the dashboard writes times: offsets in a call as m:ss, response latencies in seconds,
and dates with their time zone (staff in several zones read the same page).

    {% load dashboard_format %}
    {{ turn.start_ms|clock }}        0:17
    {{ turn.latency_ms|latency }}    0.7 s
    {{ call.duration_seconds|duration }}   2:05
    {{ call.created_at|stamp }}      2026-12-02 14:05 UTC   ({{ x|stamp:"seconds" }}: 14:05:09)
"""

from __future__ import annotations

import math
from datetime import datetime

from django import template
from django.utils.dateformat import format as date_format
from django.utils.timezone import is_aware, localtime

register = template.Library()

EMPTY = "\u2013"  # an en dash, as the templates write a missing value


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


@register.filter
def clock(milliseconds) -> str:
    """A moment in the call, from its start: whole seconds, as a player shows them."""
    number = _number(milliseconds)
    return EMPTY if number is None else _clock(int(number // 1000))


@register.filter
def duration(seconds) -> str:
    """A call's length, to the nearest second."""
    number = _number(seconds)
    return EMPTY if number is None else _clock(round(number))


@register.filter
def latency(milliseconds) -> str:
    """A wait: tenths of a second tell latencies apart; a wait of a minute or more as m:ss."""
    number = _number(milliseconds)
    if number is None:
        return EMPTY
    if number < 59_950:  # what would round to "60.0 s"
        return f"{number / 1000:.1f} s"
    return _clock(round(number / 1000))


@register.filter
def stamp(value, precision: str = "") -> str:
    """A date and time in the current time zone, which it names."""
    if not isinstance(value, datetime):
        return EMPTY
    if is_aware(value):
        value = localtime(value)
    return date_format(value, "Y-m-d H:i:s T" if precision == "seconds" else "Y-m-d H:i T")
