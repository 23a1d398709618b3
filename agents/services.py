from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.keys import (
    KEY_PREFIXES,
    PREFIX_BODY_LENGTH,
    PUBLIC_ORIGINS_CACHE_KEY,
    SECRET_LENGTH,
    api_key_hash,
)
from agents.knowledge.services import knowledge_copy
from agents.models import (
    Agent,
    ApiKey,
    WebhookDelivery,
    WebhookEndpoint,
    new_webhook_event_id,
)
from agents.origins import normalize_origins
from agents.selectors import webhook_endpoints_for_event
from agents.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    PostResult,
    WebhookUrlError,
    webhook_body_encode,
    webhook_post,
    webhook_signature_header,
    webhook_url_check,
)
from thinnest_site.errors import InvalidRequest
from thinnest_site.ids import random_token

# last_used_at is written at most this often per key, so a busy key costs no write per request.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


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


def agent_reactivate(*, agent: Agent) -> Agent:
    """It takes new calls again. Its settings are checked first, as at a save (``full_clean``
    raises ``ValidationError``): a model or voice may have gone while it was off, and an agent
    that cannot run must not go live silently."""
    if not agent.is_active:
        agent.full_clean()
        agent.is_active = True
        agent.save(update_fields=["is_active", "updated_at"])
    return agent


# What a copy does not take from its original: identity and bookkeeping.
_NOT_COPIED = {"id", "public_id", "name", "is_active", "created_at", "updated_at"}


def agent_duplicate(*, agent: Agent, name: str | None = None) -> Agent:
    """A new agent with ``agent``'s settings and a copy of its knowledge, a new public id and the
    name "<name> (copy)". Active, like any new agent; API keys, webhooks and calls stay with the
    original."""
    suffix = " (copy)"
    max_length = Agent._meta.get_field("name").max_length
    settings_fields = {
        field.name: getattr(agent, field.name)
        for field in Agent._meta.concrete_fields
        if field.name not in _NOT_COPIED
    }
    with transaction.atomic():
        copy = agent_create(
            name=name or agent.name[: max_length - len(suffix)] + suffix, **settings_fields
        )
        knowledge_copy(source=agent, target=copy)
    return copy


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
    max_concurrent_calls: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is never stored and cannot be shown again."""
    origins = api_key_rules_check(kind=kind, agents=agents, allowed_origins=allowed_origins)

    prefix = f"{KEY_PREFIXES[kind]}_{random_token(PREFIX_BODY_LENGTH)}"
    raw_key = f"{prefix}{random_token(SECRET_LENGTH)}"
    api_key = ApiKey(
        kind=kind,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(raw_key),
        public_value=raw_key if kind == ApiKey.Kind.PUBLIC else "",
        allowed_origins=origins,
        rate_limit_per_minute=rate_limit_per_minute,
        max_concurrent_calls=max_concurrent_calls,
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
    max_concurrent_calls: int | None = None,
) -> ApiKey:
    api_key.allowed_origins = api_key_rules_check(
        kind=api_key.kind, agents=agents, allowed_origins=allowed_origins
    )
    api_key.name = name
    api_key.rate_limit_per_minute = rate_limit_per_minute
    api_key.max_concurrent_calls = max_concurrent_calls
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


# --- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookAttempt:
    delivered: bool  # this attempt got a 2xx
    retry_in: float | None  # seconds until the next attempt is due; None: no attempt is due


def webhook_endpoint_create(
    *, agent: Agent, url: str, events: Sequence[str] | None = None
) -> WebhookEndpoint:
    try:
        url = webhook_url_check(url, allow_http_localhost=settings.WEBHOOK_ALLOW_HTTP_LOCALHOST)
    except WebhookUrlError as exc:
        raise InvalidRequest(str(exc), code="invalid_url") from exc
    events = list(WebhookEndpoint.Event.values if events is None else events)
    unknown = sorted(set(events) - set(WebhookEndpoint.Event.values))
    if unknown or not events:
        raise InvalidRequest(
            f"events must be one or more of {', '.join(WebhookEndpoint.Event.values)}."
        )
    endpoint = WebhookEndpoint(agent=agent, url=url, events=events)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Deletes its delivery log too; a send already queued finds nothing and does nothing."""
    endpoint.delete()


def _webhook_envelope(*, event_id: str, event: str, data: dict) -> dict:
    return {"id": event_id, "type": event, "created_at": timezone.now().isoformat(), "data": data}


def webhook_event_emit(
    *, agent_id: int, event: str, subject_id: str, data: Callable[[], dict]
) -> list[WebhookDelivery]:
    """Record ``event`` about ``subject_id`` (a call's public id) for each of the agent's
    endpoints that wants it, and queue the sends for after the commit.

    ``data`` builds the event's ``data``; it is called once, and only when some endpoint wants
    the event: building it costs queries, and most agents have no webhooks.

    Emitting again for the same subject and event creates nothing: the delivery is unique per
    (endpoint, event, subject). It refreshes the data of a delivery no attempt has sent yet, so
    that an event emitted again with more to tell goes out with it."""
    endpoints = webhook_endpoints_for_event(agent_id=agent_id, event=event)
    if not endpoints:
        return []
    event_data = data()
    queued = []
    for endpoint in endpoints:
        event_id = new_webhook_event_id()
        delivery, created = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            event=event,
            session_id=subject_id,
            defaults={
                "event_id": event_id,
                "payload": _webhook_envelope(event_id=event_id, event=event, data=event_data),
            },
        )
        if not created:
            refreshed = WebhookDelivery.objects.filter(
                pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=0
            ).update(payload={**delivery.payload, "data": event_data})
            if not refreshed:
                continue
        queued.append(delivery)
        _webhook_delivery_enqueue(delivery.pk)
    return queued


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` event, so staff can check the receiver and its signature check."""
    event_id = new_webhook_event_id()
    data = {
        "agent_id": endpoint.agent.public_id,
        "message": "A test event sent from the thinnest dashboard.",
    }
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=WebhookDelivery.TEST_EVENT,
        event_id=event_id,
        payload=_webhook_envelope(event_id=event_id, event=WebhookDelivery.TEST_EVENT, data=data),
    )
    _webhook_delivery_enqueue(delivery.pk)
    return delivery


def _webhook_delivery_enqueue(delivery_id: int, *, countdown: float = 0) -> None:
    from agents.tasks import webhook_delivery_send  # tasks import this module
    from thinnest_site.background import task_enqueue

    # Never sent in the caller's thread, broker or not: the callers include the call consumer's
    # database work, and a receiver that never answers must not stall calls. robust: a broker
    # that is down must not fail the call that emitted the event; the delivery stays pending in
    # the log, and the resume sweep queues it again.
    transaction.on_commit(
        lambda: task_enqueue(webhook_delivery_send, (delivery_id,), countdown=countdown),
        robust=True,
    )


def webhook_retry_delay(attempts: int) -> float:
    """Exponential backoff after ``attempts`` failed attempts, capped."""
    base = settings.WEBHOOK_RETRY_BACKOFF_SECONDS
    return float(min(settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS, base * 2 ** (attempts - 1)))


def webhook_delivery_send(*, delivery_id: int) -> WebhookAttempt:
    """Make one attempt at a pending delivery and log it on the delivery.

    The attempt first claims the delivery with a conditional UPDATE (pending, and no lease held):
    a delivery that succeeded, failed for good, or is being sent by another worker right now is
    left alone, so a task that runs twice, or two tasks at once, send it once."""
    now = timezone.now()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    claimed = WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
    ).update(
        attempts=F("attempts") + 1,
        # Longer than any attempt can take, so the lease outlives a live attempt.
        locked_until=now + timedelta(seconds=timeout + 30),
    )
    if not claimed:
        return WebhookAttempt(delivered=False, retry_in=None)
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint

    if endpoint.is_active:
        body = webhook_body_encode(delivery.payload)
        result = webhook_post(
            url=endpoint.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                EVENT_HEADER: delivery.event,
                DELIVERY_HEADER: delivery.event_id,
                SIGNATURE_HEADER: webhook_signature_header(endpoint.secret, body),
            },
            timeout=timeout,
            allow_http_localhost=settings.WEBHOOK_ALLOW_HTTP_LOCALHOST,
            allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS,
        )
    else:
        result = PostResult(ok=False, status_code=None, error="The endpoint is disabled.")

    done = timezone.now()
    fields: dict = {
        "locked_until": None,
        "last_status_code": result.status_code,
        "last_error": result.error[:2000],
    }
    retry_in = None
    if result.ok:
        fields.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=done)
        fields["next_attempt_at"] = None
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or not endpoint.is_active:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    else:
        retry_in = webhook_retry_delay(delivery.attempts)
        fields["next_attempt_at"] = done + timedelta(seconds=retry_in)
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    return WebhookAttempt(delivered=result.ok, retry_in=retry_in)


def webhook_deliveries_resume(*, now: datetime | None = None) -> int:
    """Queue again the pending deliveries whose send was lost, and return how many.

    A queued send can vanish: the broker was down when the event was emitted (the call must not
    fail for it), Redis restarted without persistence, or a worker died holding the task. Such a
    delivery stays pending with nothing to move it; this finds those whose attempt is overdue by
    WEBHOOK_RESUME_AFTER_SECONDS (so a send that is merely queued behind others is left alone)
    and queues them. The claim in ``webhook_delivery_send`` keeps a resumed delivery from being
    sent twice should the lost task turn up after all."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.WEBHOOK_RESUME_AFTER_SECONDS)
    stuck = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .filter(
            Q(next_attempt_at__isnull=True, created_at__lt=overdue) | Q(next_attempt_at__lt=overdue)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[: settings.WEBHOOK_RESUME_BATCH]
    )
    ids = list(stuck)
    # Due now: the next sweep leaves them alone while the sends just queued are on their way.
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
    for delivery_id in ids:
        _webhook_delivery_enqueue(delivery_id)
    return len(ids)


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again, from the dashboard: after a receiver's outage outlasted
    the retries, or to replay an event. Same event id and payload, so a receiver that already
    processed it can tell; the attempt count starts over."""
    resent = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=WebhookDelivery.Status.PENDING)
        .update(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            next_attempt_at=None,
            delivered_at=None,
            last_error="",
            last_status_code=None,
        )
    )
    if not resent:
        raise InvalidRequest(
            "This delivery is still being sent; wait for its result.",
            code="delivery_pending",
            status_code=409,
        )
    _webhook_delivery_enqueue(delivery.pk)
    delivery.refresh_from_db()
    return delivery
