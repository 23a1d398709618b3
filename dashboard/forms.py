"""The dashboard's forms: each checks what a person typed and shows every error beside its field;
the services check the same rules again when they save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from agents.models import Agent, ApiKey, WebhookEndpoint
from agents.origins import normalize_origin
from agents.selectors import agent_list_active, agent_list_for_api_key
from agents.settings_fields import AGENT_SETTINGS_FIELDS, AGENT_SETTINGS_SECTIONS
from agents.webhooks import WebhookUrlError, webhook_url_check
from thinnest_site.errors import InvalidRequest


class AgentForm(forms.ModelForm):
    """The agent's settings. ``catalog`` (voice.catalog's, as a dict) is what this server has:
    the engine lists say which are usable here, and the model and voice fields suggest what is
    installed (a datalist per engine) while still taking a path of your own."""

    class Meta:
        model = Agent
        fields = AGENT_SETTINGS_FIELDS
        widgets = {
            "system_prompt": forms.Textarea(attrs={"rows": 6}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, catalog: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        if catalog:
            self._offer(catalog)

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The fields in the sections of the settings list, for the page to lay out in order: a
        setting added to the list shows up without a template change."""
        return [(title, [self[name] for name in names]) for title, names in AGENT_SETTINGS_SECTIONS]

    def _offer(self, catalog: dict[str, Any]) -> None:
        for name, kind, datalist_field in (
            ("stt_engine", "stt", "stt_model_path"),
            ("tts_engine", "tts", "tts_voice"),
        ):
            engines = {engine["name"]: engine for engine in catalog[kind]}
            field = self.fields[name]
            field.choices = [
                (
                    value,
                    label
                    if engines.get(value, {}).get("available", True)
                    else f"{label} (not usable on this server)",
                )
                for value, label in field.choices
            ]
            engine = engines.get(self[name].value())
            attrs = self.fields[datalist_field].widget.attrs
            attrs["list"] = f"{kind}-choices-{self[name].value()}"
            if engine and engine["choices"] and not engine["choices"][0]["value"]:
                attrs["placeholder"] = f"Empty: {engine['choices'][0]['label']}"
        self.fields["llm_model"].widget.attrs.update(
            {"list": "llm-choices", "placeholder": f"Empty: {catalog['llm'][0]['label']}"}
        )


class ApiKeyForm(forms.Form):
    """A new key, or with ``api_key`` the settings of an existing one (its kind cannot change:
    it is the key's prefix, pasted in customers' code)."""

    kind = forms.ChoiceField(choices=ApiKey.Kind.choices, widget=forms.RadioSelect)
    name = forms.CharField(max_length=120, required=False)
    agents = forms.ModelMultipleChoiceField(
        queryset=agent_list_active(),
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
        label="Rate limit (per minute)",
        required=False,
        min_value=1,
        max_value=100000,
        help_text="Start-call requests per minute. Empty = the server default.",
    )
    max_concurrent_calls = forms.IntegerField(
        label="Concurrent calls",
        required=False,
        min_value=1,
        max_value=100000,
        help_text="Calls this key may have live at once. Empty = the server default.",
    )

    def __init__(self, *args, api_key: ApiKey | None = None, **kwargs):
        self.api_key = api_key
        if api_key is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": api_key.name,
                    "agents": list(api_key.agents.all()),
                    "allowed_origins": "\n".join(api_key.allowed_origins),
                    "rate_limit_per_minute": api_key.rate_limit_per_minute,
                    "max_concurrent_calls": api_key.max_concurrent_calls,
                },
            )
        super().__init__(*args, **kwargs)
        if api_key is not None:
            del self.fields["kind"]
            self.fields["agents"].queryset = agent_list_for_api_key(api_key=api_key)

    def key_kind(self) -> str:
        return self.api_key.kind if self.api_key else self.cleaned_data.get("kind", "")

    def clean_allowed_origins(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["allowed_origins"].splitlines()]
        origins, problems = set(), []
        for line in filter(None, lines):
            try:
                origins.add(normalize_origin(line))
            except InvalidRequest as exc:
                problems.append(exc.message)
        if problems:  # every bad line at once, not the first only
            raise forms.ValidationError(problems)
        return sorted(origins)

    def clean(self) -> dict:
        # The key services check these rules too, and stop at the first; here each goes on its
        # own field, so that a form shows everything to fix at once.
        cleaned = super().clean()
        if self.key_kind() == ApiKey.Kind.PUBLIC:
            if "agents" in cleaned and not cleaned["agents"]:
                self.add_error("agents", "A public key must name at least one agent it may start.")
            if "allowed_origins" in cleaned and not cleaned["allowed_origins"]:
                self.add_error(
                    "allowed_origins", "A public key must list the web origins allowed to use it."
                )
        return cleaned


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
