from __future__ import annotations

import ipaddress
from urllib.parse import urlencode

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from sessions.models import CallSession
from voice.protocol import CallSpec


def public_base_url(request) -> str:
    """The http(s) base URL browsers reach this server at: PUBLIC_BASE_URL, else the request's own
    (X-Forwarded-Proto/-Host count only with TRUST_PROXY)."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL
    return f"{request.scheme}://{request.get_host()}"


def call_websocket_url(request, session_id: str, token: str) -> str:
    """``ws(s)://host/ws/<session_id>?token=…``. The token rides in the URL as well as in the
    ``auth`` message because the seed's browser code attaches ``ws.onopen`` only after awaiting
    the microphone: on a fast network the socket is open by then and ``auth`` is never sent."""
    base = public_base_url(request)
    if base.startswith("https://"):
        ws_base = "wss://" + base.removeprefix("https://")
    else:
        ws_base = "ws://" + base.removeprefix("http://")
    return f"{ws_base}/ws/{session_id}?{urlencode({'token': token})}"


def client_ip_get(request) -> str | None:
    # DRF's rule (X-Forwarded-For only with NUM_PROXIES), so throttling and records agree.
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return None


def call_session_get(*, public_id: str) -> CallSession | None:
    return CallSession.objects.select_related("agent").filter(public_id=public_id).first()


def call_spec_build(session: CallSession) -> CallSpec:
    """Everything a media worker needs to run this call, from the session and its agent."""
    agent = session.agent
    return CallSpec(
        session_id=session.public_id,
        agent_id=agent.public_id,
        greeting=agent.greeting,
        system_prompt=agent.system_prompt,
        language=agent.language,
        stt_engine=agent.stt_engine,
        tts_engine=agent.tts_engine,
        tts_voice=agent.tts_voice,
        tts_speed=agent.tts_speed,
        llm_temperature=agent.llm_temperature,
        llm_max_tokens=agent.llm_max_tokens,
        max_duration_seconds=agent.max_duration_seconds,
        silence_timeout_seconds=agent.silence_timeout_seconds,
        context=dict(session.context),
    )
