#!/usr/bin/env bash
# Installs (idempotently) and starts the real servers the integration tests use,
# as local processes on loopback. No Docker.
#   scripts/servers.sh install   # Debian packages, Go tools, LocalStack venv
#   scripts/servers.sh start     # start everything not yet running
#   scripts/servers.sh stop
#   scripts/servers.sh status
# Tools live in $CALLDATA_TOOLS (default /var/cache/calldata-tools, readable by the postgres and mysql users) so later runs reuse them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${CALLDATA_TOOLS:-/var/cache/calldata-tools}"
RUN="${CALLDATA_RUN:-$TOOLS/run}"
BIN="$TOOLS/bin"
mkdir -p "$TOOLS" "$RUN" "$BIN"
chmod 755 "$TOOLS" "$RUN" 2>/dev/null || true

PG_PORT="${PG_PORT:-55432}"
MYSQL_PORT="${MYSQL_PORT:-53306}"
REDIS_PORT="${REDIS_PORT:-56379}"
FERRET_PORT="${FERRET_PORT:-57017}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
LIVEKIT_PORT="${LIVEKIT_PORT:-7880}"
LIVEKIT_WEBHOOK_PORT="${LIVEKIT_WEBHOOK_PORT:-7891}"

log() { printf '[servers] %s\n' "$*" >&2; }

wait_port() { # name port timeout_s [pid]
  local name=$1 port=$2 t=${3:-60} pid=${4:-} i=0
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    i=$((i + 1))
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then log "$name exited before opening port $port; see $RUN/$name.log"; tail -n 30 "$RUN/$name.log" >&2 || true; return 1; fi
    if [ "$i" -gt $((t * 5)) ]; then log "$name did not open port $port in ${t}s; see $RUN/$name.log"; tail -n 30 "$RUN/$name.log" >&2 || true; return 1; fi
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_debian() {
  local need=()
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  # Headless Chromium for the browser tests of `calldata browse` (driven by playwright-core,
  # whose own browser download does not work here).
  [ -x /usr/bin/chromium ] || need+=(chromium)
  if [ "${#need[@]}" -gt 0 ]; then
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages from starting system services we do not use
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
}

install_ferretdb() {
  [ -x "$BIN/ferretdb" ] && [ "$BIN/ferretdb" -nt "$HERE/ferretdb/main.go" ] && return 0
  log "building FerretDB v1.24.2 (Go module proxy) through scripts/ferretdb"
  # FerretDB's own cmd/ferretdb panics on a missing version file when built from
  # the module proxy; our module embeds it instead (see scripts/ferretdb/main.go).
  ( cd "$HERE/ferretdb" && go build -o "$BIN/ferretdb" . )
}

install_livekit() {
  [ -x "$BIN/livekit-server" ] && return 0
  log "building livekit-server v1.13.5 (Go module proxy)"
  local tmp="$TOOLS/livekit-gobin"
  mkdir -p "$tmp"
  CGO_ENABLED=0 GOBIN="$tmp" go install github.com/livekit/livekit-server/cmd/server@v1.13.5
  mv "$tmp/server" "$BIN/livekit-server"
}

# LocalStack 4.14 uses Python 3.12 syntax (PEP 695) in its service stores.
find_python312() {
  local p
  for p in python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python3 /root/.pyenv/versions/3.12*/bin/python3 python3; do
    command -v "$p" >/dev/null 2>&1 || [ -x "$p" ] || continue
    if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then command -v "$p" || echo "$p"; return 0; fi
  done
  return 1
}

install_localstack() {
  local venv="$TOOLS/localstack-venv"
  if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys, localstack.services.stores; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }; then
    log "installing localstack-core 4.14.0 (PyPI)"
    local py
    py=$(find_python312) || { log "LocalStack 4.14 needs Python >= 3.12 (python3.12 or python3.13 on PATH)"; return 1; }
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'localstack-core[runtime]==4.14.0' service-identity -c "$HERE/localstack-constraints.txt"
  fi
  install_localstack_lambda_executor "$venv"
}

# The Lambda executor that runs deployed Node.js functions as local processes (no Docker; see
# scripts/localstack-lambda). Installed editable, so it is reinstalled only when this checkout moves.
install_localstack_lambda_executor() {
  local venv=$1 src="$HERE/localstack-lambda"
  "$venv/bin/python" - "$src" <<'PY' 2>/dev/null && return 0
import sys, os, importlib.metadata as md
import calldata_localstack_lambda as pkg
assert os.path.realpath(os.path.dirname(pkg.__file__)).startswith(os.path.realpath(sys.argv[1]) + os.sep)
assert any(e.name == "calldata-local" for e in md.entry_points(group="localstack.lambda.runtime_executor"))
PY
  log "installing the calldata-local LocalStack Lambda executor (scripts/localstack-lambda)"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$src"
}

install_all() {
  install_debian
  # The Go builds and the pip install are independent: run them side by side.
  install_ferretdb >"$RUN/install-ferretdb.log" 2>&1 & local f=$!
  install_livekit >"$RUN/install-livekit.log" 2>&1 & local l=$!
  install_localstack >"$RUN/install-localstack.log" 2>&1 & local s=$!
  local rc=0
  wait $f || { log "FerretDB install failed:"; tail -n 30 "$RUN/install-ferretdb.log" >&2; rc=1; }
  wait $l || { log "livekit-server install failed:"; tail -n 30 "$RUN/install-livekit.log" >&2; rc=1; }
  wait $s || { log "LocalStack install failed:"; tail -n 30 "$RUN/install-localstack.log" >&2; rc=1; }
  return $rc
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1; }

start_postgres() {
  port_open "$PG_PORT" && return 0
  local data="$TOOLS/pgdata" b; b=$(pg_bin)
  local user=postgres
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chown -R "$user" "$data" 2>/dev/null || true
    su "$user" -s /bin/sh -c "$b/initdb -D '$data' -U calldata --auth=trust -E UTF8" >"$RUN/postgres-init.log" 2>&1
  fi
  mkdir -p "$RUN/pgsock"; chown "$user" "$RUN/pgsock" "$RUN" 2>/dev/null || true
  su "$user" -s /bin/sh -c "$b/pg_ctl -D '$data' -l '$RUN/postgres.log' -o '-p $PG_PORT -k $RUN/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' start" >/dev/null
  wait_port postgres "$PG_PORT" 60
  for db in calldata ferretdb; do
    "$b/psql" -h 127.0.0.1 -p "$PG_PORT" -U calldata -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
      "$b/psql" -h 127.0.0.1 -p "$PG_PORT" -U calldata -d postgres -qc "CREATE DATABASE $db"
  done
}

start_mysql() {
  port_open "$MYSQL_PORT" && return 0
  local data="$TOOLS/mysqldata"
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data"; chown -R mysql:mysql "$data" 2>/dev/null || true
    mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=normal >"$RUN/mysql-init.log" 2>&1
  fi
  chown mysql "$RUN" 2>/dev/null || true
  nohup /usr/sbin/mariadbd --user=mysql --datadir="$data" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --socket="$RUN/mysql.sock" --pid-file="$RUN/mysql.pid" --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
    --max-connections=300 >"$RUN/mysql.log" 2>&1 &
  wait_port mysql "$MYSQL_PORT" 60 $!
  mariadb -uroot --socket="$RUN/mysql.sock" -e "CREATE DATABASE IF NOT EXISTS calldata; CREATE USER IF NOT EXISTS 'calldata'@'127.0.0.1' IDENTIFIED BY 'calldata'; GRANT ALL ON *.* TO 'calldata'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

start_redis() {
  port_open "$REDIS_PORT" && return 0
  nohup redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
  wait_port redis "$REDIS_PORT" 30 $!
}

start_ferretdb() {
  port_open "$FERRET_PORT" && return 0
  mkdir -p "$TOOLS/ferretdb-data"
  nohup "$BIN/ferretdb" --listen-addr="127.0.0.1:$FERRET_PORT" \
    --sqlite-url="file:$TOOLS/ferretdb-data/" >"$RUN/ferretdb.log" 2>&1 &
  wait_port ferretdb "$FERRET_PORT" 60 $!
}

start_localstack() {
  port_open "$LOCALSTACK_PORT" && return 0
  ( cd "$RUN"
    GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" LOCALSTACK_HOST="localhost:$LOCALSTACK_PORT" \
    SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
    SERVICES="${LOCALSTACK_SERVICES:-s3,sqs,cloudformation,lambda,iam,sts,ssm,secretsmanager,logs,cloudwatch}" \
    LOCALSTACK_VOLUME_DIR="$TOOLS/localstack-volume" FILESYSTEM_ROOT="$TOOLS/localstack-fs" \
    LAMBDA_RUNTIME_EXECUTOR=calldata-local CALLDATA_LAMBDA_LOG_DIR="$RUN/lambda" \
    CALLDATA_LAMBDA_NODE="${CALLDATA_LAMBDA_NODE:-$(cd "$HERE/.." && pwd)/node_modules/node/bin/node}" \
    nohup "$TOOLS/localstack-venv/bin/python" -m localstack.runtime.main >"$RUN/localstack.log" 2>&1 & )
  wait_port localstack "$LOCALSTACK_PORT" 120
  local i=0
  until curl -fsS "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" 2>/dev/null | grep -q '"sqs": "\(available\|running\)"'; do
    i=$((i + 1)); [ $i -gt 300 ] && { log "LocalStack not healthy; see $RUN/localstack.log"; return 1; }; sleep 0.2
  done
}

start_livekit() {
  port_open "$LIVEKIT_PORT" && return 0
  # LiveKit posts webhooks (signed with the dev key) to a loopback port; the end-to-end tests
  # listen there and hand them to the webhook function, as the function URL would.
  nohup "$BIN/livekit-server" --dev --bind 127.0.0.1 --port "$LIVEKIT_PORT" \
    --config-body "webhook: {api_key: devkey, urls: ['http://127.0.0.1:${LIVEKIT_WEBHOOK_PORT}/livekit/webhook']}" \
    >"$RUN/livekit.log" 2>&1 &
  wait_port livekit "$LIVEKIT_PORT" 60 $!
}

start_all() {
  start_postgres; start_mysql; start_redis; start_ferretdb; start_localstack; start_livekit
  log "all servers up (logs in $RUN)"
}

stop_all() {
  local b; b=$(pg_bin)
  su postgres -s /bin/sh -c "$b/pg_ctl -D '$TOOLS/pgdata' stop -m fast" >/dev/null 2>&1 || true
  [ -f "$RUN/mysql.pid" ] && kill "$(cat "$RUN/mysql.pid")" 2>/dev/null || true
  pkill -f "redis-server .*:$REDIS_PORT" 2>/dev/null || pkill -f "redis-server.*$REDIS_PORT" 2>/dev/null || true
  pkill -f "$BIN/ferretdb" 2>/dev/null || true
  pkill -f "localstack.runtime.main" 2>/dev/null || true
  pkill -f "$BIN/livekit-server" 2>/dev/null || true
}

status_all() {
  for s in postgres:$PG_PORT mysql:$MYSQL_PORT redis:$REDIS_PORT ferretdb:$FERRET_PORT localstack:$LOCALSTACK_PORT livekit:$LIVEKIT_PORT; do
    if port_open "${s#*:}"; then echo "${s%%:*} up on ${s#*:}"; else echo "${s%%:*} DOWN on ${s#*:}"; fi
  done
}

case "${1:-}" in
  install) install_all ;;
  start) start_all ;;
  up) install_all; start_all ;;
  stop) stop_all ;;
  status) status_all ;;
  *) echo "usage: $0 install|start|up|stop|status" >&2; exit 2 ;;
esac
