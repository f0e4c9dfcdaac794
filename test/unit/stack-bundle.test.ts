/**
 * The functions are bundled by the locally installed esbuild (no Docker) into one ESM file
 * each, with a linked source map, and the bundle loads in plain Node 24 and exports `handler`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER } from '../../infra/calldata-function.ts';
import { logicalId, synth, type Synthesized } from './stack-fixture.ts';

let synthesized: Synthesized;

function assetDir(fn: string): string {
  const id = logicalId(synthesized.template, 'AWS::Lambda::Function', fn);
  const written = JSON.parse(readFileSync(join(synthesized.outdir, synthesized.stack.templateFile), 'utf8')) as { Resources: Record<string, { Metadata: Record<string, string> }> };
  return join(synthesized.outdir, written.Resources[id]?.Metadata['aws:asset:path'] ?? 'missing-asset');
}

beforeAll(() => {
  // No Docker on this machine: a synth that needed it would fail here.
  synthesized = synth({ deployWorker: false, callRecording: true, livekitUrl: 'wss://x.livekit.cloud' }, { bundle: true });
}, 120_000);

describe('function bundles', { timeout: 60_000 }, () => {
  for (const fn of ['PersistFunction', 'RecordingFunction', 'WebhookFunction', 'SweeperFunction']) {
    it(`${fn} is one ESM file with the require banner and a linked source map, built without Docker`, () => {
      // Prepare
      const dir = assetDir(fn);

      // Act
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');

      // Assess
      expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
      expect(code).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
      // The AWS SDK is bundled (pinned by package-lock.json), not taken from the runtime.
      expect(code).not.toMatch(/from\s*"@aws-sdk\//);
      expect(code).toMatch(/export\s*\{[^}]*\bhandler\b/);
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
});
