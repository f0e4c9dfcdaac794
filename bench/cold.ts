/**
 * `npm run bench:cold`: the cold start of each deployed Lambda bundle, per location kind.
 *
 * Builds the bundles by synthesizing the real app (the same code path as `cdk deploy`,
 * infra/bundle.ts), and, in the same run, the previous configuration (one file per function with
 * every driver, as NodejsFunction built it). Then, for each function × location kind, it starts
 * fresh Node 24 processes with the function's environment as the template sets it (so with
 * NODE_OPTIONS=--enable-source-maps, as deployed) and imports the bundle: the init of a Lambda
 * container, which for persist and sweeper includes loading the driver the location selects
 * (functions/shared/preload.ts). Each figure is the median of BENCH_RUNS (default 5) processes,
 * the three variants interleaved so that machine load hits them alike:
 *
 *   baseline   an empty module, imported the same way (what Node itself costs)
 *   old        the single-file bundle
 *   new        the split bundle as deployed
 *
 * ms is the import's wall time measured inside the process; it is all CPU (parsing, compiling
 * and running module code; no I/O wait), so it follows the bytes. Bytes is the JavaScript the
 * import loaded, summed by a module load hook (bench/support/cold-child.ts). No server is
 * needed: init connects to nothing.
 *
 * Targets: new ≤ 100 ms for every function with a database location, and new bytes at most half
 * of old. Quote the ratios: on a busy 2-core machine the absolute figures move by a third.
 *
 * Not measured here: what a first invocation loads on top of init: the driver of a location held
 * in Secrets Manager (known once the secret is read), and the SQS client when persist sends
 * recording commands.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bundleSingleFile, PROJECT_ROOT } from '../infra/bundle.ts';
import { ENTRIES } from '../infra/calldata-stack.ts';
import type { ColdSample } from './support/cold-child.ts';
import { buildDeployedBundles, deployedEnvironments, FUNCTIONS, removeSynthesized, type FunctionName } from './support/cold-stack.ts';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TARGET_MS = 100;
const CHILD = join(PROJECT_ROOT, 'bench/support/cold-child.ts');

/**
 * One location of each kind functions/storage/select.ts knows; nothing connects to them at init.
 * Without passwords: the stack refuses those in plain context (they belong in Secrets Manager,
 * and then the driver loads with the first invocation, after the secret is read).
 */
const LOCATIONS = {
  postgres: 'postgres://calldata@db.internal:5432/calldata',
  mysql: 'mysql://calldata@db.internal:3306/calldata',
  redis: 'redis://cache.internal:6379/0',
  mongodb: 'mongodb://docs.internal:27017/calldata',
  s3: 's3',
  local: '/tmp/calldata',
} as const;
type LocationKind = keyof typeof LOCATIONS;
const DATABASES: readonly LocationKind[] = ['postgres', 'mysql', 'redis', 'mongodb'];
/** Only these read the location settings; the others get none and are measured once. */
const STORING: ReadonlySet<FunctionName> = new Set(['Persist', 'Sweeper']);

type Variant = 'baseline' | 'old' | 'new';
const VARIANTS: readonly Variant[] = ['baseline', 'old', 'new'];

interface Case {
  fn: FunctionName;
  location: LocationKind | undefined;
  env: Record<string, string>;
  modules: Record<Variant, string>;
  samples: Record<Variant, ColdSample[]>;
}

async function coldStart(module: string, env: Record<string, string>, cwd: string): Promise<ColdSample> {
  const { stdout } = await run(process.execPath, [CHILD, module], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      // What the Lambda runtime sets besides the function's own variables.
      AWS_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      ...env,
    },
  });
  return JSON.parse(stdout.trimEnd().split('\n').at(-1) ?? '') as ColdSample;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(work: string): Promise<void> {
  console.log('building the deployed bundles (cdk synth) and the previous single-file bundles…');
  const deployed = buildDeployedBundles();
  const entries: Record<FunctionName, string> = { Persist: ENTRIES.persist, Sweeper: ENTRIES.sweeper, Webhook: ENTRIES.webhook, Recording: ENTRIES.recording };
  const old = Object.fromEntries(FUNCTIONS.map((fn) => [fn, bundleSingleFile(entries[fn], join(work, 'old', fn)).entry])) as Record<FunctionName, string>;
  const empty = join(work, 'empty.mjs');
  writeFileSync(empty, 'export {};\n');

  const cases: Case[] = [];
  for (const kind of Object.keys(LOCATIONS) as LocationKind[]) {
    const envs = deployedEnvironments(LOCATIONS[kind]);
    for (const fn of FUNCTIONS) {
      const storing = STORING.has(fn);
      if (!storing && kind !== 'postgres') continue;
      cases.push({
        fn,
        location: storing ? kind : undefined,
        env: envs[fn],
        modules: { baseline: empty, old: old[fn], new: join(deployed[fn], 'index.mjs') },
        samples: { baseline: [], old: [], new: [] },
      });
    }
  }

  console.log(`${cases.length} cases × ${VARIANTS.length} variants × ${RUNS} fresh processes (after one untimed warm-up each)…`);
  for (const c of cases) for (const v of VARIANTS) await coldStart(c.modules[v], c.env, work);
  for (let round = 0; round < RUNS; round++) {
    for (const c of cases) {
      // Rotate the order each round, so no variant always runs first.
      for (let i = 0; i < VARIANTS.length; i++) {
        const variant = VARIANTS[(i + round) % VARIANTS.length] as Variant;
        c.samples[variant].push(await coldStart(c.modules[variant], c.env, work));
      }
    }
  }

  const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;
  const ms = (value: number) => `${value.toFixed(1)}`;
  console.log(`\nCold import, median of ${RUNS} fresh Node ${process.version} processes with --enable-source-maps (ms; JavaScript loaded)`);
  const header = ['function', 'location', 'baseline ms', 'old ms', 'new ms', 'new/old', 'old loaded', 'new loaded', 'new/old', `≤${TARGET_MS} ms`, 'bytes ≤½'];
  const rows: string[][] = [];
  const missed: string[] = [];
  for (const c of cases) {
    const m = (v: Variant) => median(c.samples[v].map((s) => s.ms));
    const b = (v: Variant) => median(c.samples[v].map((s) => s.bytes));
    const database = c.location !== undefined && DATABASES.includes(c.location);
    const timeMet = m('new') <= TARGET_MS;
    const bytesMet = b('new') <= b('old') / 2;
    const label = `${c.fn}${c.location ? ` ${c.location}` : ''}`;
    if (database && !timeMet) missed.push(`${label}: ${ms(m('new'))} ms > ${TARGET_MS} ms`);
    if (!bytesMet) missed.push(`${label}: ${kb(b('new'))} loaded is more than half of ${kb(b('old'))}`);
    rows.push([
      c.fn,
      c.location ?? '(none)',
      ms(m('baseline')),
      ms(m('old')),
      ms(m('new')),
      `${(m('new') / m('old')).toFixed(2)}×`,
      kb(b('old')),
      `${kb(b('new'))} (${median(c.samples.new.map((s) => s.modules))} files)`,
      `${(b('new') / b('old')).toFixed(2)}×`,
      database ? (timeMet ? 'met' : 'MISSED') : '—',
      bytesMet ? 'met' : 'MISSED',
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log(missed.length === 0 ? '\nAll targets met.' : `\nTargets missed:\n  ${missed.join('\n  ')}`);
}

const work = mkdtempSync(join(tmpdir(), 'calldata-bench-cold-'));
try {
  await main(work);
} finally {
  rmSync(work, { recursive: true, force: true });
  removeSynthesized();
}
