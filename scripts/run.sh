#!/usr/bin/env bash
# `make run`: start a local Corral (master on SQLite + agents) in the background, submit the example
# jobs, and show them moving through their states. Re-running restarts nothing that is healthy and
# replaces the previous run's example jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DATA=${CORRAL_DATA_DIR:-.corral}
PORT=${CORRAL_PORT:-8080}
URL="http://127.0.0.1:$PORT"
export CORRAL_MASTER=$URL
export COLUMNS=${COLUMNS:-160}
C="$VENV/bin/corral"
PY="$VENV/bin/python"
PIDFILE="$DATA/up.pid"
say() { printf '\n\033[1m[run]\033[0m %s\n' "$*"; }
ready() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2)' "$URL" >/dev/null 2>&1; }

mkdir -p "$DATA"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && ready; then
  say "corral is already running (pid $(cat "$PIDFILE")) at $URL"
else
  if ready; then
    echo "something else answers on $URL; set CORRAL_PORT to use another port" >&2
    exit 1
  fi
  say "starting corral: a master on SQLite ($DATA/corral.db) and 3 agents, logging to $DATA/up.log"
  nohup "$C" up --data-dir "$DATA" --port "$PORT" --agents 3 --log-level info >"$DATA/up.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 150); do ready && break; sleep 0.2; done
  if ! ready; then
    echo "corral did not become ready; the end of its log:" >&2
    tail -n 30 "$DATA/up.log" >&2
    exit 1
  fi
fi

previous=$("$C" --json job ls --label corral-example=true | "$PY" -c 'import json,sys; print(" ".join(j["id"] for j in json.load(sys.stdin)))')
for id in $previous; do
  "$C" job kill "$id" >/dev/null && echo "killed the previous run's example job $id"
done

say "submitting the example jobs (examples/batch.yaml, examples/service.yaml)"
"$C" job submit -f examples/batch.yaml
"$C" job submit -f examples/service.yaml

for round in 1 2 3 4; do
  sleep 2
  say "after $((round * 2))s"
  "$C" job ls --label corral-example=true --all --limit 10
  "$C" task ls --limit 20
done

say "hosts"
"$C" host ls

cat <<EOT

Corral is running at $URL (pid $(cat "$PIDFILE"), log $DATA/up.log). Go on with:
  source $VENV/bin/activate && export CORRAL_MASTER=$URL
  corral job ls --all                 # every job, finished ones too
  corral task ls --job <JOB>          # a job's tasks
  corral task show <TASK>             # a task's history and why it ended
  corral why <TASK>                   # why a task is pending
  corral job resize <JOB> --desired 5 # scale the service
  corral events                       # follow every change
  make stop                           # stop the cluster
EOT
