"""Autodiscovery of ``mcp_tools`` modules in installed apps (like ``admin.py``)."""

from __future__ import annotations

from django.utils.module_loading import autodiscover_modules

from ..conf import mcp_settings


def autodiscover() -> None:
    autodiscover_modules(mcp_settings.AUTODISCOVER_MODULE)
