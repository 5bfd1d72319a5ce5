#!/usr/bin/env bash
# Debian's chromium for the admin's browser tests. Installed with apt-get when missing and we
# are root; elsewhere the browser tests skip with a message (under CI they fail instead).
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium with apt-get" >&2
else
  echo "chromium is missing and cannot be installed here: browser tests will skip" >&2
fi
exit 0
