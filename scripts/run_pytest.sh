#!/usr/bin/env bash
# Runs the pytest suite. Under CI=true the database tests use PostgreSQL and the multi-process
# tests Redis (a missing service fails the run); elsewhere they use SQLite and skip what needs
# a missing service.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
  export MCP_TEST_REDIS_URL="${MCP_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
