#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with trust auth and a `test` database (the HA store's
# tests run against it). Starts the Debian cluster if it is stopped; installs Debian's postgresql if
# there is none.
set -euo pipefail
say() { printf '\033[1m[postgres]\033[0m %s\n' "$*"; }
answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "no PostgreSQL here: installing Debian's postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
  say "allowing trust auth on 127.0.0.1 in $hba"
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  answers && pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
if ! answers; then
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 60); do answers && break; sleep 0.5; done
fi
answers || { echo "PostgreSQL did not answer on 127.0.0.1:5432" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "create database test"
fi
say "ready: $(psql -h 127.0.0.1 -U postgres -d test -tAc 'show server_version')"
