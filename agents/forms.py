from __future__ import annotations

from django import forms
from django.conf import settings

from agents.models import Agent, ApiKey, WebhookEndpoint
from agents.webhooks import WebhookUrlError, webhook_url_check

AGENT_FIELDS = [
    "name",
    "system_prompt",
    "greeting",
    "language",
    "stt_engine",
    "stt_model_path",
    "tts_engine",
    "tts_voice",
    "tts_speed",
    "llm_model",
    "llm_temperature",
    "llm_max_tokens",
    "max_duration_seconds",
    "silence_timeout_seconds",
    "turn_detection",
    "turn_silence_ms",
    "recording_enabled",
]


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = AGENT_FIELDS
        widgets = {
            "system_prompt": forms.Textarea(attrs={"rows": 6}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
        }


class ApiKeyForm(forms.Form):
    kind = forms.ChoiceField(choices=ApiKey.Kind.choices, widget=forms.RadioSelect)
    name = forms.CharField(max_length=120, required=False)
    agents = forms.ModelMultipleChoiceField(
        queryset=Agent.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A public key must name at least one; a secret key with none may start any.",
    )
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://www.example.com"}),
        help_text="One origin per line (scheme://host[:port], or https://*.example.com). "
        "Required for a public key.",
    )
    rate_limit_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=100000, help_text="Empty = the server default."
    )
    max_concurrent_calls = forms.IntegerField(
        label="Concurrent calls",
        required=False,
        min_value=1,
        max_value=100000,
        help_text="Calls this key may have live at once. Empty = the server default.",
    )

    def clean_allowed_origins(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data["allowed_origins"].splitlines()
            if line.strip()
        ]


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        # A text input: the dashboard styles those (and the field validates the URL anyway).
        widget=forms.TextInput(attrs={"placeholder": "https://example.com/hooks/thinnest"}),
        help_text="Receives a signed JSON POST for each event. https:// only.",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        initial=WebhookEndpoint.Event.values,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_url(self) -> str:
        try:
            return webhook_url_check(
                self.cleaned_data["url"],
                allow_http_localhost=settings.WEBHOOK_ALLOW_HTTP_LOCALHOST,
            )
        except WebhookUrlError as exc:
            raise forms.ValidationError(str(exc)) from exc
