"""Load demo data, ensure a demo admin user, print a fresh demo access token (development only)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from demo_library.models import Author, Book
from mcp_sse.models import AccessToken

DEMO_TOKEN_NAME = "demo (development only)"

CATALOGUE = [
    ("Ursula K. Le Guin", 1929, [("A Wizard of Earthsea", 1968, "fantasy"), ("The Dispossessed", 1974, "sf")]),
    (
        "Italo Calvino",
        1923,
        [("Invisible Cities", 1972, "fiction"), ("If on a winter's night a traveler", 1979, "fiction")],
    ),
    ("Octavia E. Butler", 1947, [("Kindred", 1979, "sf"), ("Parable of the Sower", 1993, "sf")]),
    ("Jorge Luis Borges", 1899, [("Ficciones", 1944, "fiction"), ("The Aleph", 1949, "fiction")]),
]


class Command(BaseCommand):
    help = "Demo set-up: data, an admin user (admin/admin) and a new demo token. Development only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_setup is for development only (DEBUG is off)")
        for name, born, books in CATALOGUE:
            author, _ = Author.objects.get_or_create(name=name, defaults={"born": born})
            for title, year, genre in books:
                Book.objects.get_or_create(title=title, author=author, defaults={"published": year, "genre": genre})
        user_model = get_user_model()
        admin = user_model._default_manager.filter(username="admin").first()
        if admin is None:
            admin = user_model._default_manager.create_superuser("admin", "admin@example.com", "admin")
        AccessToken.objects.filter(name=DEMO_TOKEN_NAME).revoke()  # the one revocation path: ends old streams too
        _, plaintext = AccessToken.objects.create_token(admin, name=DEMO_TOKEN_NAME)
        self.stdout.write("=" * 72)
        self.stdout.write("DEMO ONLY - never use these outside development:")
        self.stdout.write("  admin login:   admin / admin   (http://HOST:PORT/admin/)")
        self.stdout.write(f"  access token:  {plaintext}")
        self.stdout.write("  MCP endpoint:  http://HOST:PORT/mcp  (legacy SSE: /mcp/sse)")
        self.stdout.write("=" * 72)
