#!/usr/bin/env bash
# Restart panel instances one at a time, each only once the previous one answers /healthz
# again: nginx sends everything to the others meanwhile, and live streams resume there.
#   deploy/rolling-restart.sh 8001 8002
# RESTART_CMD overrides how one instance restarts (the CI job uses its own runner).
set -euo pipefail
restart=${RESTART_CMD:-"systemctl restart pg-admin@{port}"}
for port in "$@"; do
  echo "restarting the instance on port $port"
  bash -c "${restart//\{port\}/$port}"
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"; then
      break
    fi
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || {
    echo "instance on port $port did not come back" >&2
    exit 1
  }
done
