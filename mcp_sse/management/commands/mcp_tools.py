"""List registered tools, sync the admin's rows with the code, enable or disable entries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from mcp_sse.models import Tool
from mcp_sse.sync import LIST_OF_KIND, sync_tools, visibility_changed


class Command(BaseCommand):
    help = "List MCP tools/resources/prompts (with their admin state), sync them from the code, enable or disable them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "sync", "enable", "disable"])
        parser.add_argument("names", nargs="*", help="for enable/disable: tool or prompt names, or resource URIs")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "sync":
            counts = sync_tools()
            self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
            return
        sync_tools()
        if action == "list":
            self.stdout.write("kind\tname\tstate")
            for row in Tool.objects.all():
                flags = ("enabled" if row.enabled else "disabled") + (" stale" if row.stale else "")
                self.stdout.write(f"{row.kind}\t{row.name}\t{flags}")
            return
        if not options["names"]:
            raise CommandError(f"{action} needs at least one name")
        rows = Tool.objects.filter(name__in=options["names"])
        missing = sorted(set(options["names"]) - set(rows.values_list("name", flat=True)))
        if missing:
            raise CommandError(f"No such entry: {', '.join(missing)}")
        enabled = action == "enable"
        with transaction.atomic():
            changing = rows.exclude(enabled=enabled)
            kinds = sorted({LIST_OF_KIND.get(kind, "tools") for kind in changing.values_list("kind", flat=True)})
            count = changing.update(enabled=enabled)
            if count:
                visibility_changed(kinds)
        self.stdout.write(f"{action}d {count} entr{'y' if count == 1 else 'ies'}")
