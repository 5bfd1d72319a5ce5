"""Delete call log entries older than N days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from mcp_sse.models import CallLog


class Command(BaseCommand):
    help = "Delete MCP call log entries older than --days (default 30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=options["days"])
        deleted, _ = CallLog.objects.filter(when__lt=cutoff).delete()
        self.stdout.write(f"deleted {deleted} entries older than {options['days']} days")
