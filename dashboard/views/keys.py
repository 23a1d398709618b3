"""API keys: list, create (the key shown once), edit in place, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from agents.models import ApiKey
from agents.selectors import api_key_get, api_key_list
from agents.services import api_key_create, api_key_revoke, api_key_update
from dashboard.access import staff_required
from dashboard.forms import ApiKeyForm
from dashboard.shortcuts import or_404
from thinnest_site.errors import ApplicationError


@staff_required(perm="agents.view_apikey")
def api_key_list_view(request):
    return render(request, "dashboard/api_key_list.html", {"keys": api_key_list(), "nav": "keys"})


@staff_required(perm="agents.add_apikey")
def api_key_create_view(request):
    form = ApiKeyForm(request.POST or None, initial={"kind": ApiKey.Kind.PUBLIC})
    if request.method == "POST" and form.is_valid():
        try:
            api_key, raw_key = api_key_create(**form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            # Shown once, on this response only: never stored (secret keys) and never in a URL.
            return render(
                request,
                "dashboard/api_key_created.html",
                {"api_key": api_key, "raw_key": raw_key, "nav": "keys"},
            )
    return render(
        request,
        "dashboard/api_key_form.html",
        {"form": form, "nav": "keys"},
        status=400 if request.method == "POST" else 200,
    )


@staff_required(perm="agents.change_apikey")
def api_key_edit_view(request, key_id: int):
    """A key's name, agents, origins and limits, changed in place: the key itself stays, so the
    sites and servers that use it go on working."""
    api_key = or_404(api_key_get(key_id=key_id))
    form = ApiKeyForm(request.POST or None, api_key=api_key)
    if request.method == "POST" and form.is_valid():
        try:
            api_key_update(api_key=api_key, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Key {api_key.prefix}… saved.")
            return redirect("dashboard:api_key_list")
    return render(
        request,
        "dashboard/api_key_form.html",
        {"form": form, "api_key": api_key, "nav": "keys"},
        status=400 if request.method == "POST" else 200,
    )


@staff_required(perm="agents.change_apikey")
def api_key_revoke_view(request, key_id: int):
    api_key = or_404(api_key_get(key_id=key_id, include_revoked=True))
    if request.method == "POST":
        api_key_revoke(api_key=api_key)
        messages.success(request, f"Key {api_key.prefix}… revoked.")
        return redirect("dashboard:api_key_list")
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Revoke key {api_key.prefix}…?",
            "body": "Calls already running go on; every new start-call request with this key is "
            "refused at once. This cannot be undone.",
            "action": "Revoke",
            "cancel_url": reverse("dashboard:api_key_list"),
            "nav": "keys",
        },
    )
