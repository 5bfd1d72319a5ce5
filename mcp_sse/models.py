"""Admin-managed state: tool visibility, access tokens, the call log."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .signals import tokens_revoked

TOKEN_PREFIX = "mcp_"


def hash_token(plaintext: str) -> str:
    """sha256 hex digest; tokens are long random strings, so a plain digest is enough."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def new_token_secret() -> tuple[str, str, str]:
    """A fresh token as ``(plaintext, digest, prefix)``; only the last two are ever stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return plaintext, hash_token(plaintext), plaintext[:12]


class AccessTokenQuerySet(models.QuerySet["AccessToken"]):
    def revoke(self) -> int:
        """Revoke the active tokens in this queryset and return how many were revoked.

        The one revocation path: the admin's button and list action, ``mcp_token revoke`` and
        site code all call it. ``update()`` sends no model signal, so it sends ``tokens_revoked``,
        whose receiver drops the tokens from the auth cache and ends their open streams.
        """
        # Read, then write in one statement, with no transaction around both: on SQLite a
        # transaction that reads before it writes fails ("database is locked") when another
        # connection, such as the call log's writer, began writing in between.
        live = dict(self.filter(revoked__isnull=True).values_list("pk", "digest"))
        if not live:
            return 0
        count = AccessToken.objects.filter(pk__in=list(live), revoked__isnull=True).update(revoked=timezone.now())
        tokens_revoked.send(sender=AccessToken, token_ids=list(live), digests=list(live.values()))
        return count


class AccessTokenManager(models.Manager.from_queryset(AccessTokenQuerySet)):  # type: ignore[misc]
    def create_token(self, user: Any, name: str = "", **fields: Any) -> tuple[AccessToken, str]:
        """Create a token and return ``(row, plaintext)``; the plaintext is never stored."""
        plaintext, digest, prefix = new_token_secret()
        token = self.create(user=user, name=name, digest=digest, prefix=prefix, **fields)
        return token, plaintext


class AccessToken(models.Model):
    """A bearer token belonging to a user. Only its sha256 digest is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. 'n8n production'.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters, to recognise it.")
    created = models.DateTimeField(default=timezone.now, editable=False)
    expires = models.DateTimeField(null=True, blank=True, help_text="Leave empty for a token that does not expire.")
    revoked = models.DateTimeField(null=True, blank=True, editable=False)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Calls per minute across all workers; empty for no limit."
    )
    allowed_tools = models.ManyToManyField(
        "mcp_sse.Tool",
        blank=True,
        related_name="allowed_tokens",
        help_text="If any are chosen, this token sees only these tools.",
    )

    objects = AccessTokenManager()

    class Meta:
        verbose_name = "access token"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…)"

    def revoke(self) -> bool:
        """Revoke this token (see ``AccessTokenQuerySet.revoke``); False if it already was."""
        revoked = AccessToken.objects.filter(pk=self.pk).revoke() > 0
        self.revoked = AccessToken.objects.values_list("revoked", flat=True).get(pk=self.pk)
        return revoked

    @property
    def is_active(self) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > timezone.now())

    @property
    def state(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked is not None:
            return "revoked"
        return "active" if self.is_active else "expired"


class Tool(models.Model):
    """One row per registered tool, resource or prompt, synced from the registry."""

    class Kind(models.TextChoices):
        FUNCTION = "function", "function tool"
        MODEL = "model", "model tool"
        RESOURCE = "resource", "resource"
        TEMPLATE = "template", "resource template"
        PROMPT = "prompt", "prompt"

    name = models.CharField(max_length=255, help_text="Tool or prompt name, or resource URI.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FUNCTION)
    enabled = models.BooleanField(default=True, help_text="Disabled entries vanish from lists and are refused.")
    title_override = models.CharField(max_length=200, blank=True)
    description_override = models.TextField(blank=True)
    annotations = models.JSONField(default=dict, blank=True, editable=False)
    source = models.CharField(max_length=300, blank=True, editable=False)
    stale = models.BooleanField(default=False, editable=False, help_text="No longer registered in code.")
    allowed_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="+", help_text="If any are chosen, only members see this entry."
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP tool"
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="mcp_sse_tool_kind_name")]

    def __str__(self) -> str:
        return self.name


class CallLog(models.Model):
    """One row per tool call, resource read or prompt get."""

    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        TOOL_ERROR = "tool_error", "tool error"
        PROTOCOL_ERROR = "protocol_error", "protocol error"
        DENIED = "denied", "denied"
        CANCELLED = "cancelled", "cancelled"
        TIMED_OUT = "timed_out", "timed out"
        INPUT_REQUIRED = "input_required", "input required"

    when = models.DateTimeField(default=timezone.now, db_index=True)
    method = models.CharField(max_length=64, default="tools/call")
    tool = models.CharField(max_length=255)  # indexed by (tool, when) below
    token = models.ForeignKey(AccessToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="mcp_calls"
    )
    # OAuth callers: the client the token was issued to and the scopes it granted.
    oauth_client = models.CharField("OAuth client", max_length=200, blank=True)
    scopes = models.CharField(max_length=500, blank=True)
    session_id = models.CharField(max_length=128, blank=True)
    transport = models.CharField(max_length=32, blank=True)
    protocol_version = models.CharField(max_length=16, blank=True)
    client_name = models.CharField(max_length=200, blank=True)
    client_version = models.CharField(max_length=100, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)

    class Meta:
        verbose_name = "call log entry"
        verbose_name_plural = "call log"
        ordering = ["-when"]
        # Each index is written on every call: no single-column tool/outcome indexes (the pairs
        # serve those lookups too, and on PostgreSQL a db_index CharField gets a second LIKE index).
        indexes = [models.Index(fields=["tool", "when"]), models.Index(fields=["outcome", "when"])]

    def __str__(self) -> str:
        return f"{self.tool} {self.outcome} at {self.when:%Y-%m-%d %H:%M:%S}"


class Task(models.Model):
    """A tool call run as a task (the ``io.modelcontextprotocol/tasks`` extension, 2026-07-28).

    The row is the task's truth, shared by every worker: it is written before the client hears
    of the task, so ``tasks/get``, ``tasks/update`` and ``tasks/cancel`` work wherever they land.
    The worker running it holds a lease (``mcp_sse.server.leases``) while it works; a
    ``working`` row whose lease is gone belonged to a worker that died.
    """

    class Status(models.TextChoices):
        WORKING = "working", "working"
        INPUT_REQUIRED = "input_required", "input required"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    TERMINAL = ("completed", "failed", "cancelled")

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    # Who may see it: the caller's principal (token, user or anonymous): any other gets "unknown".
    principal = models.CharField(max_length=64, db_index=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="mcp_tasks"
    )
    token = models.ForeignKey(AccessToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    tool = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WORKING, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(default=timezone.now)
    ttl_ms = models.BigIntegerField(null=True, blank=True, help_text="Kept this long after creation; empty: no limit.")
    poll_interval_ms = models.IntegerField(default=1000)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process running it")

    class Meta:
        verbose_name = "MCP task"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class TaskInput(models.Model):
    """One question a running task asked its client (``inputRequests``), and the answer.

    A row per key, so answers from ``tasks/update`` on any worker are single-row updates that
    never race with the task asking its next question."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="inputs")
    key = models.CharField(max_length=200)
    request = models.JSONField()
    answer = models.JSONField(null=True, blank=True)
    asked = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "key"], name="mcp_sse_taskinput_task_key")]


class Dashboard(CallLog):
    """No table of its own: gives the admin's call dashboard a place in the app index."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"


def get_token_model() -> type[AccessToken]:
    """The token model (a hook for projects that swap it later without import changes)."""
    return AccessToken
