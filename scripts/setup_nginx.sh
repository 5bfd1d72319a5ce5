#!/usr/bin/env bash
# Debian's nginx for the test that serves the README's nginx configuration in front of two
# workers. Installed with apt-get when missing and we are root; elsewhere that test skips with a
# message (under CI it fails instead). Only the binary is used: the test runs its own instance.
set -uo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
    || echo "could not install nginx with apt-get" >&2
  # The package starts a system nginx on port 80: the tests do not need it.
  (command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]) && /usr/sbin/nginx -s stop 2>/dev/null
else
  echo "nginx is missing and cannot be installed here: the nginx test will skip" >&2
fi
exit 0
