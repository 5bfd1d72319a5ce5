"""The thin management commands: tokens, tools, call-log pruning (in-process, test database)."""

from __future__ import annotations

import os
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, ManagementUtility, call_command, load_command_class
from django.utils import timezone

from mcp_sse.models import AccessToken, CallLog, Tool, hash_token

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def alice() -> object:
    return get_user_model().objects.create_user("alice", password="pw")


def test_token_create_prints_the_plaintext_once_and_stores_its_digest(alice: object) -> None:
    call_command("mcp_tools", "sync", stdout=StringIO())
    out, err = run(
        "mcp_token", "create", "alice", "--name", "ci", "--days", "7", "--rate-limit", "30", "--tool", "echo"
    )
    plaintext = out.strip()
    assert plaintext.startswith("mcp_")
    assert "cannot be shown again" in err
    token = AccessToken.objects.get()
    assert token.digest == hash_token(plaintext) and token.prefix == plaintext[:12]
    assert token.name == "ci" and token.rate_limit == 30
    assert token.expires is not None and token.expires > timezone.now() + timedelta(days=6)
    assert [t.name for t in token.allowed_tools.all()] == ["echo"]
    listed, _ = run("mcp_token", "list")
    assert plaintext not in listed and f"{plaintext[:12]}…" in listed and "active" in listed


def test_token_create_refuses_unknown_users_and_tools(alice: object) -> None:
    with pytest.raises(CommandError, match="No user"):
        run("mcp_token", "create", "nobody")
    with pytest.raises(CommandError, match="No such tool"):
        run("mcp_token", "create", "alice", "--tool", "no_such_tool")
    assert not AccessToken.objects.exists()


def test_token_revoke_by_id_and_prefix(alice: object) -> None:
    first, _ = AccessToken.objects.create_token(alice, name="one")
    second, _ = AccessToken.objects.create_token(alice, name="two")
    out, _ = run("mcp_token", "revoke", str(first.pk), second.prefix)
    assert out.count("revoked") == 2
    assert AccessToken.objects.filter(revoked__isnull=False).count() == 2
    again, _ = run("mcp_token", "revoke", str(first.pk))
    assert "already revoked" in again
    listed, _ = run("mcp_token", "list", "--active")
    assert "one" not in listed and "two" not in listed
    with pytest.raises(CommandError, match="No token"):
        run("mcp_token", "revoke", "999999")


def test_tools_sync_list_enable_disable() -> None:
    out, _ = run("mcp_tools", "sync")
    assert "created" in out
    assert Tool.objects.filter(kind="function", name="lookup_account").exists()
    listed, _ = run("mcp_tools", "list")
    assert "function\techo\tenabled" in listed
    out, _ = run("mcp_tools", "disable", "echo", "add")
    assert out.strip() == "disabled 2 entries"
    assert not Tool.objects.get(kind="function", name="echo").enabled
    assert "function\techo\tdisabled" in run("mcp_tools", "list")[0]
    out, _ = run("mcp_tools", "enable", "echo")
    assert out.strip() == "enabled 1 entry"
    with pytest.raises(CommandError, match="No such entry"):
        run("mcp_tools", "disable", "no_such_tool")


def test_tools_sync_marks_vanished_rows_stale() -> None:
    run("mcp_tools", "sync")
    Tool.objects.create(kind="function", name="removed_from_code")
    out, _ = run("mcp_tools", "sync")
    assert "stale: 1" in out
    assert Tool.objects.get(name="removed_from_code").stale


def test_prune_logs_deletes_only_old_entries() -> None:
    now = timezone.now()
    CallLog.objects.bulk_create(
        [
            CallLog(tool="echo", when=now - timedelta(days=40)),
            CallLog(tool="echo", when=now - timedelta(days=31)),
            CallLog(tool="echo", when=now - timedelta(days=2)),
        ]
    )
    out, _ = run("mcp_prune_logs", "--dry-run")
    assert out.strip() == "would delete 2 entries older than 30 days"
    assert CallLog.objects.count() == 3
    out, _ = run("mcp_prune_logs")
    assert out.strip() == "deleted 2 entries older than 30 days"
    assert CallLog.objects.count() == 1
    out, _ = run("mcp_prune_logs", "--days", "1")
    assert out.strip() == "deleted 1 entries older than 1 days"
    with pytest.raises(CommandError):
        run("mcp_prune_logs", "--days", "-1")


def manage_py(*argv: str) -> None:
    """Run a command as ``manage.py`` does, from its command line (sys.argv parsing, global
    options and all), in this process and on the test database."""
    from unittest import mock

    from django.db import connections

    # run_from_argv closes every connection when the command ends, as a process about to exit
    # should; here the test's own transaction runs on that connection (PostgreSQL loses it).
    with mock.patch.object(connections, "close_all"):
        ManagementUtility(["manage.py", *argv]).execute()


def test_global_options_work_after_the_subcommand(alice: object, capsys: pytest.CaptureFixture[str]) -> None:
    settings_module = os.environ["DJANGO_SETTINGS_MODULE"]
    manage_py("mcp_token", "create", "alice", "--name", "cli", "--settings", settings_module, "-v", "0", "--traceback")
    plaintext = capsys.readouterr().out.strip()
    assert AccessToken.objects.get(name="cli").digest == hash_token(plaintext)
    manage_py("mcp_token", "list", "--settings", settings_module, "--no-color")
    assert "alice\tcli\tactive" in capsys.readouterr().out
    manage_py("mcp_token", "revoke", plaintext[:12], "--pythonpath", ".", "--settings", settings_module)
    assert "revoked" in capsys.readouterr().out
    manage_py("mcp_tools", "list", "--settings", settings_module, "-v", "2")
    assert "function\techo\tenabled" in capsys.readouterr().out
    manage_py("mcp_tools", "disable", "echo", "add", "--settings", settings_module)
    assert capsys.readouterr().out.strip() == "disabled 2 entries"


def test_global_options_before_the_subcommand_are_kept() -> None:
    parser = load_command_class("mcp_sse", "mcp_token").create_parser("manage.py", "mcp_token")
    before = parser.parse_args(["-v", "0", "--traceback", "list"])
    assert (before.verbosity, before.traceback, before.action) == (0, True, "list")
    after = parser.parse_args(["list", "-v", "2", "--settings", "x.settings", "--skip-checks"])
    assert (after.verbosity, after.settings, after.skip_checks) == (2, "x.settings", True)
    assert parser.parse_args(["list"]).verbosity == 1
    with pytest.raises(CommandError, match="unrecognized arguments: --no-such-option"):
        parser.parse_args(["list", "--no-such-option"])
