"""List registered tools, or sync the admin's rows with the code."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mcp_sse.models import Tool
from mcp_sse.sync import sync_tools


class Command(BaseCommand):
    help = "List MCP tools/resources/prompts (with their admin state), or sync them from the code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "sync"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sync":
            counts = sync_tools()
            self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
            return
        sync_tools()
        for row in Tool.objects.all():
            flags = ("enabled" if row.enabled else "disabled") + (" stale" if row.stale else "")
            self.stdout.write(f"{row.kind}\t{row.name}\t{flags}")
