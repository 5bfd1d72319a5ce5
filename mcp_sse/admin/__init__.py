"""The Django admin as the control plane: tools, access tokens, the call log and a dashboard."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.cache import never_cache

from ..auth.oauth import oauth_enabled
from ..models import AccessToken, AccessTokenQuerySet, CallLog, Dashboard, Task, Tool, new_token_secret
from ..sync import LIST_OF_KIND, visibility_changed
from . import charts, one_time, stats

STATS_HOURS = 24  # the window of the tool list's figures


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def _short_time(value: Any) -> str:
    """A list column's date and time, to the minute, in the site's time zone."""
    return "—" if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


# -- tools --------------------------------------------------------------------------------


class ToolChangeList(ChangeList):
    """Attaches last-24-h call figures to the rows of the page (two queries for the page)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Evaluating the page's queryset fills its result cache: the rows rendered (and the
        # inline-edit formset built from the same queryset) are these objects.
        rows = list(self.result_list)
        keys = [(stats.METHOD_OF_KIND.get(row.kind, "tools/call"), row.name) for row in rows]
        figures = stats.tool_stats(stats.since_hours(STATS_HOURS), keys, percentiles=(95,)) if rows else {}
        for row, key in zip(rows, keys, strict=True):
            row.call_stats = figures.get(key, stats.ToolStats())


def _declared_texts(obj: Tool) -> dict[str, str | None]:
    """The title and description the code registers for a Tool row (empty when stale)."""
    from ..registry.base import default_registry

    entry: Any
    if obj.kind in ("function", "model"):
        entry = default_registry.tools.get(obj.name)
    elif obj.kind == "resource":
        entry = default_registry.resources.get(obj.name)
    elif obj.kind == "template":
        entry = default_registry.templates.get(obj.name)
    else:
        entry = default_registry.prompts.get(obj.name)
    if entry is None:
        return {}
    return {"title": entry.title, "description": entry.description or None}


def _stats_of(obj: Tool) -> stats.ToolStats:
    found = getattr(obj, "call_stats", None)
    if found is None:  # the change form: one tool
        key = (stats.METHOD_OF_KIND.get(obj.kind, "tools/call"), obj.name)
        found = stats.tool_stats(stats.since_hours(STATS_HOURS), [key]).get(key, stats.ToolStats())
        obj.call_stats = found  # type: ignore[attr-defined]
    return found


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ("name", "kind_short", "enabled", "calls_24h", "error_rate_24h", "p95_24h", "groups", "stale_badge")
    list_display_links = ("name",)
    list_editable = ("enabled",)
    list_filter = ("kind", "enabled", "stale")
    search_fields = ("name", "source", "title_override", "description_override")
    readonly_fields = (
        "kind",
        "name",
        "source",
        "stale",
        "updated",
        "annotations_pretty",
        "calls_24h",
        "error_rate_24h",
        "p50_24h",
        "p95_24h",
        "call_log_link",
    )
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "stale", "source", "updated")}),
        ("Shown to clients", {"fields": ("title_override", "description_override", "annotations_pretty")}),
        ("Who may see it", {"fields": ("allowed_groups",)}),
        (
            f"Last {STATS_HOURS} hours",
            {"fields": ("calls_24h", "error_rate_24h", "p50_24h", "p95_24h", "call_log_link")},
        ),
    )
    filter_horizontal = ("allowed_groups",)
    actions = ["enable", "disable"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from the code registry

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        declared = _declared_texts(obj) if obj is not None else {}
        # What clients see when the override is blank: the code's own title and description.
        for field_name, text in (
            ("title_override", declared.get("title")),
            ("description_override", declared.get("description")),
        ):
            formfield = form.base_fields.get(field_name)
            if formfield is None:
                continue
            formfield.widget.attrs["placeholder"] = text or "(none declared in code)"
            formfield.help_text = (
                f"Blank: clients see the code's {field_name.split('_')[0]} (shown greyed here)."
                if text
                else "Blank: clients see none."
            )
        return form

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tool]:
        return super().get_queryset(request).prefetch_related("allowed_groups")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ToolChangeList

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "stats_hours": STATS_HOURS,
            "dashboard_url": reverse("admin:mcp_sse_dashboard_changelist"),
        }
        # No transaction around the whole view: Django saves the inline "enabled" edits in one
        # transaction of its own (so clients get one list_changed), which writes first. Opening
        # one here made the changelist's reads (rows, call figures, the formset) part of it, and
        # on SQLite a transaction that reads and then writes fails at once with "database is
        # locked" when another connection, such as the call log's writer, began writing between
        # the two: the save gave a 500 page whenever a call-log batch landed during it.
        return super().changelist_view(request, extra_context)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Tool], enabled: bool) -> None:
        # Read, then write in one statement, with no transaction around both (see changelist_view:
        # on SQLite, reading before writing in a transaction fails when another writer comes between).
        changing = dict(queryset.exclude(enabled=enabled).values_list("pk", "kind"))
        count = (
            Tool.objects.filter(pk__in=list(changing))
            .exclude(enabled=enabled)
            .update(enabled=enabled, updated=timezone.now())
        )
        if count:
            # update() sends no signals. Kinds of rows someone else changed meanwhile at most add
            # a spare notification.
            visibility_changed(sorted({LIST_OF_KIND.get(kind, "tools") for kind in changing.values()}))
        verb = "Enabled" if enabled else "Disabled"
        self.message_user(request, f"{verb} {count} entr{'y' if count == 1 else 'ies'}.", messages.SUCCESS)

    @admin.action(description="Enable selected entries", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Tool]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected entries", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Tool]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.display(description="kind", ordering="kind")
    def kind_short(self, obj: Tool) -> str:
        return obj.kind  # "function", "model", ...: the list's narrowest honest label

    @admin.display(description="stale", ordering="stale", empty_value="")
    def stale_badge(self, obj: Tool) -> SafeString:
        # Only the exception is marked: a healthy row shows nothing (a red cross read as an error).
        if obj.stale:
            return format_html('<span class="mcp-badge mcp-stale" title="{}">stale</span>', "no longer in the code")
        return SafeString("")

    @admin.display(description="calls")
    def calls_24h(self, obj: Tool) -> int:
        return _stats_of(obj).calls

    @admin.display(description="error rate")
    def error_rate_24h(self, obj: Tool) -> str:
        return _rate(_stats_of(obj).error_rate)

    @admin.display(description="p50")
    def p50_24h(self, obj: Tool) -> str:
        return _ms(_stats_of(obj).p50_ms)

    @admin.display(description="p95")
    def p95_24h(self, obj: Tool) -> str:
        return _ms(_stats_of(obj).p95_ms)

    @admin.display(description="groups")
    def groups(self, obj: Tool) -> str:
        names = [g.name for g in obj.allowed_groups.all()]
        return ", ".join(names) if names else "everyone"

    @admin.display(description="annotations")
    def annotations_pretty(self, obj: Tool) -> SafeString:
        return _pretty_json(obj.annotations)

    @admin.display(description="call log")
    def call_log_link(self, obj: Tool) -> SafeString:
        url = reverse("admin:mcp_sse_calllog_changelist") + f"?tool={obj.name}"
        return format_html('<a href="{}">Calls of {}</a>', url, obj.name)


# -- tokens -------------------------------------------------------------------------------


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked__isnull=True).exclude(expires__lte=now)
        if self.value() == "expired":
            return queryset.filter(revoked__isnull=True, expires__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked__isnull=False)
        return queryset


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name_display",
        "user",
        "state_badge",
        "created_short",
        "expires_short",
        "last_used_short",
        "rate_limit",
        "tool_limit",
    )
    list_filter = (TokenStateFilter, "created", "expires")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("prefix_display", "state_badge", "created", "revoked", "last_used", "call_log_link")
    filter_horizontal = ("allowed_tools",)
    actions = ["revoke"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = ("user", "name", "expires", "rate_limit")
        if obj is None:
            return ((None, {"fields": main}), ("Limit to tools", {"fields": ("allowed_tools",)}))
        return (
            (None, {"fields": (*main, "prefix_display", "state_badge")}),
            ("Limit to tools", {"fields": ("allowed_tools",)}),
            ("History", {"fields": ("created", "last_used", "revoked", "call_log_link")}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*self.readonly_fields, "user") if obj is not None else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessToken]:
        return super().get_queryset(request).prefetch_related("allowed_tools")

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "allowed_tools":
            kwargs["queryset"] = Tool.objects.filter(kind__in=("function", "model"), stale=False)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A revoked token is history: shown read-only, never edited (nor revoked twice).
        if obj is not None and obj.revoked is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: AccessToken, form: Any, change: bool) -> None:
        if not change:
            plaintext, obj.digest, obj.prefix = new_token_secret()
            # Kept on the request only, until response_add hands it to the page that shows it.
            request._mcp_new_token = plaintext  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: AccessToken, post_url_continue: str | None = None) -> Any:
        plaintext = getattr(request, "_mcp_new_token", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        # POST/redirect/GET: a reload of the page that shows the token cannot create another.
        created_url = reverse("admin:mcp_sse_accesstoken_created", args=[obj.pk])
        response = HttpResponseRedirect(created_url)
        one_time.stash(request, response, str(obj.pk), plaintext, created_url)
        return response

    def created_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        token = get_object_or_404(AccessToken, pk=object_id)
        if not self.has_view_permission(request, token):
            raise Http404
        created_url = reverse("admin:mcp_sse_accesstoken_created", args=[token.pk])
        plaintext = one_time.take(request, str(token.pk))
        change_url = reverse("admin:mcp_sse_accesstoken_change", args=[token.pk])
        if plaintext is None:
            self.message_user(
                request,
                f"The value of {token} was shown once and cannot be shown again. "
                "If it was not copied, revoke it and create another.",
                messages.WARNING,
            )
            response: HttpResponse = HttpResponseRedirect(change_url)
        else:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Copy your new token",
                "token": token,
                "plaintext": plaintext,
                "change_url": change_url,
                "list_url": reverse("admin:mcp_sse_accesstoken_changelist"),
                "token_header": _token_header(),
            }
            response = TemplateResponse(request, "admin/mcp_sse/accesstoken/token_created.html", context)
            # The page holds a secret: no cache may keep it, and the back button must not show it.
            response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
            response["Pragma"] = "no-cache"
        one_time.forget(response, str(token.pk), created_url)
        return response

    def get_urls(self) -> list[URLPattern]:
        revoke = path(
            "<path:object_id>/revoke/",
            self.admin_site.admin_view(never_cache(self.revoke_view)),
            name="mcp_sse_accesstoken_revoke",
        )
        created = path(
            "<path:object_id>/created/",
            self.admin_site.admin_view(never_cache(self.created_view)),
            name="mcp_sse_accesstoken_created",
        )
        return [revoke, created, *super().get_urls()]

    def _confirm_revoke(self, request: HttpRequest, tokens: list[AccessToken], *, action: bool) -> TemplateResponse:
        """The page that asks before revoking: it cannot be undone, and clients are cut off."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Revoke token" if len(tokens) == 1 else f"Revoke {len(tokens)} tokens",
            "tokens": tokens,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "list_url": reverse("admin:mcp_sse_accesstoken_changelist"),
        }
        return TemplateResponse(request, "admin/mcp_sse/accesstoken/revoke_confirmation.html", context)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        token = get_object_or_404(AccessToken, pk=object_id)
        change_url = reverse("admin:mcp_sse_accesstoken_change", args=[token.pk])
        if token.revoked is not None:
            if not self.has_view_permission(request, token):
                raise Http404
            self.message_user(request, f"{token} was already revoked.", messages.INFO)
            return HttpResponseRedirect(change_url)
        if not self.has_change_permission(request, token):
            raise Http404
        if request.method != "POST":
            return self._confirm_revoke(request, [token], action=False)
        if token.revoke():
            self.message_user(request, f"Revoked {token}. Clients using it are refused from now on.", messages.SUCCESS)
        else:
            self.message_user(request, f"{token} was already revoked.", messages.INFO)
        return HttpResponseRedirect(change_url)

    @admin.action(description="Revoke selected tokens…", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: AccessTokenQuerySet) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            pending = list(queryset.filter(revoked__isnull=True).select_related("user"))
            if not pending:
                self.message_user(request, "The selected tokens were already revoked.", messages.INFO)
                return None
            return self._confirm_revoke(request, pending, action=True)
        count = queryset.revoke()
        self.message_user(request, f"Revoked {count} token{'' if count == 1 else 's'}.", messages.SUCCESS)
        return None

    @admin.display(description="token", ordering="name")
    def name_display(self, obj: AccessToken) -> SafeString:
        return format_html('<span class="mcp-name">{}</span>', str(obj))

    @admin.display(description="created", ordering="created")
    def created_short(self, obj: AccessToken) -> str:
        return _short_time(obj.created)

    @admin.display(description="expires", ordering="expires")
    def expires_short(self, obj: AccessToken) -> str:
        return _short_time(obj.expires)

    @admin.display(description="last used", ordering="last_used")
    def last_used_short(self, obj: AccessToken) -> str:
        return _short_time(obj.last_used)

    @admin.display(description="state")
    def state_badge(self, obj: AccessToken) -> SafeString:
        return format_html('<span class="mcp-badge mcp-state-{}">{}</span>', obj.state, obj.state)

    @admin.display(description="prefix")
    def prefix_display(self, obj: AccessToken) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="tools")
    def tool_limit(self, obj: AccessToken) -> str:
        names = [t.name for t in obj.allowed_tools.all()]
        return ", ".join(names) if names else "all"

    @admin.display(description="call log")
    def call_log_link(self, obj: AccessToken) -> SafeString:
        url = reverse("admin:mcp_sse_calllog_changelist") + f"?token__id__exact={obj.pk}"
        return format_html('<a href="{}">Calls with this token</a>', url)


def _token_header() -> str:
    from ..conf import mcp_settings

    return str(mcp_settings.TOKEN_HEADER or "")


# -- call log -----------------------------------------------------------------------------


def _pretty_json(value: Any) -> SafeString:
    if value is None:
        return format_html('<span class="mcp-muted">{}</span>', "—")
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre class="mcp-json">{}</pre>', text)


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: arguments come from clients and may be hostile."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = (
    "when",
    "method",
    "tool",
    "outcome",
    "duration_ms",
    "user",
    "token",
    "session_id",
    "transport",
    "protocol_version",
    "client_name",
    "client_version",
    "remote_addr",
    "request_id",
    "arguments",
    "result",
    "error",
)


def call_log_csv_rows(queryset: QuerySet[CallLog]) -> Iterator[list[Any]]:
    yield list(CSV_COLUMNS)
    for entry in queryset.select_related("user", "token").iterator(chunk_size=2000):
        yield [
            _csv_cell(v)
            for v in (
                entry.when.isoformat(),
                entry.method,
                entry.tool,
                entry.outcome,
                entry.duration_ms,
                entry.user.get_username() if entry.user else "",
                f"{entry.token.prefix}… {entry.token.name}".strip() if entry.token else "",
                entry.session_id,
                entry.transport,
                entry.protocol_version,
                entry.client_name,
                entry.client_version,
                entry.remote_addr,
                entry.request_id,
                json.dumps(entry.arguments, ensure_ascii=False, default=str),
                json.dumps(entry.result, ensure_ascii=False, default=str) if entry.result is not None else "",
                entry.error,
            )
        ]


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    list_display = (
        "when_short",
        "tool_name",
        "outcome_badge",
        "duration",
        "user",
        "token_name",
        "oauth_grant",
        "client",
        "transport_name",
    )

    def get_list_display(self, request: HttpRequest) -> Any:
        # The OAuth column only where OAuth is on: without it, it would be empty and push the
        # list past 1280 px.
        shown = super().get_list_display(request)
        return shown if oauth_enabled() else tuple(name for name in shown if name != "oauth_grant")
    list_filter = (
        "outcome",
        "method",
        "tool",
        ("token", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "transport",
        "protocol_version",
    )
    search_fields = (
        "tool",
        "error",
        "session_id",
        "request_id",
        "client_name",
        "remote_addr",
        "user__username",
        "token__name",
        "token__prefix",
        "oauth_client",
    )
    date_hierarchy = "when"
    list_select_related = ("user", "token")
    show_full_result_count = False  # no second COUNT(*) over a large log
    actions = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("when", "method", "tool", "outcome_badge", "duration", "error")}),
        ("Caller", {"fields": ("user", "token", "oauth_client", "scopes", "remote_addr", "client")}),
        ("Connection", {"fields": ("transport", "protocol_version", "session_id", "request_id")}),
        ("Arguments", {"fields": ("arguments_pretty",)}),
        ("Result", {"fields": ("result_pretty",)}),
    )
    readonly_fields = (
        "when",
        "method",
        "tool",
        "outcome_badge",
        "duration",
        "error",
        "user",
        "token",
        "oauth_client",
        "scopes",
        "remote_addr",
        "client",
        "transport",
        "protocol_version",
        "session_id",
        "request_id",
        "arguments_pretty",
        "result_pretty",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an audit trail: pruned by age with `manage.py mcp_prune_logs`

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "dashboard_url": reverse("admin:mcp_sse_dashboard_changelist")}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Export selected entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[CallLog]) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in call_log_csv_rows(queryset)), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="mcp-call-log-{stamp}.csv"'
        return response

    @admin.display(description="when", ordering="when")
    def when_short(self, obj: CallLog) -> str:
        return timezone.localtime(obj.when).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="tool", ordering="tool")
    def tool_name(self, obj: CallLog) -> SafeString:
        return format_html('<span class="mcp-name">{}</span>', obj.tool)

    @admin.display(description="transport", ordering="transport")
    def transport_name(self, obj: CallLog) -> SafeString:
        return format_html('<span class="mcp-name">{}</span>', obj.transport or "—")

    @admin.display(description="token", ordering="token__name")
    def token_name(self, obj: CallLog) -> SafeString:
        if obj.token is None:
            return format_html("{}", "—")
        return format_html('<span class="mcp-name">{}</span>', obj.token.name or f"{obj.token.prefix}…")

    @admin.display(description="OAuth client / scopes", ordering="oauth_client")
    def oauth_grant(self, obj: CallLog) -> SafeString:
        if not obj.oauth_client:
            return format_html("{}", "—")
        return format_html('<span class="mcp-name">{}</span> <small>{}</small>', obj.oauth_client, obj.scopes)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj: CallLog) -> SafeString:
        return format_html('<span class="mcp-badge mcp-outcome-{}">{}</span>', obj.outcome, obj.get_outcome_display())

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: CallLog) -> str:
        return _ms(obj.duration_ms)

    @admin.display(description="client")
    def client(self, obj: CallLog) -> SafeString:
        return format_html('<span class="mcp-name">{}</span>', f"{obj.client_name} {obj.client_version}".strip() or "—")

    @admin.display(description="arguments")
    def arguments_pretty(self, obj: CallLog) -> SafeString:
        return _pretty_json(obj.arguments)

    @admin.display(description="result")
    def result_pretty(self, obj: CallLog) -> SafeString:
        return _pretty_json(obj.result)


# -- tasks --------------------------------------------------------------------------------


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Tasks (2026-07-28 tasks extension): read-only, with a cancel action."""

    list_display = ("tool", "status_badge", "caller", "age", "updated_short", "worker")
    list_filter = ("status", "tool")
    search_fields = ("id", "tool", "user__username", "token__name")
    list_select_related = ("user", "token")
    actions = ["cancel_tasks"]
    readonly_fields = (
        "id",
        "tool",
        "status_badge",
        "status_message",
        "caller",
        "created",
        "updated",
        "ttl_ms",
        "poll_interval_ms",
        "cancel_requested",
        "worker",
        "result_pretty",
        "error_pretty",
        "call_log_link",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks come from clients' calls

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list's cancel action needs "change"; the task itself is never edited.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Cancel selected tasks", permissions=["change"])
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        from asgiref.sync import async_to_sync

        from ..server.tasks import cancel_task

        count = sum(1 for task_id in queryset.values_list("pk", flat=True) if async_to_sync(cancel_task)(task_id))
        self.message_user(
            request,
            f"Asked {count} task{'' if count == 1 else 's'} to stop; the worker running each stops it within a second.",
            messages.SUCCESS,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Task) -> SafeString:
        label = "cancelling" if obj.cancel_requested and not obj.is_terminal else obj.status
        return format_html('<span class="mcp-badge mcp-task-{}">{}</span>', obj.status, label)

    @admin.display(description="caller")
    def caller(self, obj: Task) -> str:
        if obj.token is not None:
            return f"{obj.user} ({obj.token.name or obj.token.prefix})"
        return str(obj.user) if obj.user is not None else "anonymous"

    @admin.display(description="age", ordering="created")
    def age(self, obj: Task) -> str:
        seconds = int((timezone.now() - obj.created).total_seconds())
        if seconds < 120:
            return f"{seconds} s"
        return f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"

    @admin.display(description="updated", ordering="updated")
    def updated_short(self, obj: Task) -> str:
        return _short_time(obj.updated)

    @admin.display(description="result")
    def result_pretty(self, obj: Task) -> SafeString:
        return _pretty_json(obj.result)

    @admin.display(description="error")
    def error_pretty(self, obj: Task) -> SafeString:
        return _pretty_json(obj.error)

    @admin.display(description="call log")
    def call_log_link(self, obj: Task) -> SafeString:
        url = reverse("admin:mcp_sse_calllog_changelist") + f"?tool={quote(obj.tool)}"
        return format_html('<a href="{}">Calls of {}</a>', url, obj.tool)


# -- dashboard ----------------------------------------------------------------------------

# Ranges offered on the dashboard: hours -> (label, bucket unit, label format).
RANGES = {
    1: ("last hour", "minute", "%H:%M"),
    24: ("last 24 hours", "hour", "%H:%M"),
    168: ("last 7 days", "hour", "%a %H:%M"),
}
TOP_TOOLS = 15


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """Charts of the call log. Anyone who may view the call log may view the dashboard."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.is_staff and user.has_perm("mcp_sse.view_calllog"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.dashboard_view)
        return [path("", view, name="mcp_sse_dashboard_changelist")]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        try:
            hours = int(request.GET.get("hours", "24"))
        except ValueError:
            hours = 24
        if hours not in RANGES:
            hours = 24
        range_label, unit, time_format = RANGES[hours]
        now = timezone.now()
        since = now - timedelta(hours=hours)
        per_tool, unknown = stats.split_unknown(stats.tool_stats(since))
        busiest = sorted(per_tool.items(), key=lambda item: (-item[1].calls, item[0][1]))
        top = busiest[:TOP_TOOLS]
        # Ordered by errors, each bar the tool's own error rate: a tool failing 22 of 22 calls is
        # a full bar however busy the others are.
        failing = sorted(
            ((key, s) for key, s in per_tool.items() if s.errors),
            key=lambda item: (-item[1].errors, -(item[1].error_rate or 0), item[0][1]),
        )[:TOP_TOOLS]
        buckets = stats.timeline(since, now, unit)
        points = [charts.TimePoint(timezone.localtime(b.start), b.calls - b.errors, b.errors) for b in buckets]

        def tool_label(key: tuple[str, str]) -> str:
            method, name = key
            return name if method == "tools/call" else f"{name} ({method.split('/')[0]})"

        calls_rows = [(tool_label(key), [float(s.calls)]) for key, s in top]
        errors_rows = [(tool_label(key), [100.0 * (s.error_rate or 0)]) for key, s in failing]
        errors_texts = [[f"{s.errors} of {s.calls} ({_rate(s.error_rate)})"] for _, s in failing]
        latency_rows = [(tool_label(key), [s.p50_ms, s.p95_ms]) for key, s in top]
        calllog_url = reverse("admin:mcp_sse_calllog_changelist")
        table = [
            {
                "label": tool_label(key),
                "stats": s,
                "error_rate": _rate(s.error_rate),
                "p50": _ms(s.p50_ms),
                "p95": _ms(s.p95_ms),
                "mean": _ms(s.mean_ms),
                "slowest": _ms(s.max_ms),
                "url": f"{calllog_url}?tool={quote(key[1])}&method={quote(key[0])}",
            }
            for key, s in busiest
        ]
        if unknown.names:
            # Names clients invented are not tools: one row for all of them, not one each.
            s = unknown.stats
            table.append(
                {
                    "label": f"unknown tool ({len(unknown.names)} name{'' if len(unknown.names) == 1 else 's'})",
                    "title": ", ".join(sorted(unknown.names)[:50]),
                    "stats": s,
                    "error_rate": _rate(s.error_rate),
                    "p50": "—",
                    "p95": "—",
                    "mean": _ms(s.mean_ms),
                    "slowest": _ms(s.max_ms),
                    "url": f"{calllog_url}?tool__in={quote(','.join(sorted(unknown.names)[:50]))}",
                    "unknown": True,
                }
            )
        totals = stats.overall(since)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "MCP dashboard",
            "hours": hours,
            "ranges": [(h, label) for h, (label, _, _) in RANGES.items()],
            "range_label": range_label,
            "totals": totals,
            "error_rate": _rate(totals["error_rate"]),
            "p95": _ms(totals["p95_ms"]),
            "calls_chart": charts.calls_over_time(
                points, label=f"Calls per {unit}, {range_label}", time_format=time_format
            ),
            "calls_per_tool_chart": charts.horizontal_bars(
                calls_rows, [charts.Series("calls", "mcp-ok")], label=f"Calls per tool, {range_label}"
            ),
            "errors_chart": charts.horizontal_bars(
                errors_rows,
                [charts.Series("error rate", "mcp-err")],
                label=f"Errors per tool, most errors first, {range_label}",
                peak=100.0,
                texts=errors_texts,
                empty_text="No errors in this period.",
            ),
            "latency_chart": charts.horizontal_bars(
                latency_rows,
                [charts.Series("p50", "mcp-p50"), charts.Series("p95", "mcp-p95")],
                label=f"Latency per tool (p50 and p95), {range_label}",
                unit=" ms",
            ),
            "table": table,
            "calllog_url": calllog_url,
            "tools_url": reverse("admin:mcp_sse_tool_changelist"),
        }
        return TemplateResponse(request, "admin/mcp_sse/dashboard.html", context)
