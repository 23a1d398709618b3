from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils.module_loading import import_string

from thinnest_site.ids import public_id


def new_agent_id() -> str:
    return public_id("agent")


# The engine choices, as callables (Django 5): a migration refers to the function, not to the list,
# so adding an engine's choice needs no migration. Each value must name an engine in voice's
# tables (voice/engines/stt, tts, turn.py); voice's system check voice.E001 says when one does not.
def stt_engine_choices() -> list[tuple[str, str]]:
    return Agent.SttEngine.choices


def tts_engine_choices() -> list[tuple[str, str]]:
    return Agent.TtsEngine.choices


def turn_detection_choices() -> list[tuple[str, str]]:
    return Agent.TurnDetection.choices


class Agent(models.Model):
    class TtsEngine(models.TextChoices):
        PIPER = "piper", "Piper"
        COQUI = "coqui", "Coqui TTS"
        ESPEAK = "espeak", "eSpeak NG"

    class SttEngine(models.TextChoices):
        WHISPER = "whisper", "Whisper (faster-whisper)"
        VOSK = "vosk", "Vosk"

    public_id = models.CharField(max_length=40, unique=True, default=new_agent_id, editable=False)
    name = models.CharField(max_length=120)
    system_prompt = models.TextField(
        "system prompt",
        blank=True,
        help_text="Instructions for the language model. {{name}} placeholders are filled from "
        "the call's context (e.g. {{company}} from context.company).",
    )
    greeting = models.TextField(
        blank=True,
        help_text="The first thing the agent says; empty = it waits for the caller to speak.",
    )
    handoff_line = models.CharField(
        "hand-off line",
        max_length=300,
        blank=True,
        help_text="What the agent adds when its knowledge does not hold the answer, e.g. "
        '"You can reach our team on 555 0142." Empty: it only says it does not know.',
    )
    language = models.CharField(
        max_length=16,
        default="en",
        help_text="Language code of the calls (en, de, ko…): the language speech-to-text "
        "listens for.",
    )

    class TurnDetection(models.TextChoices):
        SILENCE = "silence", "Silence only"
        SMART_TURN = "smart_turn", "Smart Turn (answers sooner, waits out mid-sentence pauses)"

    stt_engine = models.CharField(
        "speech-to-text engine",
        max_length=16,
        choices=stt_engine_choices,
        default=SttEngine.WHISPER,
        help_text="What turns the caller's speech into text.",
    )
    stt_model_path = models.CharField(
        "speech-to-text model",
        max_length=500,
        blank=True,
        help_text="A model directory on this server for the speech-to-text engine; empty = the "
        "server setting, else the packaged model.",
    )
    tts_engine = models.CharField(
        "text-to-speech engine",
        max_length=16,
        choices=tts_engine_choices,
        default=TtsEngine.PIPER,
        help_text="What speaks the agent's replies.",
    )
    tts_voice = models.CharField(
        "text-to-speech voice",
        max_length=120,
        blank=True,
        help_text="A voice of the engine: a Piper .onnx file, an eSpeak NG language or voice, "
        "a Coqui model directory; empty = the engine's default.",
    )
    tts_speed = models.FloatField(
        "speaking speed",
        default=1.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(2.0)],
        help_text="0.5 to 2; 1 = the voice's own pace.",
    )

    llm_model = models.CharField(
        "LLM model",
        max_length=500,
        blank=True,
        help_text="A packaged model name (qwen2.5-0.5b, smollm2) or the path of a GGUF file on the "
        "server; empty = the server setting.",
    )
    # 0.2 by measurement (bench/answers.py): against 0.7, as many right answers and twice as
    # many honest "I don't know"s to questions the business's facts cannot answer.
    llm_temperature = models.FloatField(
        "LLM temperature",
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="0 to 2: lower keeps replies steady and literal, higher makes them more varied.",
    )
    llm_max_tokens = models.PositiveIntegerField(
        "reply length (tokens)",
        default=160,
        validators=[MinValueValidator(16), MaxValueValidator(2048)],
        help_text="The most the LLM writes per reply, 16 to 2048 tokens (a token is about three "
        "quarters of an English word).",
    )

    max_duration_seconds = models.PositiveIntegerField(
        "maximum call length (seconds)",
        default=600,
        validators=[MinValueValidator(10), MaxValueValidator(43200)],
        help_text="A call is ended after this long, 10 s to 12 h.",
    )
    silence_timeout_seconds = models.PositiveIntegerField(
        "silence timeout (seconds)",
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text="A call is ended after this long without speech from the caller.",
    )

    turn_detection = models.CharField(
        "end-of-turn detection",
        max_length=16,
        choices=turn_detection_choices,
        default=TurnDetection.SMART_TURN,
        help_text="How the agent decides that the caller has finished speaking.",
    )
    turn_silence_ms = models.PositiveIntegerField(
        "end-of-turn silence (ms)",
        default=600,
        validators=[MinValueValidator(200), MaxValueValidator(3000)],
        help_text="Silence after speech that ends the caller's turn. Lower answers sooner; "
        "higher lets callers pause mid-sentence. With Smart Turn, a turn it hears as finished "
        "ends about 0.25 s into the pause; one it hears as unfinished waits three times this "
        "silence.",
    )

    recording_enabled = models.BooleanField(
        "record calls",
        default=False,
        help_text="Record both sides of each call (mixed, compressed) to the configured storage.",
    )

    is_active = models.BooleanField(
        "active", default=True, help_text="A deactivated agent refuses new calls."
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    def clean(self) -> None:
        # Whether this server can run the agent's engines, models and voices, and its prompt
        # fits the context window: the voice app knows, this app names no engine, so the check
        # is a setting (voice.checks.agent_settings_errors).
        super().clean()
        if settings.AGENT_SETTINGS_CHECK:
            errors = import_string(settings.AGENT_SETTINGS_CHECK)(self)
            if errors:
                raise ValidationError(errors)


class ApiKey(models.Model):
    """An API key. Only a SHA-256 of the key is stored; the key itself is shown once, at creation.

    Keys look like ``sk_<prefix><secret>`` / ``pk_<prefix><secret>``; ``prefix`` (the part before
    the secret) is unique and is how a key is looked up and shown afterwards.
    """

    class Kind(models.TextChoices):
        SECRET = "secret", "Secret (server side)"
        PUBLIC = "public", "Public (web pages)"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=120, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    # A public key is meant to be published in web pages, so it is kept to fill in the
    # dashboard's embed snippets. A secret key is never kept.
    public_value = models.CharField(max_length=80, blank=True, editable=False)
    agents = models.ManyToManyField(
        Agent,
        blank=True,
        related_name="api_keys",
        help_text="Agents this key may start. A public key must name at least one; "
        "a secret key with none may start any agent.",
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins (scheme://host[:port], or https://*.example.com) allowed to use a public key.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        "rate limit (per minute)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
        help_text="Start-call requests per minute; empty = the server default.",
    )
    max_concurrent_calls = models.PositiveIntegerField(
        "concurrent calls",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
        help_text="Calls this key may have live at once; empty = the server default "
        "(MAX_CONCURRENT_CALLS_PER_KEY).",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.get_kind_display()})"

    @property
    def is_public(self) -> bool:
        return self.kind == self.Kind.PUBLIC

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


def new_webhook_secret() -> str:
    return public_id("whsec", 32)


def new_webhook_event_id() -> str:
    return public_id("evt", 24)


def default_webhook_events() -> list[str]:
    return ["call.started", "call.ended"]


class WebhookEndpoint(models.Model):
    """An HTTPS URL that receives an agent's call events, signed with ``secret``.

    The secret is stored as is (not hashed like API keys): every delivery is signed with it, and
    staff read it in the dashboard to configure the receiver."""

    class Event(models.TextChoices):
        CALL_STARTED = "call.started", "call.started: the call is connected and media flows"
        CALL_ENDED = "call.ended", "call.ended: with the transcript and stats"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField("URL", max_length=500)
    secret = models.CharField(max_length=64, default=new_webhook_secret, editable=False)
    events = models.JSONField(default=default_webhook_events)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint, and what happened to its attempts.

    ``event_id`` goes out in the ``Thinnest-Delivery`` header: it stays the same across retries,
    so a receiver can drop a delivery it already processed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # every attempt failed

    TEST_EVENT = "webhook.test"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32)
    event_id = models.CharField(
        max_length=40, unique=True, default=new_webhook_event_id, editable=False
    )
    # The call's public id, not a foreign key: the log outlives a deleted call. Empty for test
    # events.
    session_id = models.CharField(max_length=40, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # A lease: an attempt in flight holds the delivery until then, so a duplicate task waits
    # instead of sending in parallel; a worker that died mid-attempt gives it up when it passes.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # One delivery per call event and endpoint, however often the event is emitted
            # (storing a transcript runs more than once per call).
            models.UniqueConstraint(
                fields=["endpoint", "event", "session_id"],
                condition=~models.Q(session_id=""),
                name="webhook_delivery_once_per_call_event",
            ),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint_idx"),
            # The sweeper's query (pending deliveries whose send was lost) reads only these rows.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"


# The knowledge models live in their package (agents/knowledge/) and belong to this app.
from agents.knowledge.models import (  # noqa: E402, F401
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
)
