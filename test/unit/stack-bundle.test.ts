/**
 * The functions are bundled by the locally installed esbuild (no Docker) into an ESM `index.mjs`
 * plus chunks (code splitting, infra/bundle.ts), every file with a linked source map; each bundle
 * loads in plain Node 24 and exports `handler`, and what `index.mjs` loads before any `import()`
 * holds no database driver: each driver is a chunk of its own.
 *
 * Which package a chunk holds is read from its source map's `sources` (the minified code names
 * nothing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_DIR, ESM_REQUIRE_BANNER } from '../../infra/bundle.ts';
import { logicalId, synth, type Synthesized } from './stack-fixture.ts';

let synthesized: Synthesized;

const FUNCTIONS = ['PersistFunction', 'RecordingFunction', 'WebhookFunction', 'SweeperFunction'] as const;
const DRIVERS = ['pg', 'mysql2', 'ioredis', 'mongodb'] as const;

function assetDir(fn: string): string {
  const id = logicalId(synthesized.template, 'AWS::Lambda::Function', fn);
  const written = JSON.parse(readFileSync(join(synthesized.outdir, synthesized.stack.templateFile), 'utf8')) as { Resources: Record<string, { Metadata: Record<string, string> }> };
  return join(synthesized.outdir, written.Resources[id]?.Metadata['aws:asset:path'] ?? 'missing-asset');
}

function chunksOf(dir: string): string[] {
  return readdirSync(join(dir, CHUNK_DIR))
    .filter((name) => name.endsWith('.mjs'))
    .map((name) => join(dir, CHUNK_DIR, name));
}

/** The files a module imports statically (`import … from "./x.mjs"`, not `import("./x.mjs")`), transitively. */
function staticClosure(entry: string): string[] {
  const seen = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    for (const match of code.matchAll(/\bimport\s*(?:[\w$*{][^"'()]*?\bfrom\s*)?["'](\.{1,2}\/[^"']+)["']/g)) {
      pending.push(resolve(dirname(file), match[1] as string));
    }
  }
  return [...seen];
}

/** The npm packages whose code a bundle file holds, from its source map. */
function packagesIn(file: string): Set<string> {
  const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] };
  const names = map.sources.map((source) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)?.[1]).filter((name): name is string => name !== undefined);
  return new Set(names);
}

beforeAll(() => {
  // No Docker on this machine: a synth that needed it would fail here.
  synthesized = synth({ deployWorker: false, callRecording: true, livekitUrl: 'wss://x.livekit.cloud' }, { bundle: true });
}, 120_000);

describe('function bundles', { timeout: 60_000 }, () => {
  for (const fn of FUNCTIONS) {
    it(`${fn} is an ESM entry plus chunks, each with the require banner and a linked source map, built without Docker`, () => {
      // Prepare
      const dir = assetDir(fn);

      // Act
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      const chunks = chunksOf(dir);

      // Assess
      expect(chunks.length).toBeGreaterThan(1);
      for (const file of [join(dir, 'index.mjs'), ...chunks]) {
        const text = readFileSync(file, 'utf8');
        expect(text.startsWith(ESM_REQUIRE_BANNER), file).toBe(true);
        expect(text, file).toMatch(/\/\/# sourceMappingURL=[\w.-]+\.mjs\.map\s*$/);
        expect(existsSync(`${file}.map`), file).toBe(true);
        // The AWS SDK is bundled (pinned by package-lock.json), not taken from the runtime.
        expect(text, file).not.toMatch(/from\s*"@aws-sdk\//);
      }
      expect(code).toMatch(/export\s*\{[^}]*\bhandler\b/);
      // Its own handler, not another function's bundle (CDK caches assets by bundling options).
      const handlerFile = `functions/${fn.replace('Function', '').toLowerCase()}/handler.ts`;
      const sources = (JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] }).sources;
      expect(sources.some((source) => source.endsWith(handlerFile)), handlerFile).toBe(true);
    });

    it(`${fn} loads in plain Node 24 and exports a handler function`, () => {
      // Prepare
      const file = join(assetDir(fn), 'index.mjs');
      const script = `const m = await import(${JSON.stringify(file)}); process.stdout.write(typeof m.handler);`;

      // Act
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', POWERTOOLS_DEV: 'false' },
        encoding: 'utf8',
        timeout: 30_000,
      });

      // Assess
      expect(output).toBe('function');
    });
  }

  for (const fn of ['PersistFunction', 'SweeperFunction']) {
    it(`${fn} loads no database driver before its location selects one; each driver is a chunk of its own`, () => {
      // Prepare
      const dir = assetDir(fn);

      // Act
      const closure = staticClosure(join(dir, 'index.mjs'));
      const loadedFirst = new Set(closure.flatMap((file) => [...packagesIn(file)]));
      const chunkPackages = chunksOf(dir).map((file) => ({ file, packages: packagesIn(file) }));

      // Assess
      // The walk and the map reading work: index.mjs imports shared chunks, and zod is among them.
      expect(closure.length).toBeGreaterThan(1);
      expect(loadedFirst.has('zod')).toBe(true);
      for (const driver of DRIVERS) {
        expect(loadedFirst.has(driver), `${driver} in what index.mjs loads`).toBe(false);
        const holders = chunkPackages.filter((c) => c.packages.has(driver));
        expect(holders, `chunks holding ${driver}`).toHaveLength(1);
        // …and that chunk holds no other driver.
        for (const other of DRIVERS.filter((d) => d !== driver)) expect(holders[0]?.packages.has(other), `${other} beside ${driver}`).toBe(false);
      }
    });
  }
});
