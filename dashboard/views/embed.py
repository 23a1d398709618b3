"""The embed page: for an agent and a public key, the script tag, the React snippet and the
curl of a start-call request, filled in."""

from __future__ import annotations

import json
import re

from django.shortcuts import render
from django.utils.html import escape

from agents.selectors import agent_list_active, api_key_list_embeddable
from dashboard.access import staff_required
from sessions.selectors import public_base_url

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
    agents = list(agent_list_active())
    agent = next((a for a in agents if a.public_id == request.GET.get("agent")), None)
    agent = agent or (agents[0] if agents else None)
    keys = api_key_list_embeddable(agent=agent)
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
