"""mcp_sse: a Model Context Protocol server for Django sites, on Channels.

Register tools in ``<app>/mcp_tools.py`` with :mod:`mcp_sse.tools`; wrap your ASGI app with
:func:`mcp_sse.asgi.with_mcp`; manage tokens, visibility and the call log in the admin.
"""

__version__ = "0.1.0"
