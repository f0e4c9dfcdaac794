#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies (Node 24 included), the real
# servers, type-check, then every vitest project. Later runs reuse what is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
export PATH="$PWD/node_modules/.bin:$PATH"
echo "node $(node -v)"

bash scripts/servers.sh up

# The pipeline logs every snapshot at INFO; keep the CI log to what matters.
export POWERTOOLS_LOG_LEVEL="${POWERTOOLS_LOG_LEVEL:-WARN}"

tsc --noEmit -p .

report="$(mktemp -d)/vitest.json"
set +e
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
# vitest's own summary is not a line CI reads; print the plain one.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (r.numTotalTests === 0) process.exit(1);
' "$report" || status=1
exit $status
