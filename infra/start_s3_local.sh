#!/usr/bin/env bash
# A local S3-compatible endpoint for development (moto server on 127.0.0.1) with the
# buckets breastflow-landing and breastflow-store. Foreground; Ctrl-C stops it (and its
# data: moto keeps everything in memory). Production: MinIO or AWS S3, same variables.
#   usage: infra/start_s3_local.sh [PORT]       (default 9000)
set -euo pipefail
PORT="${1:-9000}"
moto_server -H 127.0.0.1 -p "$PORT" &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT" >/dev/null && break; sleep 0.5; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_DEFAULT_REGION=us-east-1
python - <<'PY'
import boto3

s3 = boto3.client("s3")
for bucket in ("breastflow-landing", "breastflow-store"):
    s3.create_bucket(Bucket=bucket)
print("buckets ready: s3://breastflow-landing s3://breastflow-store")
PY
echo "export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
wait "$MOTO_PID"
