"""Delete call log entries older than N days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from mcp_sse.models import CallLog


class Command(BaseCommand):
    help = "Delete MCP call log entries older than --days (default 30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="keep this many days of entries")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days < 0:
            raise CommandError("--days must not be negative")
        old = CallLog.objects.filter(when__lt=timezone.now() - timedelta(days=days))
        if options["dry_run"]:
            self.stdout.write(f"would delete {old.count()} entries older than {days} days")
            return
        deleted, _ = old.delete()
        self.stdout.write(f"deleted {deleted} entries older than {days} days")
