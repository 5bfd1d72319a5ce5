"""Channels consumers: the only code that knows HTTP, status codes and SSE framing."""
