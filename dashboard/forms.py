"""The dashboard's forms: each checks what a person typed and shows every error beside its field;
the services check the same rules again when they save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from agents.knowledge.models import KnowledgeDocument
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


# --- an agent's knowledge ----------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def knowledge_text_limit() -> int:
    """The most bytes a pasted text may have: the knowledge base's limit, and Django's limit on
    a form's non-file data (a larger form body is refused before any view sees it)."""
    limits = [settings.KNOWLEDGE_MAX_UPLOAD_BYTES]
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
        limits.append(settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 16 * 1024)  # the other fields
    return min(limits)


class KnowledgeUploadForm(forms.Form):
    file = forms.FileField(
        label="File",
        allow_empty_file=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": ".txt,.text,.md,.markdown,.html,.htm,.pdf"}
        ),
    )
    title = forms.CharField(
        max_length=200, required=False, help_text="Empty: the document's own title or file name."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="upload", **kwargs)
        self.fields["file"].help_text = (
            "Text (.txt), Markdown (.md), HTML (.html) or PDF (.pdf, with a text layer), up to "
            f"{_megabytes(settings.KNOWLEDGE_MAX_UPLOAD_BYTES)}. A file with the name of one "
            "already here replaces it."
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # Checked before the file is read: Django has it in a temporary file by now, not in
        # memory (FILE_UPLOAD_MAX_MEMORY_SIZE).
        if upload.size > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"{upload.name} is {_megabytes(upload.size)}; the largest file accepted is "
                f"{_megabytes(settings.KNOWLEDGE_MAX_UPLOAD_BYTES)} (KNOWLEDGE_MAX_UPLOAD_BYTES).",
                code="too_large",
            )
        return upload


class KnowledgePasteForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, help_text="Empty: its first line.")
    kind = forms.ChoiceField(
        label="Format",
        choices=[
            (KnowledgeDocument.Kind.TEXT, "Plain text"),
            (KnowledgeDocument.Kind.MARKDOWN, "Markdown (# headings)"),
        ],
    )
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), strip=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="paste", **kwargs)
        self.fields[
            "text"
        ].help_text = (
            f"Up to {_megabytes(knowledge_text_limit())}; upload a longer text as a .txt file."
        )

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Paste the text to add.")
        size = len(text.encode())
        if size > knowledge_text_limit():
            raise forms.ValidationError(
                f"The text is {_megabytes(size)}; up to {_megabytes(knowledge_text_limit())} can "
                "be pasted. Upload it as a .txt file instead.",
                code="too_large",
            )
        return text


class KnowledgeFaqForm(forms.Form):
    question = forms.CharField(max_length=500)
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="faq", **kwargs)
