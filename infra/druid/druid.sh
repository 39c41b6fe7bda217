#!/usr/bin/env bash
# A real, small Apache Druid on this machine, with a local Kinesis emulator and a local S3
# (moto server), all on 127.0.0.1.
#
#   druid.sh deps     fetch jars from Maven Central into lib/ (cached), build the four
#                     extensions Central lacks from Druid's source release, npm-install kinesis-local
#   druid.sh up       make a CA and the Router's certificate once (var/tls), start ZooKeeper,
#                     kinesis-local, moto (S3), then the Druid services, in the background; return
#                     once every one answers its health check (pids and logs under var/); then
#                     make sure the basic-auth user exists with its password
#   druid.sh down     stop what `up` started (pids under var/pids), newest first
#   druid.sh status   one line per process: pid, port, health
#   druid.sh env      the endpoints, the CA file and the basic-auth user, as shell assignments
#                     (eval "$(druid.sh env)")
#
# Ports (environment, defaults in brackets): DRUID_ZK_PORT [12181], DRUID_DERBY_PORT [11527],
# DRUID_COORDINATOR_PORT [18081] (also the Overlord), DRUID_BROKER_PORT [18082],
# DRUID_HISTORICAL_PORT [18083], DRUID_INDEXER_PORT [18091], DRUID_ROUTER_PORT [18888],
# DRUID_ROUTER_TLS_PORT [18889] (the Router over https, certificate from var/tls/ca.pem),
# KINESIS_LOCAL_PORT [14568] (plain HTTP), KINESIS_LOCAL_TLS_PORT [14567], DRUID_S3_PORT [15055]
# (moto server: Druid's `s3` input source and druid.s3.* point there).
# DRUID_PYTHON [.venv/bin/python of the repository: `make install`] runs the moto server.
# Basic auth (druid-basic-security): DRUID_AUTH_USER [dredge], DRUID_AUTH_PASSWORD
# [dredge-local-password]; requests without credentials still pass (see README.md).
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
: "${DRUID_ROUTER_TLS_PORT:=18889}"
: "${KINESIS_LOCAL_PORT:=14568}"
: "${KINESIS_LOCAL_TLS_PORT:=14567}"
: "${DRUID_S3_PORT:=15055}"
: "${DRUID_SERVICES:=coordinator broker historical indexer router}"
: "${DRUID_UP_TIMEOUT:=300}"
: "${DRUID_AUTH_USER:=dredge}"
: "${DRUID_AUTH_PASSWORD:=dredge-local-password}"
# prop FILE KEY: a value of a Druid properties file (the passwords below live in conf/ only).
prop() { sed -n "s/^$2=//p" "$HERE/conf/$1"; }
TLS_STORE_PASSWORD="$(prop router/runtime.properties druid.server.https.keyStorePassword)"
ADMIN_PASSWORD="$(prop _common/common.runtime.properties druid.auth.authenticator.basic.initialAdminPassword)"
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
  "basic-security druid-basic-security druid-basic-security"
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

# ------------------------------------------------------------------------------ TLS and auth

# A CA and the Router's certificate (127.0.0.1 and localhost), made once under var/tls: ca.pem is
# what clients trust (`druid.sh env` prints it as DRUID_CA_FILE); router.p12 is the Router's
# keystore (PKCS12, alias `router`). The CA key stays there too, unused after this.
tls_material() {
  local dir="$VAR/tls"
  [[ -f "$dir/router.p12" && -f "$dir/ca.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  log "tls: making a CA and the Router's certificate in $dir"
  rm -rf "$dir.new" && mkdir -p "$dir.new"
  (
    cd "$dir.new"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.pem \
      -subj "/CN=Dredge local Druid CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout router.key -out router.csr \
      -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >router.ext
    openssl x509 -req -sha256 -days 3650 -in router.csr -CA ca.pem -CAkey ca.key \
      -CAcreateserial -extfile router.ext -out router.pem 2>/dev/null
    openssl pkcs12 -export -name router -in router.pem -inkey router.key -certfile ca.pem \
      -passout "pass:$TLS_STORE_PASSWORD" -out router.p12
    rm -f router.csr router.ext ca.srl
    chmod 644 ca.pem
  ) || die "tls: openssl failed"
  rm -rf "$dir" && mv "$dir.new" "$dir"
}

# The basic-auth user Dredge uses (druid-basic-security, authenticator `basic`): created through
# the Coordinator's API when missing, its password set every time (DRUID_AUTH_PASSWORD wins over
# an older one). The admin's password is initialAdminPassword of conf/_common.
ensure_user() {
  local api="http://127.0.0.1:$DRUID_COORDINATOR_PORT/druid-ext/basic-security/authentication/db/basic"
  local auth=(-u "admin:$ADMIN_PASSWORD") code
  code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${auth[@]}" "$api/users/$DRUID_AUTH_USER")"
  if [[ "$code" == 400 || "$code" == 404 ]]; then
    code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${auth[@]}" -X POST "$api/users/$DRUID_AUTH_USER")"
    [[ "$code" == 200 ]] || die "auth: creating user $DRUID_AUTH_USER: HTTP $code"
  elif [[ "$code" != 200 ]]; then
    die "auth: reading user $DRUID_AUTH_USER: HTTP $code"
  fi
  code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${auth[@]}" -X POST \
    -H 'Content-Type: application/json' \
    --data "$(printf '{"password": "%s"}' "$DRUID_AUTH_PASSWORD")" \
    "$api/users/$DRUID_AUTH_USER/credentials")"
  [[ "$code" == 200 ]] || die "auth: setting the password of $DRUID_AUTH_USER: HTTP $code"
  # The other services poll the Coordinator for users (pollingPeriod 5 s in conf/_common).
  local deadline=$((SECONDS + 60))
  until [[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' --cacert "$VAR/tls/ca.pem" \
    -u "$DRUID_AUTH_USER:$DRUID_AUTH_PASSWORD" "https://127.0.0.1:$DRUID_ROUTER_TLS_PORT/status")" == 200 ]]; do
    ((SECONDS < deadline)) || die "auth: the Router does not accept $DRUID_AUTH_USER after 60 s"
    sleep 1
  done
  log "auth: user $DRUID_AUTH_USER ready"
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
    router)
      [[ "$(curl -s -m 2 "http://127.0.0.1:$port/status/health" 2>/dev/null)" == true ]] \
        && [[ "$(curl -s -m 2 --cacert "$VAR/tls/ca.pem" \
          "https://127.0.0.1:$DRUID_ROUTER_TLS_PORT/status/health" 2>/dev/null)" == true ]] ;;
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
  if [[ "$name" == router ]] && port_open "$DRUID_ROUTER_TLS_PORT"; then
    die "router: TLS port $DRUID_ROUTER_TLS_PORT is already taken; set DRUID_ROUTER_TLS_PORT"
  fi
  (cd "$dir" && exec "$@") >"$VAR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "$name: started (pid $!, port $port)"
}

druid_cmd() {
  local svc="$1" port
  port="$(port_of "$svc")"
  local jvm=() tls=()
  mapfile -t jvm < <(grep -v '^\s*\(#\|$\)' "$HERE/conf/$svc/jvm.config")
  # Only the Router listens on TLS too (druid.enableTlsPort in conf/router); nothing inside the
  # cluster calls it, so the other services need no client TLS settings.
  [[ "$svc" == router ]] && tls=("-Ddruid.tlsPort=$DRUID_ROUTER_TLS_PORT"
    "-Ddruid.server.https.keyStorePath=$VAR/tls/router.p12")
  printf '%s\0' "$JAVA" "${JAVA_FLAGS[@]}" "${jvm[@]}" "${EXTRA_JAVA_FLAGS[@]}" \
    "-Ddruid.node.type=$svc" \
    "-Ddruid.host=127.0.0.1" \
    "-Ddruid.plaintextPort=$port" \
    ${tls[@]+"${tls[@]}"} \
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
  tls_material

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
  [[ " $DRUID_SERVICES " == *" coordinator "* ]] && ensure_user
  log "up: healthy after $((SECONDS - t0))s; router http://127.0.0.1:$DRUID_ROUTER_PORT" \
    "and https://127.0.0.1:$DRUID_ROUTER_TLS_PORT (CA $VAR/tls/ca.pem)"
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
    printf '%-12s pid=%-8s port=%-6s %s%s\n' "$svc" "$pid" "$(port_of "$svc")" "$state" \
      "$([[ "$svc" == router ]] && echo " (https port $DRUID_ROUTER_TLS_PORT)")"
  done
  return "$rc"
}

env_out() {
  cat <<EOF
DRUID_COORDINATOR_URL=http://127.0.0.1:$DRUID_COORDINATOR_PORT
DRUID_OVERLORD_URL=http://127.0.0.1:$DRUID_COORDINATOR_PORT
DRUID_BROKER_URL=http://127.0.0.1:$DRUID_BROKER_PORT
DRUID_ROUTER_URL=http://127.0.0.1:$DRUID_ROUTER_PORT
DRUID_ROUTER_TLS_URL=https://127.0.0.1:$DRUID_ROUTER_TLS_PORT
DRUID_CA_FILE=$VAR/tls/ca.pem
DRUID_AUTH_USER=$DRUID_AUTH_USER
DRUID_AUTH_PASSWORD=$DRUID_AUTH_PASSWORD
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
