"""Dashboard pages for agents, API keys and embed snippets (server-rendered, staff with the
matching model permissions only: thinnest_site/dashboard.py)."""

from __future__ import annotations

import io
import json
import wave

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from agents.forms import AgentForm, ApiKeyForm
from agents.models import Agent, ApiKey
from agents.services import (
    agent_create,
    agent_deactivate,
    agent_update,
    api_key_create,
    api_key_revoke,
)
from sessions.selectors import call_websocket_url, client_ip_get, public_base_url
from sessions.services import call_session_start
from thinnest_site.dashboard import staff_required
from thinnest_site.errors import ApplicationError

PREVIEW_MAX_CHARS = 300


@staff_required(perm="agents.view_agent")
def agent_list(request):
    agents = Agent.objects.annotate(call_count=Count("calls")).order_by("-is_active", "name")
    return render(request, "dashboard/agent_list.html", {"agents": agents, "nav": "agents"})


@staff_required(perm="agents.add_agent")
def agent_create_view(request):
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        agent = agent_create(**form.cleaned_data)
        messages.success(request, f"Agent “{agent.name}” created.")
        return redirect("dashboard:agent_edit", public_id=agent.public_id)
    return render(request, "dashboard/agent_form.html", {"form": form, "nav": "agents"})


@staff_required(perm="agents.view_agent", post_perm="agents.change_agent")
def agent_edit(request, public_id: str):
    agent = get_object_or_404(Agent, public_id=public_id)
    # Bound to a copy: a failed save leaves the stored agent as it was, and the form keeps
    # everything the user typed.
    form = AgentForm(request.POST or None, instance=Agent.objects.get(pk=agent.pk))
    if request.method == "POST" and form.is_valid():
        agent_update(agent=agent, **form.cleaned_data)
        messages.success(request, "Saved.")
        return redirect("dashboard:agent_edit", public_id=agent.public_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "dashboard/agent_form.html",
        {"form": form, "agent": agent, "nav": "agents", "sdk_url": "/sdk.js"},
        status=status,
    )


@staff_required(perm="agents.change_agent")
def agent_deactivate_view(request, public_id: str):
    agent = get_object_or_404(Agent, public_id=public_id)
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
            "cancel_url": f"/dashboard/agents/{agent.public_id}/",
            "nav": "agents",
        },
    )


@require_POST
# A test call is part of tuning the agent, from its edit page.
@staff_required(perm="agents.change_agent")
def agent_talk(request, public_id: str):
    """Start a call with this agent from the dashboard itself (no API key: the staff login is
    the credential; CSRF-protected like every dashboard POST)."""
    agent = get_object_or_404(Agent, public_id=public_id)
    if not agent.is_active:
        return JsonResponse(
            {"error": {"code": "agent_inactive", "message": "This agent is deactivated."}},
            status=409,
        )
    started = call_session_start(
        agent=agent,
        api_key=None,
        context={"source": "dashboard", "user_name": request.user.get_username()},
        origin=request.headers.get("Origin", ""),
        client_ip=client_ip_get(request),
    )
    return JsonResponse(
        {
            "session_id": started.session.public_id,
            "token": started.token,
            "websocket_url": call_websocket_url(request, started.session.public_id, started.token),
        },
        status=201,
    )


@staff_required(perm="agents.view_agent")
def voice_preview(request):
    """The greeting (or any short text) in a voice, as WAV, for the agent form's preview."""
    from voice.engines import registry
    from voice.engines.models import ModelUnavailable

    engine = request.GET.get("engine", "piper")
    voice = request.GET.get("voice", "")
    text = request.GET.get("text", "").strip() or "Hello! How can I help you today?"
    try:
        speed = float(request.GET.get("speed", "1"))
    except ValueError:
        speed = 0.0
    if engine not in Agent.TtsEngine.values or not 0.5 <= speed <= 2.0:
        return _error(
            400,
            "invalid_request",
            "engine must be one of "
            f"{', '.join(Agent.TtsEngine.values)} and speed between 0.5 and 2.",
        )
    if len(text) > PREVIEW_MAX_CHARS:
        return _error(
            400, "invalid_request", f"Preview text is limited to {PREVIEW_MAX_CHARS} characters."
        )
    try:
        tts = registry.tts_get(engine, voice)
        pcm, rate = tts.synthesize(text, voice=voice, speed=speed)
    except (ModelUnavailable, RuntimeError, OSError) as exc:
        return _error(422, "voice_unavailable", str(exc))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    response = HttpResponse(buffer.getvalue(), content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=600"
    return response


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


# --- API keys ---------------------------------------------------------------------------------


@staff_required(perm="agents.view_apikey")
def api_key_list(request):
    keys = ApiKey.objects.prefetch_related("agents").order_by("revoked_at", "-created_at")
    return render(request, "dashboard/api_key_list.html", {"keys": keys, "nav": "keys"})


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
def api_key_revoke_view(request, key_id: int):
    api_key = get_object_or_404(ApiKey, pk=key_id)
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
            "cancel_url": "/dashboard/keys/",
            "nav": "keys",
        },
    )


# --- embed ------------------------------------------------------------------------------------


@staff_required(perm=("agents.view_agent", "agents.view_apikey"))
def embed(request):
    agents = list(Agent.objects.filter(is_active=True))
    agent = next((a for a in agents if a.public_id == request.GET.get("agent")), None)
    agent = agent or (agents[0] if agents else None)
    keys = list(
        ApiKey.objects.filter(kind=ApiKey.Kind.PUBLIC, revoked_at__isnull=True)
        .exclude(public_value="")
        .filter(Q(agents=agent) if agent else Q(pk__in=[]))
        .distinct()
    )
    key = next((k for k in keys if str(k.pk) == request.GET.get("key")), None)
    key = key or (keys[0] if keys else None)
    server = public_base_url(request)
    config = {
        "server": server,
        "agentId": agent.public_id if agent else "agent_xyz",
        "apiKey": key.public_value if key else "YOUR_PUBLIC_KEY",
        "origins": key.allowed_origins if key else [],
    }
    return render(
        request,
        "dashboard/embed.html",
        {
            "agents": agents,
            "agent": agent,
            "keys": keys,
            "key": key,
            "config": config,
            "config_json": json.dumps(config),
            "curl": (
                f'curl -X POST "{server}/voice/start" \\\n'
                '  -H "Authorization: Bearer YOUR_SECRET_KEY" \\\n'
                '  -H "Content-Type: application/json" \\\n'
                f'  -d \'{{"agent_id": "{config["agentId"]}", '
                '"context": {"user_name": "Jane Doe", "page": "pricing"}}\''
            ),
            "nav": "embed",
        },
    )
