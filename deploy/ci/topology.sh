#!/usr/bin/env bash
# CI topology job: PostgreSQL 15 primary + streaming replica (pg_basebackup), PgBouncer 1.18
# in transaction mode in front of the primary, two panel instances started from
# deploy/pg-admin@.service, nginx from deploy/nginx.conf in front of them (HTTP/2 over TLS).
# Then: the tests of the app's own connections (every test on the `settings` fixture, the
# browser tests aside) with those connections through PgBouncer,
# and tests/topology/ through nginx (1M-row CSV, live feed across a rolling restart with a
# lagging replica, read-your-writes against a delayed replica, /metrics). Every stage runs;
# the job fails if any failed, and prints each stage's wall time.
#   deploy/ci/topology.sh            # everything
#   deploy/ci/topology.sh up         # start the topology and wait (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
MODE=${1:-all}

PGBIN=/usr/lib/postgresql/15/bin
PRIMARY_PORT=${TOPO_PRIMARY_PORT:-25433}
REPLICA_PORT=${TOPO_REPLICA_PORT:-25434}
BOUNCER_PORT=${TOPO_BOUNCER_PORT:-26432}
APP_PORTS=(${TOPO_APP_PORTS:-28001 28002})
HTTPS_PORT=${TOPO_HTTPS_PORT:-28443}
HTTP_PORT=${TOPO_HTTP_PORT:-28080}
PGPW=topology-ci-password
ADMIN_PASSWORD=topology-admin-password
export PGPASSWORD=$PGPW

need=()
for tool in pgbouncer nginx openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
[ -x "$PGBIN/initdb" ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || { python3 -m venv .venv; .venv/bin/pip install -q -e '.[test]'; }

WORK=$(mktemp -d /tmp/pg-admin-topology.XXXXXX)
chmod 755 "$WORK"
chown postgres: "$WORK"
as_pg() { su postgres -s /bin/bash -c "$*"; }

cleanup() {
  set +e
  for port in "${APP_PORTS[@]}"; do
    [ -f "$WORK/app-$port.pid" ] && kill -TERM "$(cat "$WORK/app-$port.pid")" 2>/dev/null
  done
  [ -f "$WORK/nginx.pid" ] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null
  [ -f "$WORK/pgbouncer.pid" ] && kill -TERM "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null
  sleep 1
  as_pg "$PGBIN/pg_ctl -D $WORK/replica -m immediate stop" >/dev/null 2>&1
  as_pg "$PGBIN/pg_ctl -D $WORK/primary -m fast stop" >/dev/null 2>&1
  if [ "${KEEP_TOPOLOGY_LOGS:-}" = "" ]; then rm -rf "$WORK"; else echo "logs in $WORK"; fi
}
trap cleanup EXIT

echo "== primary on $PRIMARY_PORT, replica on $REPLICA_PORT"
echo "$PGPW" > "$WORK/pwfile"
chown postgres: "$WORK/pwfile"
as_pg "$PGBIN/initdb -D $WORK/primary -U postgres -A scram-sha-256 --pwfile=$WORK/pwfile" >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<CONF
port = $PRIMARY_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_connections = 300
wal_level = replica
max_wal_senders = 5
hot_standby = on
# a throwaway CI cluster: durability is not under test
fsync = off
CONF
as_pg "$PGBIN/pg_ctl -D $WORK/primary -l $WORK/primary.log -w start" >/dev/null
as_pg "PGPASSWORD=$PGPW $PGBIN/pg_basebackup -h 127.0.0.1 -p $PRIMARY_PORT -U postgres -D $WORK/replica -R -X stream"
echo "port = $REPLICA_PORT" >> "$WORK/replica/postgresql.auto.conf"
as_pg "$PGBIN/pg_ctl -D $WORK/replica -l $WORK/replica.log -w start" >/dev/null
psql_primary() { psql -X -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres "$@"; }
psql_primary -c "CREATE DATABASE panel"

echo "== pgbouncer (transaction mode) on $BOUNCER_PORT"
echo "\"postgres\" \"$PGPW\"" > "$WORK/userlist.txt"
sed -e "s|port=5432|port=$PRIMARY_PORT|" \
    -e "s|^listen_port = 6432|listen_port = $BOUNCER_PORT|" \
    -e "s|^auth_file = .*|auth_file = $WORK/userlist.txt|" \
    -e "s|^logfile = .*|logfile = $WORK/pgbouncer.log|" \
    -e "s|^pidfile = .*|pidfile = $WORK/pgbouncer.pid|" \
    deploy/pgbouncer.ini > "$WORK/pgbouncer.ini"
for expected in "port=$PRIMARY_PORT" "listen_port = $BOUNCER_PORT" "$WORK/userlist.txt"; do
  grep -q "$expected" "$WORK/pgbouncer.ini" || { echo "pgbouncer.ini changed: $expected" >&2; exit 1; }
done
chown postgres: "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
as_pg "pgbouncer -d $WORK/pgbouncer.ini"
pgbouncer --version | head -1

BOUNCER_URL="postgresql://postgres:$PGPW@127.0.0.1:$BOUNCER_PORT"
PRIMARY_URL="postgresql://postgres:$PGPW@127.0.0.1:$PRIMARY_PORT"
REPLICA_URL="postgresql://postgres:$PGPW@127.0.0.1:$REPLICA_PORT"
cat > "$WORK/env" <<ENV
DATABASE_URL=$BOUNCER_URL/panel
LISTEN_DATABASE_URL=$PRIMARY_URL/panel
DATABASE_REPLICA_URL=$REPLICA_URL/panel
SECRET_KEY=topology-ci-secret-key-shared-by-every-instance
METRICS_TOKEN=topology-ci-metrics-token
SHUTDOWN_GRACE_S=10
POOL_MAX_SIZE=20
SSE_MAX_PER_PROCESS=3000
SSE_MAX_PER_SESSION=3000
ENV

echo "== TLS certificate, nginx on https://127.0.0.1:$HTTPS_PORT"
mkdir -p "$WORK/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -keyout "$WORK/tls/panel.key" -out "$WORK/tls/panel.crt" 2>/dev/null
sed -e "s|listen 80;|listen $HTTP_PORT;|" \
    -e "s|listen 443 ssl http2;|listen $HTTPS_PORT ssl http2;|" \
    -e "s|127.0.0.1:8001|127.0.0.1:${APP_PORTS[0]}|" \
    -e "s|127.0.0.1:8002|127.0.0.1:${APP_PORTS[1]}|" \
    -e "s|/etc/pg-admin-panel/tls/|$WORK/tls/|g" \
    -e "s|/opt/pg-admin-panel/static/|$ROOT/static/|" \
    -e "s|/run/nginx.pid|$WORK/nginx.pid|" \
    -e "s|/var/log/nginx/|$WORK/nginx-|g" \
    deploy/nginx.conf > "$WORK/nginx.conf"
for expected in "listen $HTTPS_PORT ssl http2" "127.0.0.1:${APP_PORTS[1]}" "$ROOT/static/" "$WORK/tls/panel.key"; do
  grep -q "$expected" "$WORK/nginx.conf" || { echo "nginx.conf changed: $expected" >&2; exit 1; }
done
nginx -t -q -c "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf"

echo "== panel instances on ${APP_PORTS[*]} (deploy/pg-admin@.service)"
for port in "${APP_PORTS[@]}"; do bash deploy/ci/instance.sh start "$WORK" "$port"; done
# the instances' environment stays theirs: exported here it would reach the test suite below
(set -a; . "$WORK/env"; set +a
 ADMIN_PASSWORD=$ADMIN_PASSWORD .venv/bin/python -m admin create-staff ci-admin --role admin)

# what tests/topology/ needs to drive the topology
export TOPOLOGY_URL="https://127.0.0.1:$HTTPS_PORT"
export TOPOLOGY_ADMIN=ci-admin TOPOLOGY_PASSWORD=$ADMIN_PASSWORD
export TOPOLOGY_PRIMARY_URL="$PRIMARY_URL/panel" TOPOLOGY_REPLICA_URL="$REPLICA_URL/panel"
export TOPOLOGY_INSTANCES="${APP_PORTS[*]}"
export TOPOLOGY_RESTART="bash $ROOT/deploy/ci/instance.sh restart $WORK {port}"
export TOPOLOGY_METRICS_TOKEN=topology-ci-metrics-token

if [ "$MODE" = up ]; then
  echo "topology up (work dir $WORK); Ctrl-C stops it"
  for name in "${!TOPOLOGY_@}"; do printf 'export %s=%q\n' "$name" "${!name}"; done
  sleep infinity
fi

# Every stage runs even after one fails (the report names them all); any failure, or a stage
# that ran no test (pytest's exit 5), fails the job.
failed=()
timings=()
stage() {
  local name=$1 started=$SECONDS
  shift
  echo "== $name"
  "$@" || failed+=("$name")
  timings+=("$(printf '%5d s  %s' $((SECONDS - started)) "$name")")
}
timings+=("$(printf '%5d s  %s' "$SECONDS" "topology up")")

stage "the test suite with the app's connections through PgBouncer" \
  env TEST_POOLER_URL="$BOUNCER_URL/postgres" DATABASE_URL="$PRIMARY_URL/postgres" \
  bash tests/run.sh -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/topology

stage "tests/topology through nginx" \
  .venv/bin/python -m pytest -q -p no:cacheprovider --durations=10 tests/topology

echo "== wall time by stage"
printf '%s\n' "${timings[@]}"
echo "$(printf '%5d s  %s' "$SECONDS" total)"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
