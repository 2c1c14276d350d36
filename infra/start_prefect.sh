#!/usr/bin/env bash
# Start a Prefect API server (UI on http://127.0.0.1:4200) and a process work pool + worker.
set -euo pipefail
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:4200/api}"
prefect server start --host 127.0.0.1 --port 4200 &
SERVER_PID=$!
until curl -sf "$PREFECT_API_URL/health" >/dev/null; do sleep 1; done
prefect work-pool create breastflow-process --type process 2>/dev/null || true
echo "Prefect server pid $SERVER_PID; starting worker (Ctrl-C stops it)"
exec prefect worker start --pool breastflow-process --work-queue ingest
