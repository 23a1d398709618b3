from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, ApiKey
from agents.origins import normalize_origins
from thinnest_site.errors import InvalidRequest
from thinnest_site.ids import random_token

_KEY_PREFIXES = {ApiKey.Kind.SECRET: "sk", ApiKey.Kind.PUBLIC: "pk"}
_PREFIX_BODY_LENGTH = 8
_SECRET_LENGTH = 32
# Cache key of the set of origins allowed by any active public key (CORS preflight).
PUBLIC_ORIGINS_CACHE_KEY = "agents:public-key-origins:v1"
# last_used_at is written at most this often per key, so a busy key costs no write per request.
_LAST_USED_RESOLUTION = timedelta(seconds=60)
# The secret key the /demo/ page's stand-in "customer backend" starts calls with.
DEMO_SECRET_KEY_NAME = "Demo secret key"


def api_key_hash(raw_key: str) -> str:
    # Keys are 190 bits of randomness, so a fast hash is enough; a slow KDF would only cost latency.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def agent_create(
    *,
    name: str,
    system_prompt: str = "",
    greeting: str = "",
    public_id: str | None = None,
    **fields,
) -> Agent:
    agent = Agent(name=name, system_prompt=system_prompt, greeting=greeting, **fields)
    if public_id:
        agent.public_id = public_id
    agent.full_clean()
    agent.save()
    return agent


def agent_update(*, agent: Agent, **fields) -> Agent:
    """Change an agent's settings; ``full_clean`` first, so a bad value saves nothing."""
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.full_clean()
    agent.save()
    return agent


def agent_deactivate(*, agent: Agent) -> Agent:
    """New calls to it are refused (404 on start); its history stays."""
    if agent.is_active:
        agent.is_active = False
        agent.save(update_fields=["is_active", "updated_at"])
    return agent


def api_key_rules_check(
    *, kind: str, agents: Sequence[Agent], allowed_origins: Sequence[str]
) -> list[str]:
    """The rules every key obeys; returns the normalized origins or raises ``InvalidRequest``."""
    if kind not in ApiKey.Kind.values:
        raise InvalidRequest(f"kind must be one of {', '.join(ApiKey.Kind.values)}.")
    origins = normalize_origins(allowed_origins)
    if kind == ApiKey.Kind.PUBLIC:
        if not agents:
            raise InvalidRequest("A public key must name at least one agent it may start.")
        if not origins:
            raise InvalidRequest("A public key must list the web origins allowed to use it.")
    return origins


@transaction.atomic
def api_key_create(
    *,
    kind: str,
    name: str = "",
    agents: Sequence[Agent] = (),
    allowed_origins: Sequence[str] = (),
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is never stored and cannot be shown again."""
    origins = api_key_rules_check(kind=kind, agents=agents, allowed_origins=allowed_origins)

    prefix = f"{_KEY_PREFIXES[kind]}_{random_token(_PREFIX_BODY_LENGTH)}"
    raw_key = f"{prefix}{random_token(_SECRET_LENGTH)}"
    api_key = ApiKey(
        kind=kind,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(raw_key),
        public_value=raw_key if kind == ApiKey.Kind.PUBLIC else "",
        allowed_origins=origins,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    api_key.full_clean()
    api_key.save()
    api_key.agents.set(agents)
    transaction.on_commit(lambda: cache.delete(PUBLIC_ORIGINS_CACHE_KEY))
    return api_key, raw_key


def api_key_update(
    *,
    api_key: ApiKey,
    name: str,
    agents: Sequence[Agent],
    allowed_origins: Sequence[str],
    rate_limit_per_minute: int | None,
) -> ApiKey:
    api_key.allowed_origins = api_key_rules_check(
        kind=api_key.kind, agents=agents, allowed_origins=allowed_origins
    )
    api_key.name = name
    api_key.rate_limit_per_minute = rate_limit_per_minute
    api_key.full_clean()
    api_key.save()
    api_key.agents.set(agents)
    cache.delete(PUBLIC_ORIGINS_CACHE_KEY)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        cache.delete(PUBLIC_ORIGINS_CACHE_KEY)
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < _LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
