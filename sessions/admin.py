from __future__ import annotations

from django.contrib import admin

from sessions.models import CallSession, TranscriptEntry


class ReadOnlyAdminMixin:
    """Calls are records of what happened: nobody edits them by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TranscriptEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TranscriptEntry
    fields = ["seq", "role", "text", "start_ms", "end_ms", "latency_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(CallSession)
class CallSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["public_id", "agent", "status", "created_at", "duration_seconds", "end_reason"]
    list_filter = ["status", "end_reason", "agent"]
    search_fields = ["public_id", "agent__name", "origin"]
    date_hierarchy = "created_at"
    list_select_related = ["agent"]
    exclude = ["token_nonce"]
    inlines = [TranscriptEntryInline]
