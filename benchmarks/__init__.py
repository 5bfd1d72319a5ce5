"""Load benchmarks of mcp_sse: see benchmarks/README.md (``make bench``)."""
