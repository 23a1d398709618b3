from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from agents import services
from agents.knowledge import services as knowledge_services
from thinnest_site.background import task_enqueue


@shared_task(
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    max_retries=None,
)
def webhook_delivery_send(self, delivery_id: int) -> None:
    attempt = services.webhook_delivery_send(delivery_id=delivery_id)
    # The service counts attempts against WEBHOOK_MAX_ATTEMPTS and computes the backoff, so the
    # delivery log shows when the next attempt is due.
    if attempt.retry_in is None:
        return
    if self.request.is_eager:
        # No broker: Celery's retry would run the next attempt at once, inline, ignoring the
        # countdown. The background runner waits it out on its timer instead.
        task_enqueue(webhook_delivery_send, (delivery_id,), countdown=attempt.retry_in)
        return
    raise self.retry(countdown=attempt.retry_in)


@shared_task
def webhook_deliveries_resume() -> int:
    return services.webhook_deliveries_resume()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def knowledge_document_index(document_id: int) -> None:
    knowledge_services.knowledge_document_index(document_id=document_id)


@shared_task
def knowledge_index_resume() -> list[int]:
    return knowledge_services.knowledge_index_resume()
