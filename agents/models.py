from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now

from thinnest_site.ids import public_id


def new_agent_id() -> str:
    return public_id("agent")


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
        blank=True,
        help_text="Instructions for the agent. {{name}} placeholders are filled from the call context.",
    )
    greeting = models.TextField(blank=True, help_text="The first thing the agent says.")
    language = models.CharField(max_length=16, default="en")

    class TurnDetection(models.TextChoices):
        SILENCE = "silence", "Silence only"
        SMART_TURN = "smart_turn", "Smart Turn (waits out mid-sentence pauses)"

    stt_engine = models.CharField(
        max_length=16, choices=SttEngine.choices, default=SttEngine.WHISPER
    )
    stt_model_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Model directory for the STT engine on the server (Vosk); empty = the server setting.",
    )
    tts_engine = models.CharField(max_length=16, choices=TtsEngine.choices, default=TtsEngine.PIPER)
    tts_voice = models.CharField(
        max_length=120, blank=True, help_text="Engine voice; empty = default."
    )
    tts_speed = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.5), MaxValueValidator(2.0)]
    )

    llm_model = models.CharField(
        max_length=500,
        blank=True,
        help_text="A packaged model name (qwen2.5-0.5b, smollm2) or the path of a GGUF file on the "
        "server; empty = the server setting.",
    )
    llm_temperature = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    llm_max_tokens = models.PositiveIntegerField(
        default=160, validators=[MinValueValidator(16), MaxValueValidator(2048)]
    )

    max_duration_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(10), MaxValueValidator(43200)]
    )
    silence_timeout_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(3600)]
    )

    turn_detection = models.CharField(
        max_length=16,
        choices=TurnDetection.choices,
        default=TurnDetection.SILENCE,
        help_text="How the agent decides that the caller has finished speaking.",
    )
    turn_silence_ms = models.PositiveIntegerField(
        "end-of-turn silence (ms)",
        default=600,
        validators=[MinValueValidator(200), MaxValueValidator(3000)],
        help_text="Silence after speech that ends the caller's turn. Lower answers sooner; "
        "higher lets callers pause mid-sentence.",
    )

    recording_enabled = models.BooleanField(
        default=False,
        help_text="Record both sides of each call (mixed, compressed) to the configured storage.",
    )

    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


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
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
        help_text="Start-call requests per minute; empty = the server default.",
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
