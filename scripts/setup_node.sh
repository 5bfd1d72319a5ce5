#!/usr/bin/env bash
# Installs Node 22 (the npm "node" package), the official MCP conformance suite and the
# TypeScript SDK into .cache/node (git-ignored). Idempotent: does nothing when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/node
stamp="$dir/.installed-v2"
if [ -f "$stamp" ] && [ -x "$dir/node_modules/node/bin/node" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then echo "npm is missing: cannot install Node 22 for the conformance suite" >&2; exit 1; fi
  echo "npm is missing: conformance and TypeScript SDK tests will skip" >&2
  exit 0
fi
mkdir -p "$dir"
cp scripts/node-package.json "$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
"$dir/node_modules/node/bin/node" --version
touch "$stamp"
