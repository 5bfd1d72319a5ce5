"""Signals sent by mcp_sse."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a tool call, resource read or prompt get has been recorded (kwargs: entry).
call_recorded = Signal()

# Sent after access tokens were revoked, by ``AccessToken.objects.filter(...).revoke()``, the one
# revocation path (kwargs: token_ids, digests). mcp_sse's own receiver forgets the tokens and ends
# their open streams on every worker.
tokens_revoked = Signal()
