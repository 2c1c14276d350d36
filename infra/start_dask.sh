#!/usr/bin/env bash
# Start a Dask scheduler and N single-threaded workers on this host (one series per worker at a time).
# Point breastflow at it with:  export BREASTFLOW_DASK_SCHEDULER=tcp://127.0.0.1:8786
#   (flows) or  breastflow ingest SRC STORE --scheduler tcp://127.0.0.1:8786  (CLI).
# Workers need the same environment as the client: AWS_* for S3 (no key needed: the
# pseudonym key stays in the planning process).
set -euo pipefail
WORKERS="${1:-2}"
dask scheduler --host 127.0.0.1 --port 8786 --dashboard-address 127.0.0.1:8787 &
sleep 2
for _ in $(seq "$WORKERS"); do
  dask worker tcp://127.0.0.1:8786 --nthreads 1 --memory-limit auto &
done
wait
