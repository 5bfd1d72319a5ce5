"""Keeping the admin's ``Tool`` rows in step with the code registry, and telling clients."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

from .access import invalidate_visibility
from .registry.base import Registry, default_registry

logger = logging.getLogger("mcp_sse")

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


def _visibility_changed(sender: Any, **kwargs: Any) -> None:
    invalidate_visibility()

    def tell_clients() -> None:
        from .notify import notify_list_changed

        try:
            for kind in ("tools", "resources", "prompts"):
                notify_list_changed(kind)
        except Exception:
            logger.exception("mcp_sse: could not send list_changed")

    transaction.on_commit(tell_clients)


def _token_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from .auth import forget_token

    forget_token(instance.digest)


def connect_signals() -> None:
    from .models import AccessToken, Tool

    post_migrate.connect(_after_migrate, dispatch_uid="mcp_sse.after_migrate")
    post_save.connect(_visibility_changed, sender=Tool, dispatch_uid="mcp_sse.tool_saved")
    post_delete.connect(_visibility_changed, sender=Tool, dispatch_uid="mcp_sse.tool_deleted")
    m2m_changed.connect(_visibility_changed, sender=Tool.allowed_groups.through, dispatch_uid="mcp_sse.tool_groups")
    post_save.connect(_token_changed, sender=AccessToken, dispatch_uid="mcp_sse.token_saved")
    post_delete.connect(_token_changed, sender=AccessToken, dispatch_uid="mcp_sse.token_deleted")
    m2m_changed.connect(
        lambda sender, instance, **kw: _token_changed(sender, instance) if isinstance(instance, AccessToken) else None,
        sender=AccessToken.allowed_tools.through,
        dispatch_uid="mcp_sse.token_tools",
        weak=False,
    )
