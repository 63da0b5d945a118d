#!/usr/bin/env bash
# Make sure Debian's chromium is installed: the web console's browser test drives it headless through
# Playwright (the Python package, from PyPI, with this system browser: nothing is downloaded by Playwright).
set -euo pipefail
say() { printf '\033[1m[chromium]\033[0m %s\n' "$*"; }
CHROMIUM=${CORRAL_CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
  say "installing Debian's chromium (for the console's browser test)"
  if [ -z "${CORRAL_APT_UPDATED:-}" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
"$CHROMIUM" --version 2>/dev/null  # (the Debian wrapper complains on stderr about nothing)
