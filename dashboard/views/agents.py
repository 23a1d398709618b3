"""Agents: list, create, edit, deactivate, reactivate, duplicate, a test call from the page and
the voice preview."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agents.models import Agent
from agents.selectors import agent_get
from agents.services import (
    agent_create,
    agent_deactivate,
    agent_duplicate,
    agent_reactivate,
    agent_update,
)
from dashboard.access import staff_required
from dashboard.forms import AgentForm
from dashboard.shortcuts import json_error, or_404
from sessions.selectors import agent_list_with_call_count, call_start_response, client_ip_get
from sessions.services import call_session_start_from_dashboard
from thinnest_site.errors import ApplicationError, InvalidRequest
from voice.catalog import voice_catalog
from voice.preview import VoicePreviewUnavailable, voice_preview_wav

PREVIEW_MAX_CHARS = 300
# The placeholders the call's prompt fills from its context: voice.engines.text's pattern.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _catalog() -> dict:
    # What this server has, for the form's choices (read from packages and settings, no model
    # is loaded).
    return voice_catalog().as_dict()


def prompt_placeholders(prompt: str) -> list[str]:
    """The ``{{name}}`` placeholders of a prompt, each once, in order of appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(prompt or "")))


@staff_required(perm="agents.view_agent")
def agent_list(request):
    return render(
        request,
        "dashboard/agent_list.html",
        {"agents": agent_list_with_call_count(), "nav": "agents"},
    )


@staff_required(perm="agents.add_agent")
def agent_create_view(request):
    catalog = _catalog()
    form = AgentForm(request.POST or None, catalog=catalog)
    if request.method == "POST" and form.is_valid():
        agent = agent_create(**form.cleaned_data)
        messages.success(request, f"Agent “{agent.name}” created.")
        return redirect("dashboard:agent_edit", public_id=agent.public_id)
    return render(
        request,
        "dashboard/agent_form.html",
        {"form": form, "catalog": catalog, "nav": "agents"},
        status=400 if request.method == "POST" else 200,
    )


@staff_required(perm="agents.view_agent", post_perm="agents.change_agent")
def agent_edit(request, public_id: str):
    agent = or_404(agent_get(public_id=public_id))
    catalog = _catalog()
    # Bound to a copy: a failed save leaves the stored agent as it was, and the form keeps
    # everything the user typed.
    form = AgentForm(request.POST or None, instance=agent_get(public_id=public_id), catalog=catalog)
    if request.method == "POST" and form.is_valid():
        agent_update(agent=agent, **form.cleaned_data)
        messages.success(request, "Saved.")
        return redirect("dashboard:agent_edit", public_id=agent.public_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "dashboard/agent_form.html",
        {
            "form": form,
            "agent": agent,
            "catalog": catalog,
            # The test call fills these from the inputs beside it: what the saved prompt asks.
            "placeholders": prompt_placeholders(agent.system_prompt),
            "nav": "agents",
            "sdk_url": reverse("sdk-js"),
            # The chat box posts here (dashboard/views/chat.py); its replies link their sources.
            "chat": {"url": reverse("dashboard:agent_chat", args=[agent.public_id])},
        },
        status=status,
    )


@staff_required(perm="agents.change_agent")
def agent_deactivate_view(request, public_id: str):
    agent = or_404(agent_get(public_id=public_id))
    if request.method == "POST":
        agent_deactivate(agent=agent)
        messages.success(request, f"“{agent.name}” is deactivated: new calls to it are refused.")
        return redirect("dashboard:agent_list")
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Deactivate “{agent.name}”?",
            "body": "New calls to this agent will be refused. Its call history stays.",
            "action": "Deactivate",
            "cancel_url": reverse("dashboard:agent_edit", args=[agent.public_id]),
            "nav": "agents",
        },
    )


@staff_required(perm="agents.change_agent")
def agent_reactivate_view(request, public_id: str):
    agent = or_404(agent_get(public_id=public_id))
    if request.method == "POST":
        try:
            agent_reactivate(agent=agent)
        except ValidationError as exc:
            # Its settings are checked as at a save: a model may have gone since.
            messages.error(
                request,
                f"“{agent.name}” cannot take calls on this server: {' '.join(exc.messages)} "
                "Change its settings, then reactivate it.",
            )
            return redirect("dashboard:agent_edit", public_id=agent.public_id)
        messages.success(request, f"“{agent.name}” is active again: it takes new calls.")
        return redirect("dashboard:agent_edit", public_id=agent.public_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Reactivate “{agent.name}”?",
            "body": "It takes new calls again, from every key that names it (and from secret "
            "keys that may start any agent).",
            "action": "Reactivate",
            "action_class": "primary",
            "cancel_url": reverse("dashboard:agent_edit", args=[agent.public_id]),
            "nav": "agents",
        },
    )


@staff_required(perm=("agents.view_agent", "agents.add_agent"))
def agent_duplicate_view(request, public_id: str):
    agent = or_404(agent_get(public_id=public_id))
    if request.method == "POST":
        try:
            copy = agent_duplicate(agent=agent)
        except ValidationError as exc:
            messages.error(request, f"Not copied: {' '.join(exc.messages)}")
            return redirect("dashboard:agent_edit", public_id=agent.public_id)
        messages.success(request, f"“{copy.name}” created: a copy of “{agent.name}”.")
        return redirect("dashboard:agent_edit", public_id=copy.public_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Duplicate “{agent.name}”?",
            "body": f"A new agent “{agent.name} (copy)” with the same settings and a new id. "
            "It is active, like any new agent; no API key names it yet, and the webhooks and "
            "calls stay with the original.",
            "action": "Duplicate",
            "action_class": "primary",
            "cancel_url": reverse("dashboard:agent_edit", args=[agent.public_id]),
            "nav": "agents",
        },
    )


def _talk_context(request) -> Any:
    """What the staff user filled in for the prompt's placeholders: a JSON body
    ``{"context": {...}}`` (the service checks the context itself). Any other body (a form
    post, none at all): no context."""
    if request.content_type != "application/json" or not request.body:
        return None
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest('The body must be JSON: {"context": {...}}.') from exc
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object: {"context": {...}}.')
    return body.get("context")


@require_POST
# A test call is part of tuning the agent, from its edit page.
@staff_required(perm="agents.change_agent")
def agent_talk(request, public_id: str):
    """Start a call with this agent from the dashboard itself (no API key: the staff login is
    the credential; CSRF-protected like every dashboard POST)."""
    agent = or_404(agent_get(public_id=public_id))
    try:
        started = call_session_start_from_dashboard(
            agent=agent,
            user_name=request.user.get_username(),
            context=_talk_context(request),
            origin=request.headers.get("Origin", ""),
            client_ip=client_ip_get(request),
        )
    except ApplicationError as exc:
        return json_error(exc.status_code, exc.code, exc.message)
    return JsonResponse(call_start_response(request, started), status=201)


@staff_required(perm="agents.view_agent")
def voice_preview(request):
    """The greeting (or any short text) in a voice, as WAV, for the agent form's preview."""
    engine = request.GET.get("engine", "piper")
    text = request.GET.get("text", "").strip() or "Hello! How can I help you today?"
    try:
        speed = float(request.GET.get("speed", "1"))
    except ValueError:
        speed = 0.0
    if engine not in Agent.TtsEngine.values or not 0.5 <= speed <= 2.0:
        return json_error(
            400,
            "invalid_request",
            "engine must be one of "
            f"{', '.join(Agent.TtsEngine.values)} and speed between 0.5 and 2.",
        )
    if len(text) > PREVIEW_MAX_CHARS:
        return json_error(
            400, "invalid_request", f"Preview text is limited to {PREVIEW_MAX_CHARS} characters."
        )
    try:
        wav = voice_preview_wav(
            engine=engine, voice=request.GET.get("voice", ""), text=text, speed=speed
        )
    except VoicePreviewUnavailable as exc:
        return json_error(422, "voice_unavailable", str(exc))
    response = HttpResponse(wav, content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=600"
    return response
