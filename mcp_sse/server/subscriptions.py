"""``subscriptions/listen`` (2026-07-28): which broadcasts a listen stream asked for, and the
messages that open, feed and close it. The stream itself is the transports' business."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import access
from ..context import Caller
from ..models import Task
from ..protocol import versions
from ..protocol.errors import INVALID_PARAMS, MCPError, missing_extension
from ..protocol.jsonrpc import notification_message, result_message

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

LIST_FILTERS = {"toolsListChanged": "tools", "promptsListChanged": "prompts", "resourcesListChanged": "resources"}


@dataclass
class ListenFilter:
    """What one listen stream asked for and we agreed to send."""

    lists: set[str] = field(default_factory=set)  # "tools", "prompts", "resources"
    resources: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)  # the caller's own tasks (tasks extension)

    def acknowledged(self) -> dict[str, Any]:
        honoured: dict[str, Any] = {name: True for name, kind in LIST_FILTERS.items() if kind in self.lists}
        if self.resources:
            honoured["resourceSubscriptions"] = list(self.resources)
        if self.task_ids:
            honoured["taskIds"] = list(self.task_ids)
        return honoured


async def listen_filter(params: Mapping[str, Any], caller: Caller, dispatcher: Dispatcher) -> ListenFilter:
    """The honoured subset of a listen request's ``notifications`` (-32602 when malformed).

    List changes are honoured for every kind the server has a capability for; resource
    subscriptions for URIs that name a resource (or template match) the caller may read.
    """
    requested = params.get("notifications")
    if not isinstance(requested, Mapping):
        raise MCPError(INVALID_PARAMS, "Invalid params: subscriptions/listen needs a 'notifications' object")
    capabilities = dispatcher.capabilities()
    chosen = ListenFilter()
    for name, kind in LIST_FILTERS.items():
        value = requested.get(name)
        if value is not None and not isinstance(value, bool):
            raise MCPError(INVALID_PARAMS, f"Invalid params: notifications.{name} must be a boolean")
        if value and (capabilities.get(kind) or {}).get("listChanged"):
            chosen.lists.add(kind)
    uris = requested.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise MCPError(INVALID_PARAMS, "Invalid params: notifications.resourceSubscriptions must be a list of URIs")
        if (capabilities.get("resources") or {}).get("subscribe"):
            rules = await access.visibility()
            for uri in dict.fromkeys(uris):
                if _readable(uri, rules, caller, dispatcher):
                    chosen.resources.append(uri)
    task_ids = requested.get("taskIds")
    if task_ids is not None:
        if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
            raise MCPError(INVALID_PARAMS, "Invalid params: notifications.taskIds must be a list of task ids")
        meta = params.get("_meta")
        declared = meta.get(versions.META_CLIENT_CAPABILITIES) if isinstance(meta, Mapping) else None
        if not versions.declares_extension(declared, versions.TASKS_EXTENSION):
            raise missing_extension("Task notifications", versions.TASKS_EXTENSION)
        # Only the caller's own tasks: another caller's id is not acknowledged (nor revealed).

        own = Task.objects.filter(pk__in=task_ids[:1000], principal=caller.principal_key[:64])
        found = {pk async for pk in own.values_list("pk", flat=True)}
        chosen.task_ids = [t for t in dict.fromkeys(task_ids) if t in found]
    return chosen


def task_status(detailed: dict[str, Any], chosen: ListenFilter, subscription_id: Any) -> dict[str, Any] | None:
    """``notifications/tasks`` (the whole ``DetailedTask``) for a stream that listed the task."""
    if detailed.get("taskId") not in chosen.task_ids:
        return None
    return notification_message(
        "notifications/tasks", {**detailed, "_meta": {versions.META_SUBSCRIPTION_ID: subscription_id}}
    )


def _readable(uri: str, rules: dict[str, Any], caller: Caller, dispatcher: Dispatcher) -> bool:
    registry = dispatcher.registry
    if uri in registry.resources:
        return access.is_visible(rules, caller, "resource", uri)
    found = registry.find_template(uri)
    return found is not None and access.is_visible(rules, caller, "template", found[0].uri_template)


def list_changed(kind: Any, chosen: ListenFilter, subscription_id: Any) -> dict[str, Any] | None:
    """The notification an ``mcp.list_changed`` broadcast becomes on one listen stream, or None
    if the stream did not ask for that list."""
    if kind not in chosen.lists:
        return None
    tag = {versions.META_SUBSCRIPTION_ID: subscription_id}
    return notification_message(f"notifications/{kind}/list_changed", {"_meta": tag})


def resource_updated(uri: Any, chosen: ListenFilter, subscription_id: Any) -> dict[str, Any] | None:
    """The notification an ``mcp.resource_updated`` broadcast becomes on one listen stream."""
    if uri not in chosen.resources:
        return None
    tag = {versions.META_SUBSCRIPTION_ID: subscription_id}
    return notification_message("notifications/resources/updated", {"uri": uri, "_meta": tag})


def acknowledgement(chosen: ListenFilter, subscription_id: Any) -> dict[str, Any]:
    return notification_message(
        "notifications/subscriptions/acknowledged",
        {"notifications": chosen.acknowledged(), "_meta": {versions.META_SUBSCRIPTION_ID: subscription_id}},
    )


def listen_closed(subscription_id: Any, dispatcher: Dispatcher) -> dict[str, Any]:
    """The response that ends a listen stream gracefully (server shutdown, operator request)."""
    return result_message(
        subscription_id,
        {
            "resultType": "complete",
            "_meta": {
                versions.META_SUBSCRIPTION_ID: subscription_id,
                versions.META_SERVER_INFO: dispatcher.server_info(),
            },
        },
    )
