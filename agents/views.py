"""Dashboard pages for agents, API keys and embed snippets (server-rendered, staff with the
matching model permissions only: thinnest_site/dashboard.py)."""

from __future__ import annotations

import io
import json
import re
import wave

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.views.decorators.http import require_POST

from agents.forms import AgentForm, ApiKeyForm
from agents.models import Agent, ApiKey
from agents.services import (
    agent_create,
    agent_deactivate,
    agent_duplicate,
    agent_reactivate,
    agent_update,
    api_key_create,
    api_key_revoke,
    api_key_update,
)
from sessions.selectors import call_start_response, client_ip_get, public_base_url
from sessions.services import call_context_validate, call_session_start
from thinnest_site.dashboard import staff_required
from thinnest_site.errors import ApplicationError, InvalidRequest

PREVIEW_MAX_CHARS = 300
# The placeholders the call's prompt fills from its context: voice.engines.text's pattern.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _catalog() -> dict:
    # What this server has, for the form's choices (read from packages and settings, no model
    # is loaded).
    from voice.catalog import voice_catalog

    return voice_catalog().as_dict()


def prompt_placeholders(prompt: str) -> list[str]:
    """The ``{{name}}`` placeholders of a prompt, each once, in order of appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(prompt or "")))


@staff_required(perm="agents.view_agent")
def agent_list(request):
    agents = Agent.objects.annotate(call_count=Count("calls")).order_by("-is_active", "name")
    return render(request, "dashboard/agent_list.html", {"agents": agents, "nav": "agents"})


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
    agent = get_object_or_404(Agent, public_id=public_id)
    catalog = _catalog()
    # Bound to a copy: a failed save leaves the stored agent as it was, and the form keeps
    # everything the user typed.
    form = AgentForm(request.POST or None, instance=Agent.objects.get(pk=agent.pk), catalog=catalog)
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
            "sdk_url": "/sdk.js",
        },
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


@staff_required(perm="agents.change_agent")
def agent_reactivate_view(request, public_id: str):
    agent = get_object_or_404(Agent, public_id=public_id)
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
            "cancel_url": f"/dashboard/agents/{agent.public_id}/",
            "nav": "agents",
        },
    )


@staff_required(perm=("agents.view_agent", "agents.add_agent"))
def agent_duplicate_view(request, public_id: str):
    agent = get_object_or_404(Agent, public_id=public_id)
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
            "cancel_url": f"/dashboard/agents/{agent.public_id}/",
            "nav": "agents",
        },
    )


def _talk_context(request) -> dict:
    """What the staff user filled in for the prompt's placeholders: a JSON body
    ``{"context": {...}}``, checked as a start-call request's context is. Any other body (a form
    post, none at all): no context."""
    if request.content_type != "application/json" or not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest('The body must be JSON: {"context": {...}}.') from exc
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object: {"context": {...}}.')
    return call_context_validate(body.get("context"))


@require_POST
# A test call is part of tuning the agent, from its edit page.
@staff_required(perm="agents.change_agent")
def agent_talk(request, public_id: str):
    """Start a call with this agent from the dashboard itself (no API key: the staff login is
    the credential; CSRF-protected like every dashboard POST)."""
    agent = get_object_or_404(Agent, public_id=public_id)
    if not agent.is_active:
        return _error(409, "agent_inactive", "This agent is deactivated.")
    try:
        # The user's values may replace the default user_name; "source" always says where the
        # call came from.
        context = {
            "user_name": request.user.get_username(),
            **_talk_context(request),
            "source": "dashboard",
        }
        started = call_session_start(
            agent=agent,
            api_key=None,
            context=context,
            origin=request.headers.get("Origin", ""),
            client_ip=client_ip_get(request),
        )
    except ApplicationError as exc:
        return _error(exc.status_code, exc.code, exc.message)
    return JsonResponse(call_start_response(request, started), status=201)


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
def api_key_edit_view(request, key_id: int):
    """A key's name, agents, origins and limits, changed in place: the key itself stays, so the
    sites and servers that use it go on working."""
    api_key = get_object_or_404(ApiKey, pk=key_id, revoked_at__isnull=True)
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


# --- embed ---------------------------------------------------------------------------------

EMBED_POSITIONS = ("bottom-right", "bottom-left")
EMBED_THEMES = ("light", "dark")
EMBED_GREETING_MAX = 120
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Characters a JSX string attribute ("...") cannot hold: it has no escapes.
JSX_UNQUOTABLE = re.compile(r'["{}\\<>&\x00-\x1f\u2028\u2029]')


def js_string(value: str) -> str:
    """``value`` as a JavaScript string literal that is also safe in an HTML <script> element.

    JSON's quoting (a string literal in JavaScript too), with "<" escaped so that neither
    "</script>" nor "<!--" in the value can end or change the element, and U+2028/U+2029
    escaped for engines older than ES2019. static/dashboard/embed.js does the same for the
    live snippet."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _jsx_prop(name: str, value: str) -> str:
    if JSX_UNQUOTABLE.search(value):
        return f"{name}={{{js_string(value)}}}"
    return f'{name}="{value}"'


def embed_snippets(server: str, options: dict[str, str]) -> dict[str, str]:
    """The script-tag and React snippets for these widget options (as embed.js builds them)."""
    keys = ("agentId", "apiKey", "position", "theme", "greeting", "primaryColor")
    script = (
        f'<script src="{escape(server)}/widget.js"></script>\n<script>\nThinnestAI.init({{\n'
        + ",\n".join(f"  {key}: {js_string(options[key])}" for key in keys)
        + "\n});\n</script>"
    )
    props = [_jsx_prop("serverUrl", server)] + [_jsx_prop(key, options[key]) for key in keys]
    react = (
        "import { ThinnestVoiceWidget } from '@thinnest/embed-sdk';\n\nfunction App() {\n"
        "  return (\n    <ThinnestVoiceWidget\n"
        + "".join(f"      {prop}\n" for prop in props)
        + "      onCallStart={(sessionId) => console.log('Call started:', sessionId)}\n"
        "      onCallEnd={(sessionId, duration) => console.log('Call ended:', duration)}\n"
        "    />\n  );\n}"
    )
    return {"script": script, "react": react}


def _embed_options(get) -> dict[str, str]:
    """The widget options of the page's form, each one the widget accepts (else its default)."""
    position, theme = get.get("position", ""), get.get("theme", "")
    colour = get.get("color", "")
    return {
        "position": position if position in EMBED_POSITIONS else EMBED_POSITIONS[0],
        "theme": theme if theme in EMBED_THEMES else EMBED_THEMES[0],
        "greeting": get.get("greeting", "").strip()[:EMBED_GREETING_MAX] or "Talk to us",
        "primaryColor": colour.lower() if HEX_COLOUR.match(colour) else "#0066ff",
    }


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
    options = {
        "agentId": agent.public_id if agent else "agent_xyz",
        "apiKey": key.public_value if key else "YOUR_PUBLIC_KEY",
        **_embed_options(request.GET),
    }
    config = {
        "server": server,
        "agentId": options["agentId"],
        "apiKey": options["apiKey"],
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
            "options": options,
            "positions": EMBED_POSITIONS,
            "themes": EMBED_THEMES,
            "snippets": embed_snippets(server, options),
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
