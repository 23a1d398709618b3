from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from agents.models import Agent, ApiKey, WebhookEndpoint
from agents.services import api_key_create, webhook_endpoint_create


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"Agent {n}")
    system_prompt = "You are a helpful assistant for {{company}}."
    greeting = "Hello, how can I help?"


def make_api_key(
    *,
    kind: str = ApiKey.Kind.SECRET,
    agents=(),
    origins=(),
    rate_limit_per_minute: int | None = None,
    name: str = "test key",
) -> tuple[ApiKey, str]:
    """A key made by the real service, so tests see hashing and validation as users do."""
    return api_key_create(
        kind=kind,
        name=name,
        agents=list(agents),
        allowed_origins=list(origins),
        rate_limit_per_minute=rate_limit_per_minute,
    )


def make_webhook(*, agent: Agent, url: str, events=None) -> WebhookEndpoint:
    """An endpoint made by the real service, so tests see the URL rule as users do."""
    return webhook_endpoint_create(agent=agent, url=url, events=events)


def make_staff_user(username: str = "staff", *, perms=(), superuser: bool = False):
    """A staff user with the given permissions ("app_label.codename"), as the admin grants them;
    the dashboard checks them as the admin does."""
    user = get_user_model().objects.create_user(
        username, password=f"pw-{username}-123", is_staff=True, is_superuser=superuser
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
