#!/usr/bin/env bash
# Join this machine to a Ray cluster as a worker node, in the foreground (Ctrl-C leaves the cluster).
#   usage: infra/ray/start_worker.sh HEAD_HOST:PORT [NUM_CPUS] [NUM_GPUS]
# Use the same RAY_AUTH_MODE as the head (see start_head.sh: "disabled" for a local or trusted
# network; "token" plus RAY_AUTH_TOKEN otherwise) and the store's AWS_* variables.
#   NODE_HOST=<this machine's address>  (default 127.0.0.1: a second node on the same machine)
set -euo pipefail
HEAD="${1:?usage: infra/ray/start_worker.sh HEAD_HOST:PORT [NUM_CPUS] [NUM_GPUS]}"
NUM_CPUS="${2:-}"
NUM_GPUS="${3:-}"
NODE_HOST="${NODE_HOST:-127.0.0.1}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="${RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER:-0}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
ARGS=(--address "$HEAD" --node-ip-address "$NODE_HOST" --disable-usage-stats --block)
[ -n "$NUM_CPUS" ] && ARGS+=(--num-cpus "$NUM_CPUS")
[ -n "$NUM_GPUS" ] && ARGS+=(--num-gpus "$NUM_GPUS")
echo "Ray worker node joining $HEAD (auth: $RAY_AUTH_MODE)"
exec ray start "${ARGS[@]}"
