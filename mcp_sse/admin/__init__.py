"""The Django admin as the control plane: tools, access tokens, call log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from .models import AccessToken, CallLog, Tool


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "stale", "source")
    list_editable = ("enabled",)
    list_filter = ("kind", "enabled", "stale")
    search_fields = ("name", "source")
    readonly_fields = ("kind", "name", "annotations", "source", "stale", "updated")
    filter_horizontal = ("allowed_groups",)
    actions = ["enable", "disable"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from the code registry

    @admin.action(description="Enable selected entries")
    def enable(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            row.enabled = True
            row.save(update_fields=["enabled", "updated"])

    @admin.action(description="Disable selected entries")
    def disable(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            row.enabled = False
            row.save(update_fields=["enabled", "updated"])


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "created", "expires", "revoked", "last_used")
    list_filter = ("revoked",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created", "revoked", "last_used")
    filter_horizontal = ("allowed_tools",)
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: AccessToken, form: Any, change: bool) -> None:
        if not change:
            created, plaintext = AccessToken.objects.create_token(
                obj.user, name=obj.name, expires=obj.expires, rate_limit=obj.rate_limit
            )
            obj.pk = created.pk
            obj.digest = created.digest
            obj.prefix = created.prefix
            obj.created = created.created
            obj._state.adding = False
            messages.warning(request, f"New token (shown only once, copy it now): {plaintext}")
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset.filter(revoked__isnull=True):
            token.revoked = timezone.now()
            token.save(update_fields=["revoked"])


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    list_display = ("when", "tool", "outcome", "user", "token", "transport", "protocol_version", "duration_ms")
    list_filter = ("outcome", "transport", "tool")
    search_fields = ("tool", "error", "session_id", "request_id")
    date_hierarchy = "when"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
