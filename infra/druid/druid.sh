#!/usr/bin/env bash
# A real, small Apache Druid on this machine, with a local Kinesis emulator and a local S3
# (moto server), all on 127.0.0.1.
#
#   druid.sh deps     fetch jars from Maven Central into lib/ (cached), build the three
#                     extensions Central lacks from Druid's source release, npm-install kinesis-local
#   druid.sh up       start ZooKeeper, kinesis-local, moto (S3), then the Druid services, in the
#                     background; return once every one answers its health check (pids and logs
#                     under var/)
#   druid.sh down     stop what `up` started (pids under var/pids), newest first
#   druid.sh status   one line per process: pid, port, health
#   druid.sh env      the endpoints, as shell assignments (eval "$(druid.sh env)")
#
# Ports (environment, defaults in brackets): DRUID_ZK_PORT [12181], DRUID_DERBY_PORT [11527],
# DRUID_COORDINATOR_PORT [18081] (also the Overlord), DRUID_BROKER_PORT [18082],
# DRUID_HISTORICAL_PORT [18083], DRUID_INDEXER_PORT [18091], DRUID_ROUTER_PORT [18888],
# KINESIS_LOCAL_PORT [14568] (plain HTTP), KINESIS_LOCAL_TLS_PORT [14567], DRUID_S3_PORT [15055]
# (moto server: Druid's `s3` input source and druid.s3.* point there).
# DRUID_PYTHON [.venv/bin/python of the repository: `make install`] runs the moto server.
# Others: DRUID_SERVICES (which Druid services, in start order), DRUID_UP_TIMEOUT [300 s],
# DRUID_LOG_LEVEL [warn], DRUID_JAVA_OPTS [-XX:TieredStopAtLevel=1], JAVA [java],
# DRUID_LIB_DIR [infra/druid/lib] (jars; point it outside the clone to share them between clones).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DRUID_VERSION=33.0.0
LIB="${DRUID_LIB_DIR:-$HERE/lib}"
[[ "$LIB" == /* ]] || LIB="$PWD/$LIB"
VAR="${DRUID_VAR_DIR:-$HERE/var}"
KINESIS_HOME="$REPO/infra/kinesis-local"
KINESIS_PKG="$KINESIS_HOME/node_modules/kinesis-local"
JAVA="${JAVA:-java}"
PYTHON="${DRUID_PYTHON:-$REPO/.venv/bin/python}"
MVN=(mvn -q -B)

# Maven 3.8 prints bare colour resets even with -q -B; drop them (pipefail keeps mvn's status).
mvn_quiet() { "${MVN[@]}" "$@" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d'; }

: "${DRUID_ZK_PORT:=12181}"
: "${DRUID_DERBY_PORT:=11527}"
: "${DRUID_COORDINATOR_PORT:=18081}"
: "${DRUID_BROKER_PORT:=18082}"
: "${DRUID_HISTORICAL_PORT:=18083}"
: "${DRUID_INDEXER_PORT:=18091}"
: "${DRUID_ROUTER_PORT:=18888}"
: "${KINESIS_LOCAL_PORT:=14568}"
: "${KINESIS_LOCAL_TLS_PORT:=14567}"
: "${DRUID_S3_PORT:=15055}"
: "${DRUID_SERVICES:=coordinator broker historical indexer router}"
: "${DRUID_UP_TIMEOUT:=300}"
export DRUID_LOG_LEVEL="${DRUID_LOG_LEVEL:-warn}"

# What Druid's own bin/run-java passes on Java 11+ (strong encapsulation), plus small-JVM flags.
JAVA_FLAGS=(
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
  -server
  -XX:+UseSerialGC
  -XX:+ExitOnOutOfMemoryError
  -Duser.timezone=UTC
  -Dfile.encoding=UTF-8
  -Djava.io.tmpdir=var/tmp
  -Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager
  -Daws.region=us-east-1
  # kinesis-local answers the SDK's CBOR requests with text where CBOR wants bytes
  # ("Current token (VALUE_STRING) not VALUE_EMBEDDED_OBJECT"): speak JSON to it.
  -Dcom.amazonaws.sdk.disableCbor=true
)
# Extra JVM flags for every Druid service. By default only the C1 JIT: five JVMs start on two
# cores ~25% sooner, and test-sized queries do not miss C2. DRUID_JAVA_OPTS="" restores C2.
read -r -a EXTRA_JAVA_FLAGS <<<"${DRUID_JAVA_OPTS--XX:TieredStopAtLevel=1}"

log() { printf 'druid.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

port_of() {
  case "$1" in
    zookeeper) echo "$DRUID_ZK_PORT" ;;
    kinesis) echo "$KINESIS_LOCAL_PORT" ;;
    s3) echo "$DRUID_S3_PORT" ;;
    coordinator) echo "$DRUID_COORDINATOR_PORT" ;;
    broker) echo "$DRUID_BROKER_PORT" ;;
    historical) echo "$DRUID_HISTORICAL_PORT" ;;
    indexer) echo "$DRUID_INDEXER_PORT" ;;
    router) echo "$DRUID_ROUTER_PORT" ;;
    *) die "unknown service $1" ;;
  esac
}

# ---------------------------------------------------------------------------------------- deps

deps() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  command -v npm >/dev/null || die "npm not found"
  local stamp="$LIB/.deps-$DRUID_VERSION"
  if [[ -f "$stamp/core" ]]; then
    log "core jars: cached in lib/core"
  else
    log "core jars: org.apache.druid:druid-services:$DRUID_VERSION and its dependencies"
    rm -rf "$LIB/core"
    mvn_quiet -f "$HERE/pom.xml" -Ddruid.version="$DRUID_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB/core"
    mkdir -p "$stamp" && touch "$stamp/core"
  fi

  build_extensions "$stamp"

  if [[ -f "$KINESIS_PKG/main.js" ]]; then
    log "kinesis-local: installed"
  else
    log "kinesis-local: npm ci"
    (cd "$KINESIS_HOME" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  log "deps ready: $(du -sh "$LIB" | cut -f1) in $LIB"
}

# The extensions built from the source release: module under extensions/, folder under the
# release's extensions-core/, Druid's name for it (its folder under lib/extensions).
EXTENSIONS=(
  "kinesis kinesis-indexing-service druid-kinesis-indexing-service"
  "msq multi-stage-query druid-multi-stage-query"
  "s3 s3-extensions druid-s3-extensions"
)

# Stamp per extension: an existing lib/ gains a new extension without recompiling the others.
missing_extensions() {
  local stamp="$1" entry module
  for entry in "${EXTENSIONS[@]}"; do
    read -r module _ <<<"$entry"
    [[ -f "$stamp/extension-$module" ]] || echo "$module"
  done
}

build_extensions() {
  local stamp="$1" src="$LIB/src/apache-druid-$DRUID_VERSION-src" entry module dir name
  # A lib/ from before the per-extension stamps had kinesis and msq under one stamp.
  if [[ -f "$stamp/extensions" ]]; then touch "$stamp/extension-kinesis" "$stamp/extension-msq"; fi
  local todo=() names=() paths=()
  for entry in "${EXTENSIONS[@]}"; do
    read -r module dir name <<<"$entry"
    [[ -f "$stamp/extension-$module" ]] && continue
    todo+=("$module")
    names+=("$name")
    [[ -d "$src/extensions-core/$dir/src/main" ]] \
      || paths+=("apache-druid-$DRUID_VERSION-src/extensions-core/$dir/src/main")
  done
  if [[ ${#todo[@]} -eq 0 ]]; then
    log "extensions: cached in lib/extensions"
    return
  fi
  if [[ ${#paths[@]} -gt 0 ]]; then
    log "extensions: source release org.apache.druid:distribution:$DRUID_VERSION:tar.gz"
    mkdir -p "$LIB/src"
    mvn_quiet dependency:copy -Dartifact="org.apache.druid:distribution:$DRUID_VERSION:tar.gz" \
      -DoutputDirectory="$LIB/src"
    tar -xzf "$LIB/src/distribution-$DRUID_VERSION.tar.gz" -C "$LIB/src" "${paths[@]}"
    rm -f "$LIB/src/distribution-$DRUID_VERSION.tar.gz"
  fi
  log "extensions: compiling ${names[*]}"
  for name in "${names[@]}"; do rm -rf "$LIB/extensions/$name"; done
  for module in "${todo[@]}"; do rm -rf "$LIB/build/$module"; done
  mvn_quiet -f "$HERE/extensions/pom.xml" -Ddruid.version="$DRUID_VERSION" -Ddruid.lib="$LIB" \
    -pl "$(IFS=,; echo "${todo[*]}")" package
  prune_extension_jars
  mkdir -p "$stamp"
  for module in "${todo[@]}"; do touch "$stamp/extension-$module"; done
}

# An extension folder keeps only jars that the core classpath lacks (Druid's extension class
# loader asks the core first, so a second copy of guava or jackson would only take space).
prune_extension_jars() {
  local dir jar base
  declare -A core=()
  for jar in "$LIB"/core/*.jar; do
    base="$(basename "$jar" .jar)"
    core["${base%-[0-9]*}"]=1
  done
  for dir in "$LIB"/extensions/*/; do
    for jar in "$dir"*.jar; do
      base="$(basename "$jar" .jar)"
      if [[ -n "${core[${base%-[0-9]*}]:-}" ]]; then
        rm -f "$jar"
      fi
    done
  done
}

# ------------------------------------------------------------------------------------- process

pidfile() { echo "$VAR/pids/$1.pid"; }

alive() {
  local f pid
  f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

healthy() {
  local svc="$1" port
  port="$(port_of "$svc")"
  case "$svc" in
    zookeeper) port_open "$port" ;;
    kinesis | s3) [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" != 000 ]] ;;
    *) [[ "$(curl -s -m 2 "http://127.0.0.1:$port/status/health" 2>/dev/null)" == true ]] ;;
  esac
}

# start NAME DIR COMMAND...: run COMMAND from DIR in the background, output to var/log/NAME.log.
start() {
  local name="$1" dir="$2"
  shift 2
  if alive "$name"; then
    log "$name: already running (pid $(cat "$(pidfile "$name")"))"
    return
  fi
  local port
  port="$(port_of "$name")"
  if port_open "$port"; then
    die "$name: port $port is already taken by another process; set its port variable (see druid.sh)"
  fi
  (cd "$dir" && exec "$@") >"$VAR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "$name: started (pid $!, port $port)"
}

druid_cmd() {
  local svc="$1" port
  port="$(port_of "$svc")"
  local jvm=()
  mapfile -t jvm < <(grep -v '^\s*\(#\|$\)' "$HERE/conf/$svc/jvm.config")
  printf '%s\0' "$JAVA" "${JAVA_FLAGS[@]}" "${jvm[@]}" "${EXTRA_JAVA_FLAGS[@]}" \
    "-Ddruid.node.type=$svc" \
    "-Ddruid.host=127.0.0.1" \
    "-Ddruid.plaintextPort=$port" \
    "-Ddruid.zk.service.host=127.0.0.1:$DRUID_ZK_PORT" \
    "-Ddruid.metadata.storage.connector.port=$DRUID_DERBY_PORT" \
    "-Ddruid.metadata.storage.connector.connectURI=jdbc:derby://127.0.0.1:$DRUID_DERBY_PORT/var/druid/metadata.db;create=true" \
    "-Ddruid.extensions.directory=$LIB/extensions" \
    "-Ddruid.s3.endpoint.url=http://127.0.0.1:$DRUID_S3_PORT" \
    -cp "conf/$svc:conf/_common:$LIB/core/*" \
    org.apache.druid.cli.Main server "$svc"
}

wait_healthy() {
  local deadline=$((SECONDS + DRUID_UP_TIMEOUT)) svc pending
  while :; do
    pending=()
    for svc in "$@"; do
      alive "$svc" || { tail -n 40 "$VAR/log/$svc.log" >&2; die "$svc: exited while starting (log: $VAR/log/$svc.log)"; }
      healthy "$svc" || pending+=("$svc")
    done
    [[ ${#pending[@]} -eq 0 ]] && return 0
    if ((SECONDS >= deadline)); then
      die "not healthy after ${DRUID_UP_TIMEOUT}s: ${pending[*]} (logs in $VAR/log)"
    fi
    sleep 1
  done
}

up() {
  [[ -f "$LIB/.deps-$DRUID_VERSION/core" && -z "$(missing_extensions "$LIB/.deps-$DRUID_VERSION")" ]] \
    || die "jars missing: run '$0 deps' (make druid-deps) first"
  [[ -f "$KINESIS_PKG/main.js" ]] || die "kinesis-local missing: run '$0 deps' first"
  "$PYTHON" -c 'import moto.server' 2>/dev/null \
    || die "no moto server in $PYTHON: run 'make install' (or set DRUID_PYTHON)"
  # Druid resolves var/... against its working directory, infra/druid; keep var/ there.
  [[ "$VAR" == "$HERE/var" ]] || die "DRUID_VAR_DIR must be $HERE/var for now"
  mkdir -p "$VAR"/{log,pids,tmp,zk,druid}
  local t0=$SECONDS

  start kinesis "$KINESIS_PKG" env KINESIS_MOCK_PLAIN_PORT="$KINESIS_LOCAL_PORT" \
    KINESIS_MOCK_TLS_PORT="$KINESIS_LOCAL_TLS_PORT" LOG_LEVEL=WARN node main.js
  # S3 for Druid's `s3` input source (the backfill's s3:// staging); buckets live in memory.
  start s3 "$HERE" "$PYTHON" -m moto.server -H 127.0.0.1 -p "$DRUID_S3_PORT"

  cat >"$VAR/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$VAR/zk
clientPort=$DRUID_ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
  start zookeeper "$HERE" "$JAVA" -XX:+UseSerialGC -Xms32m -Xmx128m -Dlog4j.configurationFile=conf/_common/log4j2.xml \
    -Dzookeeper.jmx.log4j.disable=true -cp "conf/_common:$LIB/core/*" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$VAR/zk/zoo.cfg"
  wait_healthy kinesis s3 zookeeper

  local svc cmd
  for svc in $DRUID_SERVICES; do
    mapfile -d '' -t cmd < <(druid_cmd "$svc")
    start "$svc" "$HERE" "${cmd[@]}"
  done
  # shellcheck disable=SC2086
  wait_healthy $DRUID_SERVICES
  log "up: healthy after $((SECONDS - t0))s; router http://127.0.0.1:$DRUID_ROUTER_PORT"
}

stop_one() {
  local name="$1" f pid
  f="$(pidfile "$name")"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name: still running after 30s, killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name: stopped (pid $pid)"
  fi
  rm -f "$f"
}

down() {
  local svc services=()
  for svc in $DRUID_SERVICES; do services=("$svc" "${services[@]}"); done
  # The router, broker, historical and indexer go together; the coordinator (Derby) after them.
  local pids=() rest=()
  for svc in "${services[@]}"; do
    [[ "$svc" == coordinator ]] && continue
    stop_one "$svc" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  for svc in coordinator zookeeper kinesis s3; do stop_one "$svc"; done
  # Any pid file left names a service no longer in DRUID_SERVICES: stop it too.
  for f in "$VAR"/pids/*.pid; do
    [[ -e "$f" ]] || continue
    rest+=("$(basename "$f" .pid)")
  done
  for svc in "${rest[@]}"; do stop_one "$svc"; done
}

status() {
  local svc pid state rc=0
  for svc in kinesis s3 zookeeper $DRUID_SERVICES; do
    pid="-"
    state="stopped"
    if alive "$svc"; then
      pid="$(cat "$(pidfile "$svc")")"
      if healthy "$svc"; then state="healthy"; else state="starting"; rc=1; fi
    else
      rc=1
    fi
    printf '%-12s pid=%-8s port=%-6s %s\n' "$svc" "$pid" "$(port_of "$svc")" "$state"
  done
  return "$rc"
}

env_out() {
  cat <<EOF
DRUID_COORDINATOR_URL=http://127.0.0.1:$DRUID_COORDINATOR_PORT
DRUID_OVERLORD_URL=http://127.0.0.1:$DRUID_COORDINATOR_PORT
DRUID_BROKER_URL=http://127.0.0.1:$DRUID_BROKER_PORT
DRUID_ROUTER_URL=http://127.0.0.1:$DRUID_ROUTER_PORT
KINESIS_LOCAL_URL=http://127.0.0.1:$KINESIS_LOCAL_PORT
DRUID_S3_URL=http://127.0.0.1:$DRUID_S3_PORT
EOF
}

case "${1:-}" in
  deps) deps ;;
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_out ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 2 ;;
esac
