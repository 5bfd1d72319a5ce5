"""Manage access tokens from a shell: create (plaintext printed once), list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from mcp_sse.management.parsing import accept_base_options
from mcp_sse.models import AccessToken, Tool


class Command(BaseCommand):
    help = "Create, list or revoke MCP access tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print its plaintext (the only time it is shown)")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for")
        create.add_argument("--days", type=int, default=None, help="expire after this many days")
        create.add_argument("--rate-limit", type=int, default=None, help="calls per minute across all workers")
        create.add_argument("--tool", action="append", default=[], help="restrict to this tool (repeatable)")
        listing = sub.add_parser("list", help="list tokens (never their plaintext)")
        listing.add_argument("--user", default=None, help="only this user's tokens")
        listing.add_argument("--active", action="store_true", help="only tokens that are neither expired nor revoked")
        revoke = sub.add_parser("revoke", help="revoke tokens by id or prefix")
        revoke.add_argument("token", nargs="+", help="token id or the prefix shown by `list`")
        accept_base_options(parser, create, listing, revoke)

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['action']}")(options)

    def handle_create(self, options: dict[str, Any]) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["username"])
        except user_model.DoesNotExist:
            raise CommandError(f"No user {options['username']!r}") from None
        if options["days"] is not None and options["days"] <= 0:
            raise CommandError("--days must be positive")
        if options["rate_limit"] is not None and options["rate_limit"] <= 0:
            raise CommandError("--rate-limit must be positive")
        tools = list(Tool.objects.filter(name__in=options["tool"], kind__in=("function", "model")))
        missing = sorted(set(options["tool"]) - {t.name for t in tools})
        if missing:
            raise CommandError(f"No such tool: {', '.join(missing)} (see `manage.py mcp_tools list`)")
        expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
        with transaction.atomic():
            token, plaintext = AccessToken.objects.create_token(
                user, name=options["name"], expires=expires, rate_limit=options["rate_limit"]
            )
            if tools:
                token.allowed_tools.set(tools)
        self.stderr.write(f"token {token.pk} for {user} (copy it now: it is not stored and cannot be shown again)")
        self.stdout.write(plaintext)

    def handle_list(self, options: dict[str, Any]) -> None:
        tokens = AccessToken.objects.select_related("user").prefetch_related("allowed_tools")
        if options["user"]:
            tokens = tokens.filter(user__username=options["user"])
        self.stdout.write("id\tprefix\tuser\tname\tstate\texpires\tlast used\ttools")
        for token in tokens:
            if options["active"] and not token.is_active:
                continue
            tools = ",".join(t.name for t in token.allowed_tools.all()) or "all"
            self.stdout.write(
                "\t".join(
                    [
                        str(token.pk),
                        f"{token.prefix}…",
                        str(token.user),
                        token.name,
                        token.state,
                        token.expires.isoformat() if token.expires else "never",
                        token.last_used.isoformat() if token.last_used else "never",
                        tools,
                    ]
                )
            )

    def handle_revoke(self, options: dict[str, Any]) -> None:
        for ref in options["token"]:
            ref = ref.rstrip("…")
            found = AccessToken.objects.filter(pk=int(ref)) if ref.isdigit() else AccessToken.objects.filter(prefix=ref)
            target = found.first()
            if target is None:
                raise CommandError(f"No token {ref!r}")
            if target.revoke():
                self.stdout.write(f"revoked {target}")
            else:
                self.stdout.write(f"already revoked: {target}")
