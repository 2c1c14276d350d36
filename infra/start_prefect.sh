#!/usr/bin/env bash
# Start a Prefect API server with its UI on http://127.0.0.1:PORT and create the
# process work pools that deployments/prefect.yaml uses. The server stays in the
# foreground; Ctrl-C stops it. Its database lives under $PREFECT_HOME (~/.prefect).
#   usage: infra/start_prefect.sh [PORT]        (default 4200)
set -euo pipefail
PORT="${1:-4200}"
# = definitions.work_pools.ingest_pool.name and gpu_pool.name in deployments/prefect.yaml
POOLS=("breastflow-process" "breastflow-gpu")
API="http://127.0.0.1:$PORT/api"

env -u PREFECT_API_URL prefect server start --host 127.0.0.1 --port "$PORT" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 120); do
  curl -sf "$API/health" >/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "prefect server exited" >&2; exit 1; }
  sleep 1
done
curl -sf "$API/health" >/dev/null || { echo "prefect server not healthy after 120 s" >&2; exit 1; }
for POOL in "${POOLS[@]}"; do
  if ! PREFECT_API_URL="$API" prefect work-pool inspect "$POOL" >/dev/null 2>&1; then
    PREFECT_API_URL="$API" prefect work-pool create "$POOL" --type process
  fi
done
echo "Prefect server ready: UI http://127.0.0.1:$PORT  (export PREFECT_API_URL=$API)"
wait "$SERVER_PID"
