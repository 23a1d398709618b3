from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from agents.models import Agent, ApiKey
from thinnest_site.ids import public_id


def new_session_id() -> str:
    return public_id("session", 24)


class CallSession(models.Model):
    class Status(models.TextChoices):
        CREATED = "created"  # token issued, browser not connected yet
        CONNECTING = "connecting"  # token redeemed, WebRTC being negotiated
        ACTIVE = "active"  # media flowing
        ENDED = "ended"
        FAILED = "failed"  # never became active, or ended by a fault
        EXPIRED = "expired"  # token never redeemed in time

    public_id = models.CharField(max_length=40, unique=True, default=new_session_id, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="calls")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    context = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=255, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CREATED)

    # A random nonce bound into the signed token; setting token_used_at when it is redeemed is
    # what makes the token single use (services.call_token_consume).
    token_nonce = models.CharField(max_length=32, editable=False)
    token_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    # What the media worker measured: audio in/out seconds, speech segments, frame timing.
    media_stats = models.JSONField(default=dict, blank=True)
    # Conversation figures written with the transcript: turns, response latency percentiles.
    stats = models.JSONField(default=dict, blank=True)
    # Both sides, mixed, when the agent records (Agent.recording_enabled); deleted with the call.
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)

    class Outcome(models.TextChoices):
        ANSWERED = "answered"  # the caller's questions were answered
        NOT_ANSWERED = "not_answered"  # the agent did not know, and offered nothing more
        HANDED_OFF = "handed_off"  # the agent passed the caller on (its hand-off line)
        ABANDONED = "abandoned"  # the caller said nothing, or left before any answer

    # The channel name of the media worker that took the call: if that worker dies, the call is
    # found by it and closed (sessions/workers.py).
    media_worker = models.CharField(max_length=200, blank=True)

    # Written after the call by the post-call task, with the local model.
    summary = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "-created_at"], name="call_agent_created_idx"),
            models.Index(fields=["status", "-created_at"], name="call_status_created_idx"),
            models.Index(fields=["-created_at"], name="call_created_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id


class TranscriptEntry(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        AGENT = "agent"

    call = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="transcript")
    seq = models.PositiveIntegerField(help_text="Order of the turn within the call.")
    role = models.CharField(max_length=8, choices=Role.choices)
    text = models.TextField()
    start_ms = models.PositiveIntegerField(help_text="Offset from call start.")
    end_ms = models.PositiveIntegerField()
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Agent turns: end of user speech to first agent audio."
    )
    # Agent turns: the knowledge passages the reply was given ({document_id, title, chunk_id}).
    sources = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["call", "seq"]
        constraints = [
            # Makes storing a transcript idempotent: a turn is written once.
            models.UniqueConstraint(fields=["call", "seq"], name="transcript_call_seq_unique"),
        ]
        verbose_name_plural = "transcript entries"

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class MediaWorkerRecord(models.Model):
    """A media worker process as it last reported itself (every few seconds): what /healthz and
    /metrics show, and how the calls of a worker that died are told from the calls of a live one."""

    name = models.CharField(max_length=200, unique=True, help_text="Its channel name.")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    embedded = models.BooleanField(default=False, help_text="Inside the web process.")
    capacity = models.PositiveIntegerField()
    calls = models.PositiveIntegerField(default=0, help_text="Calls with media it holds.")
    draining = models.BooleanField(default=False, help_text="Shutting down: it takes no call.")
    free = models.PositiveIntegerField(default=0, help_text="Calls it would take now.")
    # Its admission estimates (voice/admission.py): base and predicted latency, CPU load.
    load = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} on {self.host} (pid {self.pid})"
