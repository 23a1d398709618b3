"""What the dashboard's views share besides access (dashboard/access.py)."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from django.http import Http404, JsonResponse

from thinnest_site.errors import error_body

T = TypeVar("T")


def or_404(found: T | None) -> T:
    """What a selector found, or a 404: selectors answer None for "no such row"."""
    if found is None:
        raise Http404("Not found.")
    return found


def json_error(status: int, code: str, message: str) -> JsonResponse:
    """The error body of the API (thinnest_site/errors.py), for the pages' own fetches."""
    return JsonResponse(error_body(code, message), status=status)


def date_param(value: str | None) -> date | None:
    """A date from the query string; a bad one is no date (bad filters are ignored)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
