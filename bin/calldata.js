#!/usr/bin/env node
// The `calldata` command on any Node that package.json's engines allows.
// In a checkout, on a Node that runs TypeScript (Node 24, which npm scripts and npx put first on
// PATH there), the sources run directly, so what runs is always what is checked out. Anywhere
// else (an installed package ships no sources; Node 20 cannot run them) the compiled dist/ runs.
import { existsSync } from 'node:fs';

const source = new URL('../functions/cli/calldata.ts', import.meta.url);
const compiled = new URL('../dist/functions/cli/calldata.js', import.meta.url);

if (process.features.typescript && existsSync(source)) {
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(`calldata: this checkout is not built for Node ${process.versions.node}; run \`npm run build\` in ${new URL('..', import.meta.url).pathname} (or use Node 24)\n`);
  process.exitCode = 2;
}
