#!/usr/bin/env bash
# Start a Ray head node (GCS on HOST:PORT, dashboard on HOST:DASHBOARD_PORT) in the foreground.
# Ctrl-C (or `kill <pid of this script>`) stops it and what it started; never use `ray stop`
# on a shared machine: it kills every Ray process of every user by name.
#   usage: infra/ray/start_head.sh [NUM_CPUS] [PORT]        (defaults: all CPUs, 6379)
#   then:  export RAY_ADDRESS=HOST:PORT && breastflow train pix2pixhd STORE ...
#
# Settings (override any of them in the environment before running):
#   HOST=127.0.0.1                         where the head listens; a LAN address for multi-node clusters.
#   RAY_AUTH_MODE=disabled                 Ray 2.60 turns token auth on for every new cluster and writes
#                                          ~/.ray/auth_token; without the token the dashboard's /api calls
#                                          answer 401 and clients cannot submit jobs. "disabled" keeps a
#                                          local/trusted-network dashboard usable with no token setup.
#                                          On a shared network use RAY_AUTH_MODE=token and hand the token
#                                          to clients (RAY_AUTH_TOKEN) instead.
#   RAY_USAGE_STATS_ENABLED=0              no usage reports (the machine may have no internet anyway).
#   RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0    with HOST=127.0.0.1, keeps the node IP and GCS on loopback
#                                          (otherwise Ray rewrites 127.0.0.1 to the eth0 address).
#   DASHBOARD_PORT=8265
# Workers need the store's AWS_* variables too: export them here (they reach the Train
# workers through the runtime environment breastflow passes as well).
set -euo pipefail
NUM_CPUS="${1:-}"
PORT="${2:-6379}"
HOST="${HOST:-127.0.0.1}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8265}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="${RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER:-0}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
ARGS=(--head --node-ip-address "$HOST" --port "$PORT" --dashboard-host "$HOST" --dashboard-port "$DASHBOARD_PORT"
      --include-dashboard true --disable-usage-stats --block)
[ -n "$NUM_CPUS" ] && ARGS+=(--num-cpus "$NUM_CPUS")
echo "Ray head: RAY_ADDRESS=$HOST:$PORT  dashboard http://$HOST:$DASHBOARD_PORT  (auth: $RAY_AUTH_MODE)"
exec ray start "${ARGS[@]}"
