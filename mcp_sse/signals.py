"""Signals sent by mcp_sse."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a tool call, resource read or prompt get has been recorded (kwargs: entry).
call_recorded = Signal()
