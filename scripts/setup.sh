#!/usr/bin/env bash
# Make this checkout ready to run and test: a Python >= 3.11 virtualenv with Corral and its tools.
# Installs the system Python with apt-get if there is none good enough (as root, on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

PYTHON=$(find_python || true)
if [ -z "$PYTHON" ]; then
  say "no Python >= 3.11 with venv found: installing Debian's python3 and python3-venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
  PYTHON=$(find_python)
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
say "installing Corral and its development tools into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
touch "$VENV/.installed"
say "ready: $("$VENV/bin/corral" version)"
