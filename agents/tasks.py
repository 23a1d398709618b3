from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from agents import services


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
    # delivery log shows when the next attempt is due. Without a broker (tasks run eagerly, in
    # the caller's process) a retry would block the caller: the delivery stays in the log.
    if attempt.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=attempt.retry_in)


@shared_task
def webhook_deliveries_resume() -> int:
    return services.webhook_deliveries_resume()
