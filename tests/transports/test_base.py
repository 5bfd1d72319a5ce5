"""mcp_sse.transports.base: channel-layer messages go to methods named by their type."""

from __future__ import annotations

from mcp_sse.transports.base import handler_name


def test_handler_names_follow_channels_convention() -> None:
    assert handler_name("mcp.client.reply") == "mcp_client_reply"
    assert handler_name("mcp.list_changed") == "mcp_list_changed"


def test_only_our_own_message_types_name_a_handler() -> None:
    # A message can never name an arbitrary method of the consumer (serve, leave_all, ...).
    for message_type in ("serve", "leave.all", "http.disconnect", "", None, 3):
        assert handler_name(message_type) is None
