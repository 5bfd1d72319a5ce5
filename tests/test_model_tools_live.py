"""Model-backed tools (demo Author/Book/Loan) end to end: a real Daphne process, the official MCP
Python SDK client, tokens of real users with real Django permissions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.live import LiveDatabase, LiveServer

pytestmark = pytest.mark.live

CRUD = ("view", "add", "change", "delete")


@dataclass
class People:
    tag: str  # unique per test session: keeps rows apart from other tests sharing the database
    librarian: str  # every book/author/loan permission
    reader: str  # view only
    alice: str  # book view/add/change
    bob: str  # book view/add/change
    admin: str  # superuser, no explicit permissions


@pytest.fixture(scope="module")
def people(live_db: LiveDatabase) -> People:
    tag = uuid.uuid4().hex[:8]
    every = tuple(f"demo_library.{verb}_{model}" for model in ("author", "book", "loan") for verb in CRUD)
    books = ("demo_library.view_book", "demo_library.add_book", "demo_library.change_book")
    users: dict[str, tuple[bool, tuple[str, ...]]] = {
        "librarian": (False, every),
        "reader": (False, ("demo_library.view_book", "demo_library.view_author")),
        "alice": (False, books),
        "bob": (False, books),
        "admin": (True, ()),
    }
    tokens = {}
    for role, (superuser, perms) in users.items():
        username = f"mt-{role}-{tag}"
        live_db.create_user(username, superuser=superuser, perms=perms)
        tokens[role] = live_db.create_token(username)
    return People(tag=tag, **tokens)


@asynccontextmanager
async def connect(server: LiveServer, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(server.mcp_url, http_client=http), mode="legacy") as client:
            yield client


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def call_ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text_of(result)
    assert isinstance(result.structured_content, dict)
    assert json.loads(text_of(result)) == result.structured_content  # the same data as text
    return result.structured_content


async def call_error(client: Client, name: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, f"{name} should have failed: {result}"
    return text_of(result)


def book_title(live_db: LiveDatabase, pk: int) -> str:
    return live_db.shell(f"from demo_library.models import Book; print(Book.objects.get(pk={pk}).title)").strip()


async def new_author(client: Client, name: str) -> int:
    return int((await call_ok(client, "author_create", {"name": name, "born": 1950}))["id"])


async def test_model_tools_are_listed_with_hints_and_valid_schemas(daphne_server: LiveServer, people: People) -> None:
    async with connect(daphne_server, people.librarian) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    for prefix, actions in (("author", 5), ("book", 5), ("loan", 4)):
        names = [n for n in listed if n.startswith(f"{prefix}_")]
        assert len(names) == actions, names
    for name in ("book_list", "book_get"):
        assert listed[name].annotations is not None and listed[name].annotations.read_only_hint is True
    assert listed["book_create"].annotations.read_only_hint is False  # type: ignore[union-attr]
    assert listed["book_update"].annotations.idempotent_hint is True  # type: ignore[union-attr]
    assert listed["book_delete"].annotations.destructive_hint is True  # type: ignore[union-attr]
    create = listed["book_create"].input_schema
    assert create["required"] == ["title", "author"]
    assert "owner" not in create["properties"]  # HiddenField
    assert "id" not in create["properties"] and "author_name" not in create["properties"]  # read-only
    assert listed["book_update"].input_schema["required"] == ["id"]
    for tool in listed.values():
        if tool.name.split("_")[0] in ("author", "book", "loan"):
            Draft202012Validator.check_schema(tool.input_schema)
            Draft202012Validator.check_schema(tool.output_schema or {})


async def test_crud_round_trip(daphne_server: LiveServer, people: People, live_db: LiveDatabase) -> None:
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Ursula {people.tag}")
        created = await call_ok(
            client,
            "book_create",
            {"title": f"The Dispossessed {people.tag}", "author": author, "published": 1974, "genre": "sf"},
        )
        pk = created["id"]
        assert created["author_name"] == f"Ursula {people.tag}" and created["published"] == 1974

        fetched = await call_ok(client, "book_get", {"id": pk})
        assert fetched == created

        updated = await call_ok(client, "book_update", {"id": pk, "genre": "utopia", "published": None})
        assert updated["genre"] == "utopia" and updated["published"] is None
        assert updated["title"] == created["title"]  # partial: untouched fields stay
        assert book_title(live_db, pk) == created["title"]

        found = await call_ok(client, "book_list", {"search": f"dispossessed {people.tag}"})
        assert [item["id"] for item in found["items"]] == [pk] and found["total"] == 1

        assert await call_ok(client, "book_delete", {"id": pk}) == {"deleted": True, "id": pk}
        assert "Not found" in await call_error(client, "book_get", {"id": pk})
        assert "Not found" in await call_error(client, "book_delete", {"id": pk})
    gone = live_db.shell(f"from demo_library.models import Book; print(Book.objects.filter(pk={pk}).exists())")
    assert gone.strip() == "False"


async def test_list_filters_orders_and_pages(daphne_server: LiveServer, people: People) -> None:
    genre = f"g{people.tag}"
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Pager {people.tag}")
        for year in (1990, 2010, 2000):
            await call_ok(
                client, "book_create", {"title": f"Paged {year}", "author": author, "genre": genre, "published": year}
            )
        first = await call_ok(client, "book_list", {"genre": genre, "ordering": "-published", "limit": 2})
        assert [item["published"] for item in first["items"]] == [2010, 2000]
        assert first["total"] == 3 and first["next_offset"] == 2 and first["limit"] == 2
        rest = await call_ok(
            client, "book_list", {"genre": genre, "ordering": "-published", "limit": 2, "offset": first["next_offset"]}
        )
        assert [item["published"] for item in rest["items"]] == [1990]
        assert "next_offset" not in rest

        by_author = await call_ok(client, "book_list", {"author": author, "published": 2000})
        assert [item["title"] for item in by_author["items"]] == ["Paged 2000"]
        both_words = await call_ok(client, "book_list", {"search": f"paged pager {people.tag}", "ordering": "title"})
        assert [item["title"] for item in both_words["items"]] == ["Paged 1990", "Paged 2000", "Paged 2010"]
        assert (await call_ok(client, "book_list", {"search": f"paged nosuchword{people.tag}"}))["total"] == 0


async def test_missing_change_permission_is_a_tool_error_and_changes_nothing(
    daphne_server: LiveServer, people: People, live_db: LiveDatabase
) -> None:
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Perm {people.tag}")
    # A catalogue book (no owner): every reader can see it.
    pk = int(
        live_db.shell(
            "from demo_library.models import Book\n"
            f"print(Book.objects.create(title='Catalogue {people.tag}', author_id={author}).pk)"
        ).strip()
    )
    async with connect(daphne_server, people.reader) as client:
        assert (await call_ok(client, "book_get", {"id": pk}))["title"] == f"Catalogue {people.tag}"
        message = await call_error(client, "book_update", {"id": pk, "title": "Vandalised"})
        assert "Permission denied" in message and "demo_library.change_book" in message
        assert "demo_library.delete_book" in await call_error(client, "book_delete", {"id": pk})
        assert "demo_library.add_book" in await call_error(client, "book_create", {"title": "x", "author": author})
    assert book_title(live_db, pk) == f"Catalogue {people.tag}"

    async with connect(daphne_server, None) as anonymous:  # the demo admits anonymous callers
        assert "Permission denied" in await call_error(anonymous, "book_list", {})


async def test_queryset_hook_hides_other_users_rows(
    daphne_server: LiveServer, people: People, live_db: LiveDatabase
) -> None:
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Hook {people.tag}")
    async with connect(daphne_server, people.alice) as alice:
        private = await call_ok(alice, "book_create", {"title": f"Alice diary {people.tag}", "author": author})
        assert (await call_ok(alice, "book_list", {"author": author}))["total"] == 1
        found = (await alice.call_tool("search_books", {"query": f"diary {people.tag}"})).structured_content
        assert found is not None and [b["id"] for b in found["result"]] == [private["id"]]
    async with connect(daphne_server, people.bob) as bob:
        assert (await call_ok(bob, "book_list", {"author": author}))["total"] == 0
        assert (await call_ok(bob, "book_list", {"search": f"diary {people.tag}"}))["items"] == []
        assert "Not found" in await call_error(bob, "book_get", {"id": private["id"]})
        # The demo's function tool search_books applies the same rows as the model tools.
        searched = (await bob.call_tool("search_books", {"query": f"diary {people.tag}"})).structured_content
        assert searched == {"result": []}
        assert "Not found" in await call_error(bob, "book_update", {"id": private["id"], "title": "Bob's now"})
        shared = await call_ok(bob, "book_create", {"title": f"Bob notes {people.tag}", "author": author})
        assert (await call_ok(bob, "book_list", {"author": author}))["total"] == 1
    assert book_title(live_db, private["id"]) == f"Alice diary {people.tag}"
    async with connect(daphne_server, people.admin) as admin:  # superusers see every row
        seen = await call_ok(admin, "book_list", {"author": author, "ordering": "title"})
        assert [item["id"] for item in seen["items"]] == [private["id"], shared["id"]]


async def test_loans_belong_to_their_borrower(daphne_server: LiveServer, people: People) -> None:
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Loan {people.tag}")
        book = await call_ok(client, "book_create", {"title": f"Lent {people.tag}", "author": author})
        loan = await call_ok(client, "loan_create", {"book": book["id"]})
        assert loan["returned"] is None and loan["book_title"] == f"Lent {people.tag}"
        back = await call_ok(client, "loan_update", {"id": loan["id"], "returned": "2030-01-31"})
        assert back["returned"] == "2030-01-31" and back["borrowed"] == loan["borrowed"]
        message = await call_error(client, "loan_update", {"id": loan["id"], "returned": "not a date"})
        assert "- returned:" in message
        mine = await call_ok(client, "loan_list", {"book": book["id"]})
        assert [item["id"] for item in mine["items"]] == [loan["id"]]
    async with connect(daphne_server, people.alice) as alice:  # a librarian-owned book: hidden from alice
        message = await call_error(alice, "book_get", {"id": book["id"]})
        assert "Not found" in message


async def test_invalid_arguments_name_the_field(daphne_server: LiveServer, people: People) -> None:
    async with connect(daphne_server, people.librarian) as client:
        author = await new_author(client, f"Invalid {people.tag}")
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("book_create", {"author": author}, "title"),
            ("book_create", {"title": "t", "author": author, "published": "soon"}, "published"),
            ("book_create", {"title": "t", "author": author, "published": 99999}, "published"),
            ("book_create", {"title": "t", "author": 10**9}, "author"),
            ("book_create", {"title": "t" * 301, "author": author}, "title"),
            ("book_create", {"title": "t", "author": author, "colour": "red"}, "colour"),
            ("book_update", {"id": "seven", "title": "t"}, "id"),
            ("book_update", {"title": "t"}, "id"),
            ("book_list", {"limit": 1000}, "limit"),
            ("book_list", {"offset": -1}, "offset"),
            ("book_list", {"ordering": "isbn"}, "ordering"),
            ("book_list", {"published": "last year"}, "published"),
            ("book_list", {"owner": 1}, "owner"),
        ]
        for name, arguments, field in cases:
            message = await call_error(client, name, arguments)
            assert message.startswith("Invalid arguments") and f"- {field}:" in message, (name, arguments, message)


async def test_tools_list_shows_only_what_the_user_may_run(
    daphne_server: LiveServer, people: People, live_db: LiveDatabase
) -> None:
    """Model tools are listed only to users holding their permission (calling one anyway is a
    tool error naming the permission, see above); superusers see all."""
    async with connect(daphne_server, people.reader) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"book_list", "book_get", "author_list", "author_get"} <= names
    assert not names & {"book_create", "book_update", "book_delete", "author_create", "loan_list"}
    assert "echo" in names  # function tools need no model permission
    async with connect(daphne_server, people.admin) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"book_create", "book_update", "book_delete", "loan_list"} <= names


async def test_a_granted_permission_lists_the_tool_at_once(
    redis_url: str, server_factory: Any, live_db: LiveDatabase
) -> None:
    """Permissions are cached with the token; granting one (in another process sharing the Redis
    cache, as the admin on another worker would) forgets the cached token right away."""
    server = server_factory(redis_url=redis_url, redis_prefix=uuid.uuid4().hex[:8])
    username = f"mt-grant-{uuid.uuid4().hex[:8]}"
    live_db.create_user(username, perms=("demo_library.view_book",))
    token = live_db.create_token(username)
    async with connect(server, token) as client:
        assert "book_create" not in {t.name for t in (await client.list_tools()).tools}
    live_db.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.models import Permission\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        "u.user_permissions.add(Permission.objects.get(content_type__app_label='demo_library', codename='add_book'))\n",
        extra_env=server.redis_env,
    )
    async with connect(server, token) as client:
        assert "book_create" in {t.name for t in (await client.list_tools()).tools}
