#!/usr/bin/env bash
# The end-to-end tests drive Debian's chromium through Playwright (no browser download).
# Install it with apt-get when it is missing and we are root; otherwise say why the e2e tests will skip.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "browser: installing Debian's chromium for the end-to-end tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "browser: could not install chromium; the e2e tests will skip" >&2
else
  echo "browser: chromium is not installed (apt-get install chromium); the e2e tests will skip" >&2
fi
exit 0
