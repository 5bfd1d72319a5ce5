from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class MCPSSEConfig(AppConfig):
    name = "mcp_sse"
    verbose_name = "MCP server"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            sync,
        )
        from .conf import reload_settings
        from .registry.discovery import autodiscover

        setting_changed.connect(reload_settings, dispatch_uid="mcp_sse.reload_settings")
        autodiscover()
        sync.connect_signals()
