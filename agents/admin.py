from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from agents.models import Agent, ApiKey, WebhookDelivery, WebhookEndpoint
from agents.services import api_key_create, api_key_revoke, api_key_rules_check, api_key_update
from agents.settings_fields import AGENT_SETTINGS_SECTIONS
from agents.webhooks import WebhookUrlError, webhook_url_check
from thinnest_site.errors import InvalidRequest


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "language", "tts_engine", "is_active", "updated_at"]
    list_filter = ["is_active", "tts_engine", "stt_engine", "language"]
    search_fields = ["name", "public_id"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["public_id", "is_active"]}),
        *((title, {"fields": list(names)}) for title, names in AGENT_SETTINGS_SECTIONS),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]


class ApiKeyForm(forms.ModelForm):
    origins_text = forms.CharField(
        label="Allowed origins",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: https://shop.example.com or https://*.example.com. "
        "Required for public keys.",
    )

    class Meta:
        model = ApiKey
        fields = ["kind", "name", "agents", "rate_limit_per_minute", "max_concurrent_calls"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["origins_text"].initial = "\n".join(self.instance.allowed_origins)
            self.fields["kind"].disabled = True

    def clean(self):
        cleaned = super().clean()
        origins = [
            line.strip() for line in cleaned.get("origins_text", "").splitlines() if line.strip()
        ]
        try:
            cleaned["allowed_origins"] = api_key_rules_check(
                kind=cleaned.get("kind") or self.instance.kind,
                agents=list(cleaned.get("agents") or []),
                allowed_origins=origins,
            )
        except InvalidRequest as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the service; only a hash and the prefix are kept. The full key is
    shown once, on the response to the add form itself: never in a message, since messages may
    travel in a cookie (signed, not encrypted) or wait in the session table."""

    form = ApiKeyForm
    list_display = ["prefix", "name", "kind", "created_at", "last_used_at", "status"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    filter_horizontal = ["agents"]
    actions = ["revoke_keys"]

    def get_fields(self, request, obj=None):
        fields = [
            "kind",
            "name",
            "agents",
            "origins_text",
            "rate_limit_per_minute",
            "max_concurrent_calls",
        ]
        return (["prefix", *fields, "created_at", "last_used_at", "revoked_at"]) if obj else fields

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        return "revoked" if obj.is_revoked else "active"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            api_key_update(
                api_key=obj,
                name=data["name"],
                agents=list(data["agents"]),
                allowed_origins=data["allowed_origins"],
                rate_limit_per_minute=data["rate_limit_per_minute"],
                max_concurrent_calls=data["max_concurrent_calls"],
            )
            return
        api_key, raw_key = api_key_create(
            kind=data["kind"],
            name=data["name"],
            agents=list(data["agents"]),
            allowed_origins=data["allowed_origins"],
            rate_limit_per_minute=data["rate_limit_per_minute"],
            max_concurrent_calls=data["max_concurrent_calls"],
        )
        obj.pk = api_key.pk
        obj.prefix = api_key.prefix
        # For response_add, on this request's object only.
        obj._raw_key = raw_key

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(obj, "_raw_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/agents/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "api_key": obj,
                "raw_key": raw_key,
                "title": "Key created",
            },
        )
        add_never_cache_headers(response)
        return response

    def save_related(self, request, form, formsets, change):
        # The services already saved the key's agents.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["event", "event_id", "status", "attempts", "last_status_code", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    ordering = ["-created_at"]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["agent", "url", "events", "is_active"]

    def clean_url(self) -> str:
        # The same rule as the dashboard and the service: https only, except a local receiver.
        try:
            return webhook_url_check(
                self.cleaned_data["url"],
                allow_http_localhost=settings.WEBHOOK_ALLOW_HTTP_LOCALHOST,
            )
        except WebhookUrlError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "agent", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "agent__name", "agent__public_id"]
    readonly_fields = ["secret", "created_at"]
    fields = ["agent", "url", "events", "is_active", "secret", "created_at"]
    inlines = [WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, read only: deliveries are made and updated by the sending task."""

    list_display = ["event_id", "event", "endpoint", "status", "attempts", "last_status_code"]
    list_filter = ["status", "event"]
    search_fields = ["event_id", "session_id", "endpoint__url"]
    list_select_related = ["endpoint"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
