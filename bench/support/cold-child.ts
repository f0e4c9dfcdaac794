/**
 * One cold start, run by bench/cold.ts in a fresh Node process (with the function's environment,
 * NODE_OPTIONS=--enable-source-maps among it): imports the module given as the argument, which
 * for a storing function includes its top-level preload of the selected driver (the init of a
 * Lambda container), and prints the milliseconds the import took and the JavaScript it loaded.
 *
 * Bytes are counted by a module load hook on every file the import reads (entry and chunks), not
 * taken from file sizes; this script is loaded before the hook and is not counted.
 */
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

export interface ColdSample {
  ms: number;
  bytes: number;
  modules: number;
}

const target = process.argv[2];
if (!target) {
  console.error('usage: node bench/support/cold-child.ts <module.mjs>');
  process.exit(2);
}

let bytes = 0;
let modules = 0;
registerHooks({
  load(url, context, nextLoad) {
    const result = nextLoad(url, context);
    if (url.startsWith('file:') && result.source !== undefined && result.source !== null) {
      bytes += typeof result.source === 'string' ? Buffer.byteLength(result.source) : result.source.byteLength;
      modules++;
    }
    return result;
  },
});

const href = pathToFileURL(target).href;
const started = performance.now();
await import(href);
const sample: ColdSample = { ms: performance.now() - started, bytes, modules };
// On a line of its own: whatever the function logs during init goes to stdout too.
process.stdout.write(`\n${JSON.stringify(sample)}\n`);
