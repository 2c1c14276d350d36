#!/usr/bin/env bash
# A local S3-compatible endpoint for development (moto server), with two buckets.
# Production: MinIO or AWS S3; only the environment below changes.
set -euo pipefail
PORT="${1:-9000}"
moto_server -H 127.0.0.1 -p "$PORT" &
until curl -sf "http://127.0.0.1:$PORT" >/dev/null; do sleep 0.5; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
python - <<'PY'
import boto3
s3 = boto3.client("s3")
for bucket in ("breastflow-landing", "breastflow-store"):
    s3.create_bucket(Bucket=bucket)
print("buckets ready")
PY
echo "export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
wait
