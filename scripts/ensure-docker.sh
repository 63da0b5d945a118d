#!/usr/bin/env bash
# Make sure a Docker Engine answers, and that the images Corral's tests and examples use exist.
# If `docker info` fails: install Debian's docker.io (apt-get), start dockerd in the background, wait.
# Images are built locally (busybox-static in an imported root filesystem): nothing is pulled.
set -euo pipefail
say() { printf '\033[1m[docker]\033[0m %s\n' "$*"; }
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/corral-dockerd.log}
IMAGE=${CORRAL_TEST_IMAGE:-corral/busybox:latest}

apt_install() {
  say "installing Debian packages: $*"
  if [ -z "${CORRAL_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export CORRAL_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    say "no Docker Engine here: installing Debian's docker.io"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    nohup setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 120); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
      echo "dockerd did not answer within 60s; the end of its log:" >&2
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      exit 1
    fi
    say "dockerd is up: $(docker version --format '{{.Server.Version}}')"
  fi
fi

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
