#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Makes sure the services the test suite uses for real are installed and running on loopback:
#   PostgreSQL on 127.0.0.1:5432 (trust auth on loopback, database `test`),
#   Redis on 127.0.0.1:6379 (no persistence),
#   Prometheus and promtool on PATH (the suite starts its own Prometheus processes).
# Missing packages are installed from Debian's archive (apt-get). Idempotent and quick when
# everything is already there. Fails loudly when something cannot be provided: tests that need a
# service fail, they never skip.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "need root to run: $*"
    return 1
  fi
}

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing from Debian's packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >/dev/null
  as_root apt-get install -y -q "${missing[@]}" >/dev/null
  # The packages start their own daemons through systemd where it runs; Prometheus's
  # packaged service is not wanted (the suite runs its own instances).
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# --- PostgreSQL -----------------------------------------------------------------------------
version="$(ls /etc/postgresql | sort -V | tail -1)"
hba="/etc/postgresql/${version}/main/pg_hba.conf"
if ! grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  log "PostgreSQL ${version}: trust auth on 127.0.0.1"
  tmp="$(mktemp)"
  {
    echo 'host all all 127.0.0.1/32 trust'
    echo 'host all all ::1/128 trust'
    cat "$hba"
  } >"$tmp"
  as_root cp "$tmp" "$hba"
  rm -f "$tmp"
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
fi
conf="/etc/postgresql/${version}/main/postgresql.conf"
if ! grep -qE '^max_connections[[:space:]]*=[[:space:]]*400' "$conf"; then
  # Tests run in parallel, each with its own databases and pools.
  echo 'max_connections = 400' | as_root tee -a "$conf" >/dev/null
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  fi
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL ${version}"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  log "creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test' >/dev/null
fi

# --- Redis ----------------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { log "Redis did not come up on 127.0.0.1:6379"; exit 1; }

# --- Prometheus -----------------------------------------------------------------------------
command -v promtool >/dev/null 2>&1 || { log "promtool is missing"; exit 1; }
command -v prometheus >/dev/null 2>&1 || { log "prometheus is missing"; exit 1; }

log "PostgreSQL ${version}, Redis, Prometheus ready"
