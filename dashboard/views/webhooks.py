"""An agent's webhooks: its endpoints, a test event, and the delivery log with its payloads."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agents.models import WebhookEndpoint
from agents.selectors import (
    agent_get,
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from agents.services import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_test_send,
)
from agents.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER
from dashboard.access import staff_required
from dashboard.forms import WebhookEndpointForm
from dashboard.shortcuts import or_404
from thinnest_site.errors import ApplicationError


@staff_required(perm="agents.view_webhookendpoint", post_perm="agents.add_webhookendpoint")
def webhook_list(request, public_id: str):
    """The agent's endpoints, a form to add one, and the latest deliveries."""
    agent = or_404(agent_get(public_id=public_id))
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = webhook_endpoint_create(agent=agent, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error("url", exc.message)
        else:
            messages.success(request, f"Webhook added: {endpoint.url}")
            return redirect("dashboard:webhook_list", public_id=agent.public_id)
    return render(
        request,
        "dashboard/webhook_list.html",
        {
            "agent": agent,
            "form": form,
            "endpoints": webhook_endpoint_list(agent=agent),
            "deliveries": webhook_delivery_list(agent=agent),
            "signature_header": SIGNATURE_HEADER,
            "nav": "agents",
        },
        status=400 if request.method == "POST" else 200,
    )


def _endpoint_get(public_id: str, endpoint_id: int) -> WebhookEndpoint:
    return or_404(webhook_endpoint_get(agent_public_id=public_id, endpoint_id=endpoint_id))


@staff_required(perm="agents.delete_webhookendpoint")
def webhook_delete(request, public_id: str, endpoint_id: int):
    endpoint = _endpoint_get(public_id, endpoint_id)
    if request.method == "POST":
        webhook_endpoint_delete(endpoint=endpoint)
        messages.success(request, f"Webhook {endpoint.url} deleted.")
        return redirect("dashboard:webhook_list", public_id=public_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Delete the webhook to {endpoint.url}?",
            "body": "No more events go to this URL, and its delivery log is deleted with it.",
            "action": "Delete",
            "cancel_url": reverse("dashboard:webhook_list", args=[public_id]),
            "nav": "agents",
        },
    )


@require_POST
@staff_required(perm="agents.change_webhookendpoint")
def webhook_test(request, public_id: str, endpoint_id: int):
    endpoint = _endpoint_get(public_id, endpoint_id)
    delivery = webhook_test_send(endpoint=endpoint)
    messages.success(
        request, f"Test event {delivery.event_id} queued: its result shows in the log below."
    )
    return redirect("dashboard:webhook_list", public_id=public_id)


@staff_required(perm="agents.view_webhookendpoint")
def webhook_delivery_detail(request, public_id: str, delivery_id: int):
    delivery = or_404(webhook_delivery_get(agent_public_id=public_id, delivery_id=delivery_id))
    return render(
        request,
        "dashboard/webhook_delivery.html",
        {
            "agent": delivery.endpoint.agent,
            "delivery": delivery,
            "payload_json": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
            "headers": [
                ("Content-Type", "application/json"),
                (EVENT_HEADER, delivery.event),
                (DELIVERY_HEADER, delivery.event_id),
                (SIGNATURE_HEADER, "t=<unix time of the attempt>,v1=<HMAC-SHA256 hex>"),
            ],
            "nav": "agents",
        },
    )


@require_POST
@staff_required(perm="agents.change_webhookendpoint")
def webhook_redeliver(request, public_id: str, delivery_id: int):
    delivery = or_404(webhook_delivery_get(agent_public_id=public_id, delivery_id=delivery_id))
    try:
        webhook_delivery_redeliver(delivery=delivery)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery {delivery.event_id} queued again.")
    return redirect("dashboard:webhook_delivery", public_id=public_id, delivery_id=delivery_id)
