"""A call's webhook events (``call.started``, ``call.ended``), with the call's document as data."""

from __future__ import annotations

from agents.services import webhook_event_emit
from sessions.models import CallSession
from sessions.selectors import call_document_build


def call_event_emit(*, session: CallSession, event: str) -> None:
    """Queue ``event`` for the webhooks of the call's agent, with the call's document as data.

    A call has one delivery per endpoint and event, however often it is emitted. ``call.ended``
    is emitted once the call's summary and outcome are written (sessions/summaries.py), which
    follows the storing of its transcript: it goes out complete. Only a worker taken for lost
    that hands its call in later stores it a second time; that refreshes a delivery no attempt
    has sent yet."""
    webhook_event_emit(
        agent_id=session.agent_id,
        event=event,
        subject_id=session.public_id,
        data=lambda: call_document_build(call=session, for_webhook=True),
    )
