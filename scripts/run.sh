#!/usr/bin/env bash
# `make run`: start a local Corral in the background — a master on SQLite and one agent running real
# Docker containers — submit the example jobs, and show them running. Re-running restarts nothing that
# is healthy and replaces the previous run's example jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DATA=${CORRAL_DATA_DIR:-.corral}
PORT=${CORRAL_PORT:-8080}
AGENT_METRICS_PORT=${CORRAL_AGENT_METRICS_PORT:-9101}
URL="http://127.0.0.1:$PORT"
export CORRAL_MASTER=$URL
export CORRAL_TOKEN_FILE=${CORRAL_TOKEN_FILE:-$DATA/admin.token}  # written by `corral up` (an admin token)
export COLUMNS=${COLUMNS:-160}
C="$VENV/bin/corral"
PY="$VENV/bin/python"
PIDFILE="$DATA/up.pid"
RUNTIME=${CORRAL_RUNTIME:-docker}
say() { printf '\n\033[1m[run]\033[0m %s\n' "$*"; }
ready() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2)' "$URL" >/dev/null 2>&1; }

[ "$RUNTIME" = docker ] && scripts/ensure-docker.sh
mkdir -p "$DATA"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && ready; then
  say "corral is already running (pid $(cat "$PIDFILE")) at $URL"
else
  if ready; then
    echo "something else answers on $URL; set CORRAL_PORT to use another port" >&2
    exit 1
  fi
  say "starting corral: a master on SQLite ($DATA/corral.db) and a $RUNTIME agent, logging to $DATA/up.log"
  nohup "$C" up --runtime "$RUNTIME" --agents 1 --data-dir "$DATA" --port "$PORT" --log-level info \
    --agent-metrics-port "$AGENT_METRICS_PORT" >"$DATA/up.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 150); do ready && break; sleep 0.2; done
  if ! ready; then
    echo "corral did not become ready; the end of its log:" >&2
    tail -n 30 "$DATA/up.log" >&2
    exit 1
  fi
fi

hosts_ready() { "$C" --json host ls 2>/dev/null | "$PY" -c 'import json,sys; sys.exit(0 if any(h["state"] == "ready" for h in json.load(sys.stdin)) else 1)'; }
for _ in $(seq 150); do hosts_ready && break; sleep 0.2; done

previous=$("$C" --json job ls --label corral-example=true | "$PY" -c 'import json,sys; print(" ".join(j["id"] for j in json.load(sys.stdin)))')
for id in $previous; do
  "$C" job kill "$id" >/dev/null && echo "killed the previous run's example job $id"
done

say "submitting the example jobs (examples/batch.yaml, examples/service.yaml)"
job_id() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
batch=$("$C" --json job submit -f examples/batch.yaml | job_id)
service=$("$C" --json job submit -f examples/service.yaml | job_id)
echo "batch job $batch, service job $service"

for round in 1 2 3 4; do
  sleep 2
  say "after $((round * 2))s: the batch job's tasks, then the service's"
  "$C" task ls --all --job "$batch"
  "$C" task ls --job "$service"
done
say "the batch job"
"$C" job show "$batch" | head -8

say "hosts"
"$C" host ls
say "corral top --once (run \`corral top\` for the live view)"
"$C" top --once --hosts 3 --jobs 5
if [ "$RUNTIME" = docker ]; then
  say "docker ps (the containers Corral runs)"
  docker ps --filter label=corral.host=local --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
  web=$("$C" --json task ls --state Started | "$PY" -c 'import json,sys
ports=[t["ports"][0] for t in json.load(sys.stdin) if t["ports"]]
print(ports[0] if ports else "")')
  if [ -n "$web" ]; then
    say "the service answers on its assigned port: curl http://127.0.0.1:$web/"
    "$PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())' "http://127.0.0.1:$web/" || true
  fi
fi

cat <<EOT

Corral is running at $URL (pid $(cat "$PIDFILE"), log $DATA/up.log).
  web console:    $URL/ (sign in with the admin token in $CORRAL_TOKEN_FILE)
  API token:      $CORRAL_TOKEN_FILE (the CLI reads it from there; \`corral admin token create\` makes more)
  metrics:        $URL/metrics (master), http://127.0.0.1:$AGENT_METRICS_PORT/metrics (agent)
Go on with:
  source $VENV/bin/activate && export CORRAL_MASTER=$URL
  corral top                          # the fleet, the queue and the busiest jobs, live
  corral job ls --all                 # every job, finished ones too
  corral task ls --job <JOB>          # a job's tasks
  corral task show <TASK>             # a task's history and why it ended
  corral task logs <TASK> [-f]        # its output, from the container
  corral why <TASK>                   # why a task is pending
  corral job resize <JOB> --desired 5 # scale the service
  corral events                       # follow every change
  make stop                           # stop the cluster
EOT
