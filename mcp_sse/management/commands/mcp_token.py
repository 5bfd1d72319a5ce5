"""Manage access tokens: create, list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from mcp_sse.models import AccessToken, Tool


class Command(BaseCommand):
    help = "Create, list or revoke MCP access tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print its plaintext once")
        create.add_argument("username")
        create.add_argument("--name", default="")
        create.add_argument("--days", type=int, default=None, help="expire after this many days")
        create.add_argument("--rate-limit", type=int, default=None, help="calls per minute")
        create.add_argument("--tool", action="append", default=[], help="restrict to this tool (repeatable)")
        sub.add_parser("list", help="list tokens")
        revoke = sub.add_parser("revoke", help="revoke a token by id or prefix")
        revoke.add_argument("token")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get_by_natural_key(options["username"])
            except user_model.DoesNotExist:
                raise CommandError(f"No user {options['username']!r}") from None
            expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
            token, plaintext = AccessToken.objects.create_token(
                user, name=options["name"], expires=expires, rate_limit=options["rate_limit"]
            )
            if options["tool"]:
                token.allowed_tools.set(Tool.objects.filter(name__in=options["tool"]))
            self.stdout.write(plaintext)
        elif action == "list":
            for token in AccessToken.objects.select_related("user"):
                state = "active" if token.is_active else ("revoked" if token.revoked else "expired")
                self.stdout.write(f"{token.pk}\t{token.prefix}…\t{token.user}\t{token.name}\t{state}")
        else:
            ref = options["token"]
            found = AccessToken.objects.filter(pk=int(ref)) if ref.isdigit() else AccessToken.objects.filter(prefix=ref)
            target = found.first()
            if target is None:
                raise CommandError(f"No token {ref!r}")
            target.revoked = timezone.now()
            target.save(update_fields=["revoked"])
            self.stdout.write(f"revoked {target}")
