"""Argument parsing shared by mcp_sse's management commands."""

from __future__ import annotations

import argparse
import copy

from django.core.management.base import CommandParser


def accept_base_options(parser: CommandParser, *subparsers: argparse.ArgumentParser) -> None:
    """Let subcommands take the command's own options (``--settings``, ``--pythonpath``,
    ``-v``, ``--traceback``, ``--skip-checks``...) after the subcommand too, as every Django
    command takes them after its arguments: ``manage.py mcp_token create alice --settings
    mysite.settings``. argparse hands everything after a subcommand to the subcommand's parser,
    which knows none of them unless told."""
    shared = [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction | argparse._VersionAction)
    ]
    for subparser in subparsers:
        for action in shared:
            clone = copy.copy(action)
            # Not given after the subcommand: keep what was given before it (or the default).
            clone.default = argparse.SUPPRESS
            subparser._add_action(clone)
