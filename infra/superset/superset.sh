#!/usr/bin/env bash
# A local Apache Superset 6.1 on 127.0.0.1, wired to the local Druid of infra/druid (make
# druid-up), with Dredge's dashboards imported.
#
#   superset.sh deps     its own venv (infra/superset/.venv; never Dredge's: Superset pins old
#                        SQLAlchemy, pandas, numpy, pyarrow) from requirements.txt, exactly
#   superset.sh up       first time: secret key, SQLite metadata (db upgrade, init), the admin
#                        user; then start the web server in the background, wait until it
#                        answers, export Dredge's bundle and import it (every time: a re-import
#                        updates the same objects)
#   superset.sh import [EXPORT OPTIONS]  export the bundle (extra options go to `dredge
#                        dashboards export`, e.g. --druid-datasource) and import it
#   superset.sh down     stop the web server
#   superset.sh status   one line: pid, port, health
#
# Environment (defaults in brackets): SUPERSET_PORT [18088], SUPERSET_ADMIN_USER [admin],
# SUPERSET_ADMIN_PASSWORD [dredge-local-admin], SUPERSET_VAR_DIR [infra/superset/var],
# SUPERSET_VENV [infra/superset/.venv], SUPERSET_PYTHON [python3] (makes the venv),
# SUPERSET_UP_TIMEOUT [180 s], SUPERSET_WORKERS [1] and SUPERSET_THREADS [8] (gunicorn),
# DREDGE [.venv/bin/dredge of the repository] and DREDGE_DRUID_URL [http://127.0.0.1:$DRUID_ROUTER_PORT,
# 18888] for the bundle's Druid database; SUPERSET_DUCKDB [demo/dredge.duckdb when it exists]
# adds the embedded store as a read-only DuckDB database.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VAR="${SUPERSET_VAR_DIR:-$HERE/var}"
VENV="${SUPERSET_VENV:-$HERE/.venv}"
DREDGE="${DREDGE:-$REPO/.venv/bin/dredge}"
: "${SUPERSET_PORT:=18088}"
: "${SUPERSET_ADMIN_USER:=admin}"
: "${SUPERSET_ADMIN_PASSWORD:=dredge-local-admin}"
: "${SUPERSET_UP_TIMEOUT:=180}"
: "${SUPERSET_WORKERS:=1}"
: "${SUPERSET_THREADS:=8}"
: "${DREDGE_DRUID_URL:=http://127.0.0.1:${DRUID_ROUTER_PORT:-18888}}"
export SUPERSET_CONFIG_PATH="$HERE/superset_config.py" SUPERSET_VAR_DIR="$VAR"
export FLASK_APP=superset

log() { printf 'superset.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
superset() { "$VENV/bin/superset" "$@"; }
PIDFILE="$VAR/superset.pid"

deps() {
  local stamp="$VENV/.installed-stamp"
  if [[ -f "$stamp" && "$stamp" -nt "$HERE/requirements.txt" ]]; then return 0; fi
  log "installing Superset into $VENV (requirements.txt)"
  [[ -x "$VENV/bin/python" ]] || "${SUPERSET_PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # every package pinned in the list: --no-deps installs exactly it, no resolver surprises
  "$VENV/bin/python" -m pip install -q --no-deps -r "$HERE/requirements.txt"
  "$VENV/bin/python" -m pip check >/dev/null || die "pip check failed in $VENV"
  touch "$stamp"
}

alive() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
healthy() { [[ "$(curl -s -m 3 "http://127.0.0.1:$SUPERSET_PORT/health" 2>/dev/null)" == OK ]]; }

init_once() {
  mkdir -p "$VAR"
  [[ -s "$VAR/secret_key" ]] || { umask 077; openssl rand -base64 42 > "$VAR/secret_key"; }
  if [[ ! -f "$VAR/.initialized" ]]; then
    log "creating the metadata database ($VAR/superset.db)"
    superset db upgrade >"$VAR/init.log" 2>&1 || { tail -n 30 "$VAR/init.log" >&2; die "db upgrade failed"; }
    superset fab create-admin --username "$SUPERSET_ADMIN_USER" --firstname Dredge \
      --lastname Admin --email admin@localhost --password "$SUPERSET_ADMIN_PASSWORD" \
      >>"$VAR/init.log" 2>&1 || { tail -n 30 "$VAR/init.log" >&2; die "create-admin failed"; }
    superset init >>"$VAR/init.log" 2>&1 || { tail -n 30 "$VAR/init.log" >&2; die "superset init failed"; }
    touch "$VAR/.initialized"
  fi
}

import_bundle() {
  local zip="$VAR/dredge-superset.zip" duck="${SUPERSET_DUCKDB:-}" store=(--no-duckdb)
  [[ -n "$duck" || ! -f "$REPO/demo/dredge.duckdb" ]] || duck="$REPO/demo/dredge.duckdb"
  [[ -z "$duck" ]] || store=(--duckdb "$duck")
  [[ -x "$DREDGE" ]] || die "no $DREDGE (make install)"
  DREDGE_DRUID_URL="$DREDGE_DRUID_URL" "$DREDGE" dashboards export --out "$zip" "${store[@]}" \
    "$@" >&2
  # Superset's assets importer: every object overwritten, so a re-import updates in place
  "$VENV/bin/python" "$HERE/import_bundle.py" "$zip" "$SUPERSET_ADMIN_USER" >"$VAR/import.log" 2>&1 \
    || { tail -n 30 "$VAR/import.log" >&2; die "import of $zip failed"; }
  log "imported $zip"
}

up() {
  deps
  init_once
  if alive; then
    log "already running (pid $(cat "$PIDFILE"))"
  else
    mkdir -p "$VAR/log"
    (cd "$VAR" && exec setsid "$VENV/bin/gunicorn" --bind "127.0.0.1:$SUPERSET_PORT" \
      --workers "$SUPERSET_WORKERS" --threads "$SUPERSET_THREADS" --worker-class gthread \
      --timeout 120 --limit-request-line 0 --limit-request-field_size 0 \
      "superset.app:create_app()" >"$VAR/log/superset.log" 2>&1 </dev/null) &
    echo $! >"$PIDFILE"
    local deadline=$((SECONDS + SUPERSET_UP_TIMEOUT))
    until healthy; do
      alive || { tail -n 40 "$VAR/log/superset.log" >&2; die "Superset exited"; }
      ((SECONDS < deadline)) || { tail -n 40 "$VAR/log/superset.log" >&2; die "not healthy after ${SUPERSET_UP_TIMEOUT}s"; }
      sleep 1
    done
    log "Superset on http://127.0.0.1:$SUPERSET_PORT (user $SUPERSET_ADMIN_USER)"
  fi
  import_bundle
}

down() {
  alive || { rm -f "$PIDFILE"; return 0; }
  local pid i
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  local pid="-" state="stopped" rc=1
  if alive; then
    pid="$(cat "$PIDFILE")"
    if healthy; then state="healthy"; rc=0; else state="starting"; fi
  fi
  printf '%-12s pid=%-8s port=%-6s %s\n' superset "$pid" "$SUPERSET_PORT" "$state"
  return "$rc"
}

case "${1:-}" in
  deps) deps ;;
  up) up ;;
  import) shift; deps; init_once; import_bundle "$@" ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 2 ;;
esac
