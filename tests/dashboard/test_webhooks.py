"""An agent's webhook pages (dashboard/views/webhooks.py): who may open them, adding, testing and
deleting an endpoint, the delivery log, and sending a delivery again. The receiver and the fake
DNS are the webhook tests' (tests/agents/test_webhooks.py; ``receiver`` comes through this
folder's conftest.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from agents.models import WebhookDelivery, WebhookEndpoint
from agents.services import webhook_delivery_send, webhook_test_send
from tests.agents.test_webhooks import (
    _background_drained,  # noqa: F401  (a fixture)
    _webhook_settings,  # noqa: F401  (a fixture)
    assert_signed,
    dns,  # noqa: F401  (a fixture)
)
from tests.factories import AgentFactory, make_webhook
from tests.sessions.test_transcript_tasks import wait_until
from thinnest_site.background import background_wait_idle

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(agent):
    return make_webhook(agent=agent, url="https://example.com/hooks")


# What the dashboard's webhook pages need, as the admin would grant it.
WEBHOOK_PERMISSIONS = [
    ("agents", "view_agent"),
    ("agents", "view_webhookendpoint"),
    ("agents", "add_webhookendpoint"),
    ("agents", "change_webhookendpoint"),
    ("agents", "delete_webhookendpoint"),
]


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("staff", password="pw-staff-123", is_staff=True)
    for app_label, codename in WEBHOOK_PERMISSIONS:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return client


def page_urls(agent, endpoint, delivery) -> list[str]:
    base = f"/dashboard/agents/{agent.public_id}/webhooks/"
    return [base, f"{base}{endpoint.pk}/delete/", f"{base}deliveries/{delivery.pk}/"]


def post_urls(agent, endpoint) -> list[str]:
    base = f"/dashboard/agents/{agent.public_id}/webhooks/"
    return [base, f"{base}{endpoint.pk}/delete/", f"{base}{endpoint.pk}/test/"]


def test_webhook_pages_send_anonymous_visitors_to_the_login_page(client, agent, endpoint):
    delivery = webhook_test_send(endpoint=endpoint)
    for url in page_urls(agent, endpoint, delivery):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/dashboard/login/?next="), url
    for url in post_urls(agent, endpoint):
        response = client.post(url, {"url": "https://evil.example.com", "events": ["call.ended"]})
        assert response.status_code == 302, url
    assert list(WebhookEndpoint.objects.all()) == [endpoint]
    assert WebhookDelivery.objects.count() == 1


def test_webhook_pages_refuse_users_who_are_not_staff(client, agent, endpoint):
    delivery = webhook_test_send(endpoint=endpoint)
    client.force_login(get_user_model().objects.create_user("visitor", password="pw-visitor-1"))
    for url in page_urls(agent, endpoint, delivery):
        assert client.get(url).status_code == 403, url
    for url in post_urls(agent, endpoint):
        response = client.post(url, {"url": "https://evil.example.com", "events": ["call.ended"]})
        assert response.status_code == 403, url
    assert list(WebhookEndpoint.objects.all()) == [endpoint]
    assert WebhookDelivery.objects.count() == 1


def test_webhook_posts_without_a_csrf_token_are_refused(agent, endpoint):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(
        get_user_model().objects.create_user("s", password="pw-1234567", is_staff=True)
    )
    for url in post_urls(agent, endpoint):
        response = csrf_client.post(url, {"url": "https://x.example.com", "events": ["call.ended"]})
        assert response.status_code == 403, url
    assert list(WebhookEndpoint.objects.all()) == [endpoint]
    assert not WebhookDelivery.objects.exists()


def test_staff_add_a_webhook_and_see_its_secret(staff, agent):
    page = staff.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    assert f"/dashboard/agents/{agent.public_id}/webhooks/" in page

    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/webhooks/",
        {"url": "https://example.com/hooks", "events": ["call.started", "call.ended"]},
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get(agent=agent)
    assert endpoint.url == "https://example.com/hooks"
    assert endpoint.events == ["call.started", "call.ended"]
    page = staff.get(f"/dashboard/agents/{agent.public_id}/webhooks/").content.decode()
    assert endpoint.secret in page and "https://example.com/hooks" in page


def test_a_plain_http_url_gets_a_field_error(staff, agent, settings):
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = False
    for url in ("http://example.com/hooks", "http://127.0.0.1:8000/hooks"):
        response = staff.post(
            f"/dashboard/agents/{agent.public_id}/webhooks/", {"url": url, "events": ["call.ended"]}
        )
        assert response.status_code == 400
        assert response.context["form"].errors["url"], url
        assert "https://" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_test_event_reaches_the_receiver_and_shows_in_the_log(staff, agent, receiver, settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 600  # the retry waits; the log says when
    endpoint = make_webhook(agent=agent, url=receiver.url)
    receiver.statuses = [500]
    response = staff.post(f"/dashboard/agents/{agent.public_id}/webhooks/{endpoint.pk}/test/")
    assert response.status_code == 302
    wait_until(
        lambda: WebhookDelivery.objects.filter(attempts=1, locked_until__isnull=True).exists()
    )
    assert receiver.events() == ["webhook.test"]
    assert_signed(receiver.requests[0], endpoint.secret)

    delivery = WebhookDelivery.objects.get()
    log = staff.get(f"/dashboard/agents/{agent.public_id}/webhooks/").content.decode()
    assert "webhook.test" in log
    assert "HTTP 500" in log and "pending" in log
    detail = staff.get(
        f"/dashboard/agents/{agent.public_id}/webhooks/deliveries/{delivery.pk}/"
    ).content.decode()
    assert delivery.event_id in detail and "A test event sent from the thinnest dashboard" in detail


def test_deleting_a_webhook_asks_first_and_takes_its_log(staff, agent, endpoint):
    webhook_test_send(endpoint=endpoint)
    url = f"/dashboard/agents/{agent.public_id}/webhooks/{endpoint.pk}/delete/"
    assert "delivery log is deleted" in staff.get(url).content.decode()
    assert WebhookEndpoint.objects.exists()
    assert staff.post(url).status_code == 302
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


def test_another_agents_webhook_is_not_found_under_this_agent(staff, agent, endpoint):
    other = AgentFactory()
    delivery = webhook_test_send(endpoint=endpoint)
    base = f"/dashboard/agents/{other.public_id}/webhooks/"
    assert staff.get(f"{base}{endpoint.pk}/delete/").status_code == 404
    assert staff.post(f"{base}{endpoint.pk}/test/").status_code == 404
    assert staff.get(f"{base}deliveries/{delivery.pk}/").status_code == 404
    assert staff.post(f"{base}deliveries/{delivery.pk}/redeliver/").status_code == 404


# --- what the pages say about failures --------------------------------------------------------


def test_the_log_keeps_the_status_and_not_what_the_receiver_answered(staff, agent, receiver):
    receiver.statuses = [500]
    receiver.error_reason = "db01.internal refused"
    receiver.error_body = b"Traceback: password=hunter2 at 10.1.2.3"
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.last_status_code, delivery.last_error) == (
        500,
        "HTTP 500 Internal Server Error",
    )
    pages = staff.get(f"/dashboard/agents/{agent.public_id}/webhooks/").content.decode()
    pages += staff.get(
        f"/dashboard/agents/{agent.public_id}/webhooks/deliveries/{delivery.pk}/"
    ).content.decode()
    for leak in ("hunter2", "10.1.2.3", "Traceback", "db01"):
        assert leak not in pages


def test_the_dashboard_shows_why_an_internal_address_is_refused(staff, agent):
    response = staff.post(
        f"/dashboard/agents/{agent.public_id}/webhooks/",
        {"url": "https://169.254.169.254/latest/meta-data/", "events": ["call.ended"]},
    )
    assert response.status_code == 400
    assert "not a public address" in response.context["form"].errors["url"][0]
    assert not WebhookEndpoint.objects.exists()


# --- sending again ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_staff_send_a_failed_delivery_again(staff, agent, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [503]
    endpoint = make_webhook(agent=agent, url=receiver.url)
    delivery = webhook_test_send(endpoint=endpoint)
    assert background_wait_idle(timeout=10)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    url = f"/dashboard/agents/{agent.public_id}/webhooks/deliveries/{delivery.pk}/"
    assert "Send again" in staff.get(url).content.decode()

    response = staff.post(f"{url}redeliver/")
    assert response.status_code == 302 and response["Location"] == url
    assert background_wait_idle(timeout=10)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    first, second = receiver.requests
    assert first["body"] == second["body"]  # the same event, same id
    assert second["headers"]["Thinnest-Delivery"] == delivery.event_id
    assert_signed(second, endpoint.secret)


def test_a_delivery_still_being_sent_cannot_be_sent_again(staff, agent, endpoint):
    delivery = webhook_test_send(endpoint=endpoint)
    url = f"/dashboard/agents/{agent.public_id}/webhooks/deliveries/{delivery.pk}/"
    assert "Send again" not in staff.get(url).content.decode()
    page = staff.post(f"{url}redeliver/", follow=True).content.decode()
    assert "still being sent" in page
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_sending_again_is_refused_to_anyone_but_staff_and_without_csrf(agent, endpoint):
    delivery = webhook_test_send(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=8)
    url = f"/dashboard/agents/{agent.public_id}/webhooks/deliveries/{delivery.pk}/redeliver/"
    anonymous = Client()
    assert anonymous.post(url).status_code == 302
    visitor = Client()
    visitor.force_login(get_user_model().objects.create_user("v", password="pw-visitor-1"))
    assert visitor.post(url).status_code == 403
    no_csrf = Client(enforce_csrf_checks=True)
    no_csrf.force_login(
        get_user_model().objects.create_user("s", password="pw-1234567", is_staff=True)
    )
    assert no_csrf.post(url).status_code == 403
    assert no_csrf.get(url).status_code == 405
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 8)
