"""The MCP wire protocol in pure Python: JSON-RPC 2.0, error codes, revisions, SSE framing.

Nothing here imports Django, Channels, pydantic or DRF (import-linter checks it), so the rules
of the protocol can be tested and reused without a web stack.
"""
