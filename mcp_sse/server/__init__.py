"""The server layer: transport-independent serving.

``server`` (the object the consumers get through ``as_asgi(server=...)``), ``dispatcher`` (MCP
methods; the one place exceptions become JSON-RPC errors), ``eras`` (the stateful and 2026
stateless policies, chosen per request), ``requests`` (a request's life: in-flight table,
cancellation, the client's replies), ``exchange`` (one request's line to its client), ``mrtr``,
``subscriptions``, ``session`` and ``events`` (shared stores), ``routing`` (channel-layer names).
"""
