#!/usr/bin/env bash
# The LocalStack profile of the stack: `npm run cdklocal -- bootstrap|deploy|destroy [cdk options]`.
# Points the CDK CLI (through aws-cdk-local) at LocalStack and synthesizes with the context value
# localstack=true (no worker service, path-style S3 in the functions, everything destroyed on
# delete). Deploy settings are CDK context only: pass more with -c key=value.
#   AWS_ENDPOINT_URL   LocalStack's edge URL (default http://127.0.0.1:4566; on a laptop with
#                      LocalStack in Docker http://localhost:4566 works too)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$PATH"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
# *.localhost.localstack.cloud need not resolve: S3 goes to the same endpoint, path-style.
export AWS_ENDPOINT_URL_S3="${AWS_ENDPOINT_URL_S3:-$AWS_ENDPOINT_URL}"
# aws-cdk-local's own S3 client (asset uploads) goes path-style too.
export AWS_S3_FORCE_PATH_STYLE=true
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=1
cd "$ROOT"
exec cdklocal "$@" -c localstack=true --no-notices
