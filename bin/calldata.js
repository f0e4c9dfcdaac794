#!/usr/bin/env node
// Runs on Node 24 (the `node` package puts it first on PATH for npm scripts and npx),
// which loads the TypeScript sources directly.
await import('../functions/cli/calldata.ts');
