"""Keeping the admin's ``Tool`` rows in step with the code registry, and telling clients."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

from .conf import mcp_settings
from .registry.base import Registry, default_registry
from .signals import tokens_revoked

logger = logging.getLogger("mcp_sse")

# The admin's visibility rules, cached by mcp_sse.access and dropped here when Tool rows change.
VISIBILITY_KEY = "mcp_sse:visibility"


def invalidate_visibility() -> None:
    caches[mcp_settings.CACHE_ALIAS].delete(VISIBILITY_KEY)

_synced = threading.Event()


def registry_rows(registry: Registry) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for tool in registry.tools.values():
        rows[(tool.kind, tool.name)] = {"annotations": tool.annotations or {}, "source": tool.source[:300]}
    for resource in registry.resources.values():
        rows[("resource", resource.uri)] = {"annotations": resource.annotations or {}, "source": resource.source[:300]}
    for template in registry.templates.values():
        rows[("template", template.uri_template)] = {"annotations": {}, "source": template.source[:300]}
    for prompt in registry.prompts.values():
        rows[("prompt", prompt.name)] = {"annotations": {}, "source": prompt.source[:300]}
    return rows


def sync_tools(registry: Registry | None = None) -> dict[str, int]:
    """Create rows for new registrations, refresh known ones, mark vanished ones stale.

    Stale rows are kept (with their call history); they come back to life if the code does.
    """
    from .models import Tool

    wanted = registry_rows(registry or default_registry)
    created = updated = stale = 0
    with transaction.atomic():
        existing = {(t.kind, t.name): t for t in Tool.objects.select_for_update()}
        for key, fields in wanted.items():
            row = existing.get(key)
            if row is None:
                Tool.objects.create(kind=key[0], name=key[1], **fields)
                created += 1
            elif row.stale or row.annotations != fields["annotations"] or row.source != fields["source"]:
                Tool.objects.filter(pk=row.pk).update(stale=False, **fields)
                updated += 1
        for key, row in existing.items():
            if key not in wanted and not row.stale:
                Tool.objects.filter(pk=row.pk).update(stale=True)
                stale += 1
    invalidate_visibility()
    _synced.set()
    return {"created": created, "updated": updated, "stale": stale}


def ensure_synced() -> None:
    """Sync once per process, on first use (never at import time)."""
    if _synced.is_set():
        return
    try:
        sync_tools()
    except Exception:
        logger.exception("mcp_sse: could not sync tools with the database (has migrate run?)")
        _synced.set()


def _after_migrate(sender: Any, app_config: Any = None, using: str = "default", **kwargs: Any) -> None:
    if app_config is not None and app_config.label == "mcp_sse":
        try:
            sync_tools()
        except Exception:
            logger.exception("mcp_sse: could not sync tools after migrate")


# Which list a Tool row belongs to, for list_changed notifications.
LIST_OF_KIND = {
    "function": "tools",
    "model": "tools",
    "resource": "resources",
    "template": "resources",
    "prompt": "prompts",
}
ALL_LISTS = ("tools", "resources", "prompts")

# Lists changed by this thread and not yet announced. Many saves in one transaction (a bulk
# action, the changelist's inline edits) give one notification per list, sent after commit.
_pending = threading.local()


def _announce_pending() -> None:
    from .notify import notify_list_changed

    # The cache is cleared again after commit: a reader that refilled it from the database
    # between the save and the commit would otherwise keep the old rules.
    invalidate_visibility()
    kinds: set[str] = getattr(_pending, "kinds", set())
    _pending.kinds = set()
    for kind in sorted(kinds):
        try:
            notify_list_changed(kind)
        except Exception:
            logger.exception("mcp_sse: could not send %s list_changed", kind)


def visibility_changed(kinds: tuple[str, ...] | list[str] = ALL_LISTS) -> None:
    """Clear the visibility cache and tell connected clients, once the transaction commits.

    Call it after changing ``Tool`` rows without model signals (``QuerySet.update``).
    """
    invalidate_visibility()
    pending: set[str] = getattr(_pending, "kinds", set())
    pending.update(kinds)
    _pending.kinds = pending
    # One callback per change; the first to run announces everything pending, the rest find
    # nothing. A rolled-back change only leaves a spare notification for the next commit.
    transaction.on_commit(_announce_pending)


def _visibility_changed(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    if kwargs.get("action", "post_").startswith("pre_"):
        return
    kind = LIST_OF_KIND.get(getattr(instance, "kind", ""))
    visibility_changed((kind,) if kind else ALL_LISTS)


def forget_tokens(digests: list[str]) -> None:
    """Drop tokens from the auth cache now and again after commit (same race as above)."""
    from .auth import forget_token

    def forget() -> None:
        for digest in digests:
            forget_token(digest)

    forget()
    transaction.on_commit(forget)


def end_token_streams(token_ids: list[int]) -> None:
    """After commit, end every open stream authenticated with these tokens, on every worker."""
    from .notify import notify_token_revoked

    _end_streams_after_commit(token_ids, notify_token_revoked)


def end_credential_streams(credentials: list[str]) -> None:
    """After commit, end every open stream opened with these OAuth credentials, on every worker."""
    from .notify import notify_credential_revoked

    _end_streams_after_commit(credentials, notify_credential_revoked)


def _end_streams_after_commit(keys: list[Any], notify: Any) -> None:
    def end_streams() -> None:
        for key in keys:
            try:
                notify(key)
            except Exception:
                logger.exception("mcp_sse: could not end the streams of a revoked token")

    transaction.on_commit(end_streams)


def _dot_token_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A django-oauth-toolkit token was saved or deleted (DOT revokes by deleting): forget its
    cached validation now and after commit; a deleted one's open streams end."""
    from .auth.dot import dot_credential, forget_dot_token

    checksum = getattr(instance, "token_checksum", "")
    if checksum:
        forget_dot_token(checksum)
        transaction.on_commit(lambda: forget_dot_token(checksum))
    if kwargs.get("signal") is post_delete and instance.pk is not None:
        end_credential_streams([dot_credential(instance.pk)])


def _tokens_revoked(sender: Any, token_ids: list[int], digests: list[str], **kwargs: Any) -> None:
    forget_tokens(digests)
    end_token_streams(token_ids)


def _token_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_tokens([instance.digest])
    # A deleted token, or one saved with ``revoked`` set by code that bypassed ``revoke()``.
    if getattr(instance, "pk", None) is not None and (
        kwargs.get("signal") is post_delete or getattr(instance, "revoked", None) is not None
    ):
        end_token_streams([instance.pk])


def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A user's activity flag and groups are cached with their tokens: forget those tokens."""
    from .models import AccessToken

    if kwargs.get("action", "post_").startswith("pre_"):
        return
    user_model = get_user_model()
    if isinstance(instance, user_model):
        user_ids = [instance.pk]
    else:  # groups edited from the group's side: pk_set holds the users
        user_ids = list(kwargs.get("pk_set") or [])
    if user_ids:
        forget_tokens(list(AccessToken.objects.filter(user_id__in=user_ids).values_list("digest", flat=True)))


def _group_permissions_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A group's permissions changed: forget the tokens of its members."""
    from django.contrib.auth.models import Group

    from .models import AccessToken

    if kwargs.get("action", "post_").startswith("pre_"):
        return
    groups = [instance.pk] if isinstance(instance, Group) else list(kwargs.get("pk_set") or [])
    digests = AccessToken.objects.filter(user__groups__in=groups).values_list("digest", flat=True)
    forget_tokens(list(digests))


def connect_signals() -> None:
    from .models import AccessToken, Tool

    post_migrate.connect(_after_migrate, dispatch_uid="mcp_sse.after_migrate")
    post_save.connect(_visibility_changed, sender=Tool, dispatch_uid="mcp_sse.tool_saved")
    post_delete.connect(_visibility_changed, sender=Tool, dispatch_uid="mcp_sse.tool_deleted")
    m2m_changed.connect(_visibility_changed, sender=Tool.allowed_groups.through, dispatch_uid="mcp_sse.tool_groups")
    post_save.connect(_token_changed, sender=AccessToken, dispatch_uid="mcp_sse.token_saved")
    post_delete.connect(_token_changed, sender=AccessToken, dispatch_uid="mcp_sse.token_deleted")
    tokens_revoked.connect(_tokens_revoked, sender=AccessToken, dispatch_uid="mcp_sse.tokens_revoked")
    user_model = get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="mcp_sse.user_saved")
    groups = getattr(user_model, "groups", None)
    if groups is not None:
        m2m_changed.connect(_user_changed, sender=groups.through, dispatch_uid="mcp_sse.user_groups")
    # Permissions are cached with tokens too (model tools are listed only to users who may run them).
    user_permissions = getattr(user_model, "user_permissions", None)
    if user_permissions is not None:
        m2m_changed.connect(_user_changed, sender=user_permissions.through, dispatch_uid="mcp_sse.user_perms")
    from django.apps import apps
    from django.contrib.auth.models import Group

    if apps.is_installed("oauth2_provider"):
        from oauth2_provider.models import get_access_token_model

        dot_token = get_access_token_model()
        post_save.connect(_dot_token_changed, sender=dot_token, dispatch_uid="mcp_sse.dot_token_saved")
        post_delete.connect(_dot_token_changed, sender=dot_token, dispatch_uid="mcp_sse.dot_token_deleted")
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid="mcp_sse.group_perms"
    )
    m2m_changed.connect(
        lambda sender, instance, **kw: _token_changed(sender, instance) if isinstance(instance, AccessToken) else None,
        sender=AccessToken.allowed_tools.through,
        dispatch_uid="mcp_sse.token_tools",
        weak=False,
    )
