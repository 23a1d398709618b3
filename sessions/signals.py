from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from sessions.models import CallSession
from sessions.recordings import call_recording_delete


@receiver(post_delete, sender=CallSession, dispatch_uid="call-recording-delete")
def _call_deleted(sender, instance: CallSession, **kwargs) -> None:
    # A recording goes with its call, whether one call or a queryset is deleted.
    call_recording_delete(session=instance)
