"""Delete call log entries older than N days (what CALL_LOG_RETENTION_DAYS does by itself)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcp_sse.audit import prune_call_log


class Command(BaseCommand):
    help = "Delete MCP call log entries older than --days (default 30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="keep this many days of entries")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days < 0:
            raise CommandError("--days must not be negative")
        if options["dry_run"]:
            self.stdout.write(f"would delete {prune_call_log(days, dry_run=True)} entries older than {days} days")
            return
        self.stdout.write(f"deleted {prune_call_log(days)} entries older than {days} days")
