#!/usr/bin/env bash
# Start, stop or restart one panel instance of the CI topology from deploy/pg-admin@.service,
# the way systemd would (SIGTERM, wait for the exit, start, wait for /healthz).
#   deploy/ci/instance.sh start|stop|restart WORK_DIR PORT
set -euo pipefail
cd "$(dirname "$0")/../.."
action=$1 work=$2 port=$3

start() {
  .venv/bin/python deploy/ci/run_unit.py deploy/pg-admin@.service "$port" --root "$(pwd)" \
    --env-file "$work/${TOPO_ENV_FILE:-env}" --state "$work/state" --log "$work/app-$port.log" \
    --pid "$work/app-$port.pid"
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    sleep 0.2
  done
  echo "instance $port did not start" >&2
  tail -20 "$work/app-$port.log" >&2
  return 1
}

stop() {
  local pid
  pid=$(cat "$work/app-$port.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

case $action in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|restart WORK_DIR PORT" >&2; exit 2 ;;
esac
