from __future__ import annotations

import hmac

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from agents.keys import DEMO_SECRET_KEY_NAME, PUBLIC_ORIGINS_CACHE_KEY, api_key_hash
from agents.models import Agent, ApiKey, WebhookDelivery, WebhookEndpoint
from agents.origins import origin_matches

_PREFIX_LENGTH = 11  # "sk_" / "pk_" + 8 characters
_PUBLIC_ORIGINS_TTL = 30


def agent_get_active(*, public_id: str) -> Agent | None:
    return Agent.objects.filter(public_id=public_id, is_active=True).first()


def agent_get(*, public_id: str) -> Agent | None:
    return Agent.objects.filter(public_id=public_id).first()


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.order_by("name", "id")


def agent_list_active() -> QuerySet[Agent]:
    return Agent.objects.filter(is_active=True)


def agent_list_for_api_key(*, api_key: ApiKey) -> QuerySet[Agent]:
    """The agents a key's form offers: the active ones, and the key's own even when deactivated
    (unlisted, a save would drop them without a word)."""
    return Agent.objects.filter(Q(is_active=True) | Q(api_keys=api_key)).distinct()


def agent_count() -> int:
    return Agent.objects.count()


def api_key_get_by_raw_key(raw_key: str) -> ApiKey | None:
    """The key a client presented, if it exists (revoked keys included: the caller decides)."""
    if len(raw_key) < _PREFIX_LENGTH + 1 or raw_key[2] != "_":
        return None
    api_key = ApiKey.objects.filter(prefix=raw_key[:_PREFIX_LENGTH]).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw_key)):
        return None
    return api_key


def api_key_get_by_prefix_or_key(value: str) -> ApiKey | None:
    """For operators: a key by its displayed prefix, or by the full key."""
    if len(value) > _PREFIX_LENGTH:
        return api_key_get_by_raw_key(value)
    return ApiKey.objects.filter(prefix=value).first()


def api_key_get(*, key_id: int, include_revoked: bool = False) -> ApiKey | None:
    keys = ApiKey.objects.all() if include_revoked else ApiKey.objects.filter(revoked_at=None)
    return keys.filter(pk=key_id).first()


def api_key_list() -> QuerySet[ApiKey]:
    """Every key, live ones first, newest first."""
    return ApiKey.objects.prefetch_related("agents").order_by("revoked_at", "-created_at")


def api_key_list_embeddable(*, agent: Agent | None) -> list[ApiKey]:
    """The live public keys that may start ``agent`` and whose value is kept, so a snippet can
    carry it (keys made before public values were kept have none)."""
    if agent is None:
        return []
    return list(
        ApiKey.objects.filter(kind=ApiKey.Kind.PUBLIC, revoked_at__isnull=True, agents=agent)
        .exclude(public_value="")
        .distinct()
    )


def api_key_allows_agent(*, api_key: ApiKey, agent: Agent) -> bool:
    allowed = list(api_key.agents.values_list("pk", flat=True))
    if not allowed:
        return not api_key.is_public
    return agent.pk in allowed


def public_key_origins() -> list[str]:
    """Every origin some active public key allows, cached briefly: CORS preflights ask per request."""
    origins = cache.get(PUBLIC_ORIGINS_CACHE_KEY)
    if origins is None:
        origins = sorted(
            {
                origin
                for entry in ApiKey.objects.filter(
                    kind=ApiKey.Kind.PUBLIC, revoked_at__isnull=True
                ).values_list("allowed_origins", flat=True)
                for origin in entry
            }
        )
        cache.set(PUBLIC_ORIGINS_CACHE_KEY, origins, _PUBLIC_ORIGINS_TTL)
    return origins


def origin_allowed_by_any_public_key(origin: str) -> bool:
    return origin_matches(origin, public_key_origins())


def api_key_get_demo_secret() -> ApiKey | None:
    """The secret key bootstrap_demo made for the /demo/ page's stand-in customer backend."""

    return ApiKey.objects.filter(
        kind=ApiKey.Kind.SECRET, name=DEMO_SECRET_KEY_NAME, revoked_at__isnull=True
    ).first()


# --- webhooks ---------------------------------------------------------------------------------


def webhook_endpoints_for_event(*, agent_id: int, event: str) -> list[WebhookEndpoint]:
    # Few endpoints per agent: filtering the event list here works on SQLite and PostgreSQL alike.
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(agent_id=agent_id, is_active=True)
        if event in endpoint.events
    ]


def webhook_endpoint_get(*, agent_public_id: str, endpoint_id: int) -> WebhookEndpoint | None:
    return (
        WebhookEndpoint.objects.select_related("agent")
        .filter(pk=endpoint_id, agent__public_id=agent_public_id)
        .first()
    )


def webhook_endpoint_list(*, agent: Agent) -> QuerySet[WebhookEndpoint]:
    return agent.webhooks.annotate(
        delivery_count=Count("deliveries"),
        failed_count=Count(
            "deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)
        ),
    )


def webhook_delivery_list(*, agent: Agent, limit: int = 100) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(endpoint__agent=agent)
        .select_related("endpoint")
        .defer("payload")[:limit]
    )


def webhook_delivery_get(*, agent_public_id: str, delivery_id: int) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.select_related("endpoint__agent")
        .filter(pk=delivery_id, endpoint__agent__public_id=agent_public_id)
        .first()
    )
