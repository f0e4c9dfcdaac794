#!/usr/bin/env bash
# The package build: dist/ holds JavaScript and .d.ts files for the package's entry points
# (package.json "exports") and the CLI, compiled by tsc from the TypeScript sources
# (tsconfig.build.json), plus the browse page's static files. Incremental: a rebuild with no
# change takes about a second. `npm pack` runs it (prepack); `npm ci` does not (no prepare
# script): inside the clone the CLI runs from the TypeScript sources, `npm run build` makes dist/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

# A source deleted since the last build would leave its output behind, to be packed.
if [ -d dist ]; then
  find dist -name '*.js' -not -path 'dist/functions/cli/browse/web/*' | while read -r out; do
    source="${out#dist/}"
    [ -f "${source%.js}.ts" ] || rm -f "$out" "${out%.js}.d.ts"
  done
fi
tsc -p tsconfig.build.json
# The browse page is plain files the server reads next to its module.
rm -rf dist/functions/cli/browse/web
mkdir -p dist/functions/cli/browse
cp -R functions/cli/browse/web dist/functions/cli/browse/web
rm -f dist/functions/cli/browse/web/tsconfig.json
