#!/usr/bin/env bash
# Run a Prefect process worker for breastflow's deployments (foreground; Ctrl-C stops it).
# Each flow run is a subprocess that inherits this shell's environment: set here
#   PREFECT_API_URL            the server (infra/start_prefect.sh prints it)
#   BREASTFLOW_PSEUDONYM_KEY   unless the runs read the key from a Secret block
#   BREASTFLOW_DASK_SCHEDULER  optional, tcp://HOST:PORT of infra/start_dask.sh
#   AWS_*                      when landing zone or store are on S3 (infra/start_s3_local.sh)
#   usage: infra/start_worker.sh [--run-once]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${PREFECT_API_URL:?set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api (infra/start_prefect.sh)}"
# the deployment's pull step makes this checkout the flow run's working directory
export BREASTFLOW_REPO="${BREASTFLOW_REPO:-$REPO}"
# BREASTFLOW_POOL / BREASTFLOW_QUEUE: another pool of deployments/prefect.yaml (breastflow-gpu / train)
exec prefect worker start --pool "${BREASTFLOW_POOL:-breastflow-process}" --work-queue "${BREASTFLOW_QUEUE:-ingest}" "$@"
