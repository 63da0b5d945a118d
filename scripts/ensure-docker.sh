#!/usr/bin/env bash
# Make sure a Docker Engine answers, and that the images Corral's tests and examples use exist.
# If `docker info` fails: install Debian's docker.io (apt-get), start dockerd in the background, wait.
# User-namespace remapping (root in a container is an unprivileged uid on the host) is turned on when
# the kernel allows it: see enable_userns_remap below. CORRAL_DOCKER_USERNS=off leaves it alone.
# Images are built locally (busybox-static in an imported root filesystem): nothing is pulled.
set -euo pipefail
say() { printf '\033[1m[docker]\033[0m %s\n' "$*"; }
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/corral-dockerd.log}
DOCKERD_CONFIG=${DOCKERD_CONFIG:-/etc/docker/daemon.json}
DOCKERD_PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}
USERNS=${CORRAL_DOCKER_USERNS:-auto} # auto: on where it works | off
USERNS_FAILED="$(dirname "$DOCKERD_CONFIG")/corral-userns-remap.failed" # why it was given up here
IMAGE=${CORRAL_TEST_IMAGE:-corral/busybox:latest}

apt_install() {
  say "installing Debian packages: $*"
  if [ -z "${CORRAL_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export CORRAL_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_dockerd() { # the command line to run, e.g. "dockerd" or a running daemon's own
  say "starting $* in the background (log: $DOCKERD_LOG)"
  nohup setsid "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
}

wait_dockerd() {
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "dockerd did not answer within 60s; the end of its log:" >&2
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  return 1
}

userns_active() { docker info --format '{{json .SecurityOptions}}' 2>/dev/null | grep -q 'name=userns'; }

set_userns_key() { # on|off: add or remove "userns-remap": "default" in daemon.json, keeping the rest
  python3 - "$DOCKERD_CONFIG" "$1" <<'PY'
import json, os, sys
path, state = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
if state == "on":
    config["userns-remap"] = "default"
else:
    config.pop("userns-remap", None)
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
}

# Restart the dockerd this script manages (one not run by systemd) with the same command line. Running
# containers would die with it, so it waits for a moment with none, unless CORRAL_DOCKER_RESTART=1.
# Returns 1 when it did not restart (the change applies at the next restart), 2 when dockerd did not
# come back.
DOCKERD_CMD=(dockerd)
restart_dockerd() {
  local pid
  pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/cmdline" ]; then
    say "cannot find the running dockerd ($DOCKERD_PIDFILE): restart it yourself to apply $DOCKERD_CONFIG"
    return 1
  fi
  if [ -d /run/systemd/system ] && systemctl is-active --quiet docker 2>/dev/null; then
    say "dockerd is run by systemd: 'systemctl restart docker' applies $DOCKERD_CONFIG"
    return 1
  fi
  local running
  running=$(docker ps -q | wc -l)
  if [ "$running" -gt 0 ] && [ "${CORRAL_DOCKER_RESTART:-}" != 1 ]; then
    say "not restarting dockerd now: $running containers run (they would die); CORRAL_DOCKER_RESTART=1 forces it"
    return 1
  fi
  mapfile -d '' DOCKERD_CMD <"/proc/$pid/cmdline"
  say "restarting dockerd (pid $pid) to apply $DOCKERD_CONFIG"
  kill -TERM "$pid"
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd (pid $pid) did not stop within 30s; the change applies at its next restart"
    return 1
  fi
  start_dockerd "${DOCKERD_CMD[@]}"
  wait_dockerd || return 2
}

# User-namespace remapping: root in a container is uid 100000+ on the host (dockerd creates the
# "dockremap" user and its /etc/subuid and /etc/subgid ranges). Docker then keeps images and containers
# under <data-root>/<uid>.<gid>, so the switch starts from an empty image store (re-imported below).
enable_userns_remap() {
  if [ "$USERNS" = off ]; then
    say "user-namespace remapping: left alone (CORRAL_DOCKER_USERNS=off)"
    return 0
  fi
  if userns_active; then
    say "user-namespace remapping: on"
    return 0
  fi
  if [ -f "$USERNS_FAILED" ]; then
    say "user-namespace remapping: off, it failed here before ($(head -n 1 "$USERNS_FAILED")); delete $USERNS_FAILED to retry"
    return 0
  fi
  if ! unshare --user --map-root-user true 2>/dev/null; then
    say "user-namespace remapping: off, this kernel (or the sandbox it runs in) refuses user namespaces (unshare --user failed)"
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    say "user-namespace remapping: off, python3 is needed to edit $DOCKERD_CONFIG"
    return 0
  fi
  set_userns_key on
  say "user-namespace remapping: \"userns-remap\": \"default\" written to $DOCKERD_CONFIG"
  local restarted=0
  restart_dockerd || restarted=$?
  [ "$restarted" = 1 ] && return 0
  if userns_active; then
    say "user-namespace remapping: on (Docker's root dir is now $(docker info --format '{{.DockerRootDir}}'))"
    return 0
  fi
  # It did not come up remapped: undo, start as before, and remember why so the next run does not retry.
  local why
  why=$( { tail -n 200 "$DOCKERD_LOG" | grep -iE 'userns|remap|subuid|subgid' | tail -n 1; } || true)
  echo "${why:-dockerd did not start with userns-remap}" >"$USERNS_FAILED"
  set_userns_key off
  say "user-namespace remapping: off, dockerd would not run with it: ${why:-see $DOCKERD_LOG}"
  docker info >/dev/null 2>&1 || { start_dockerd "${DOCKERD_CMD[@]}"; wait_dockerd || exit 1; }
}

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    say "no Docker Engine here: installing Debian's docker.io"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    start_dockerd dockerd
    wait_dockerd || exit 1
    say "dockerd is up: $(docker version --format '{{.Server.Version}}')"
  fi
fi
enable_userns_remap

# The local registry the image tests push to and pull from (started by the tests themselves).
command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  busybox=$(command -v busybox || true)
  if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || apt_install busybox-static file
    busybox=/bin/busybox
  fi
  say "building $IMAGE from $busybox (docker import of a root filesystem)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo "hello from corral" >"$root/www/index.html"
  tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$IMAGE" >/dev/null
fi
say "ready: Docker $(docker version --format '{{.Server.Version}}'), image $IMAGE"
