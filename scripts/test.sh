#!/usr/bin/env bash
# Every check, in the order a failure is cheapest to read: lint, types, layers, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
B="$VENV/bin"
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "Docker Engine and test images"
scripts/ensure-docker.sh

step "PostgreSQL"
scripts/ensure-postgres.sh

step "Chromium (the console's browser test)"
scripts/ensure-chromium.sh

step "ruff (lint and format)"
"$B/ruff" check src tests bench
"$B/ruff" format --check src tests bench

step "mypy --strict src"
"$B/mypy" --strict src

step "layer contract (import-linter)"
"$B/lint-imports"

step "pytest (unit, property, integration, end-to-end)"
# pytest exits 5 when it collects nothing: with -e that fails the run, as it should.
# Two workers (CORRAL_TEST_WORKERS): most integration tests wait on processes they started; tests that
# share the Docker Engine, the firewall or the browser stay on one worker (tests/conftest.py).
"$B/pytest" -q -p no:cacheprovider -n "${CORRAL_TEST_WORKERS:-2}" --dist loadgroup "$@"
