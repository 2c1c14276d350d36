#!/usr/bin/env bash
# Start a Dask scheduler on tcp://127.0.0.1:PORT and N single-threaded workers
# (one series in memory per worker). Foreground; Ctrl-C stops all of them.
#   usage: infra/start_dask.sh [N] [PORT]       (defaults 2, 8786; dashboard on PORT+1)
# Point breastflow at it with  export BREASTFLOW_DASK_SCHEDULER=tcp://127.0.0.1:PORT
# (on the Prefect worker) or   breastflow ingest SRC STORE --scheduler tcp://127.0.0.1:PORT.
# Scheduler and workers unpickle breastflow's Prefect tasks, so this checkout goes on
# PYTHONPATH; Prefect tasks on the workers report to PREFECT_API_URL (without it every
# worker process would start its own temporary Prefect server). Workers also need AWS_*
# for S3; never the pseudonym key (it stays in the flow's planning process).
set -euo pipefail
WORKERS="${1:-2}"
PORT="${2:-8786}"
DASHBOARD="${DASK_DASHBOARD_ADDRESS:-127.0.0.1:$((PORT + 1))}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ -n "${PREFECT_API_URL:-}" ] || echo "warning: PREFECT_API_URL is unset; Prefect tasks on these workers will be slow" >&2
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
dask scheduler --host 127.0.0.1 --port "$PORT" --dashboard-address "$DASHBOARD" &
for _ in $(seq 60); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.5; done
for _ in $(seq "$WORKERS"); do
  dask worker "tcp://127.0.0.1:$PORT" --host 127.0.0.1 --nthreads 1 --memory-limit auto --no-dashboard &
done
echo "Dask scheduler tcp://127.0.0.1:$PORT with $WORKERS workers (dashboard http://$DASHBOARD/status)"
wait
