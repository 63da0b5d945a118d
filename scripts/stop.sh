#!/usr/bin/env bash
# Stop the local cluster that `make run` started.
set -euo pipefail
cd "$(dirname "$0")/.."
PIDFILE=.corral/up.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  kill "$(cat "$PIDFILE")"
  for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
  echo "stopped corral (pid $(cat "$PIDFILE"))"
else
  echo "corral is not running"
fi
rm -f "$PIDFILE"
# Containers outlive their agent by design; `make stop` ends the demo, so it removes them too.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ids=$(docker ps -aq --filter label=corral.host=local)
  if [ -n "$ids" ]; then
    docker rm -f $ids >/dev/null
    echo "removed $(echo "$ids" | wc -w) containers of host 'local'"
  fi
fi
