/**
 * `npm run bench:query [backend…]`: how fast each storage backend lists calls (`queryCalls`) and
 * reads one (`read`) with many calls stored, against the same rows read by hand through the
 * driver (bench/support/query-raw.ts). Backends: postgres, mysql, mongodb, redis, s3, local
 * (default all). Needs the test servers (`npm run servers -- up`).
 *
 *   BENCH_CALLS=100000    calls stored per backend (LocalStack S3 and FerretDB: fewer, see SCALE;
 *                         every backend also stops seeding at BENCH_SEED_BUDGET_S; the table shows
 *                         the calls actually stored)
 *   BENCH_SEED_BUDGET_S   seconds of seeding per backend at most (default 300)
 *   BENCH_REPS=21         timed repetitions per query (the median is shown), after 5 warm-up ones
 *
 * Per backend, in a location of its own (a PostgreSQL schema, a MariaDB database, a MongoDB
 * database, an empty Redis database, an S3 bucket, a temp folder; all removed at the end):
 *   1. seed: the calls of bench/support/query-calls.ts (20 rooms, 10 agent lines, ~5 calls per
 *      caller, a mix of outcomes) through `backend.merge`, in big batches, several in flight;
 *   2. measure, each query timed alternately with its raw twin (order swapped every repetition):
 *        newest 50           queryCalls({ limit: 50 })
 *        room                queryCalls({ limit: 50, room })           a room with 5 % of the calls
 *        number (line)       queryCalls({ limit: 50, number })         an agent line, 10 % of the calls
 *        number (caller)     queryCalls({ limit: 50, number })         a caller with a handful of calls
 *        read one call       read(callId)                              record + both documents (answered calls)
 *      and checked: the backend's page must hold the same calls in the same order as the raw query's.
 *
 * Targets: every query within 2× of the raw one (backend ms ÷ raw ms ≤ 2); on the databases
 * (PostgreSQL, MySQL, MongoDB, Redis) every page under 50 ms on loopback. MongoDB's figures are
 * FerretDB's (the MongoDB protocol over SQLite), not a MongoDB server's.
 */
import './support/quiet.ts';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { recordModel } from '../functions/domain/model.ts';
import type { BackendOptions, CallQuery, StorageBackend } from '../functions/storage/backend.ts';
import { InvalidQueryError } from '../functions/storage/errors.ts';
import { s3Client } from '../functions/shared/s3-client.ts';
import { createBucket, s3SettingsFor } from '../test/support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../test/support/servers.ts';
import { AGENT_LINES, deltas, ROOMS, userNumber } from './support/query-calls.ts';
import { rawLocal, rawMongo, rawMysql, rawPostgres, rawRedis, rawS3, type PageFilter, type RawDriver } from './support/query-raw.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 100_000);
const BUDGET_MS = Number(process.env.BENCH_SEED_BUDGET_S ?? 300) * 1000;
const REPS = Number(process.env.BENCH_REPS ?? 21);
const WARMUP = 5;
const PAGE = 50;
const TZ = 'Asia/Kolkata';
const RUN = randomUUID().replaceAll('-', '').slice(0, 8);
const OPTIONS: BackendOptions = { documents: ['metadata', 'transcription'], model: recordModel(TZ) };
/** Share of BENCH_CALLS stored on the servers where every write is slow (see the table's "calls"). */
/** LocalStack's S3 stores about 65 calls/s here (8 requests a call, its CPU the limit): 12 000 take about 4 minutes. */
/** FerretDB (MongoDB over SQLite) scans the collection for every page and writes slowly: 3 000. */
const SCALE: Record<string, number> = { s3: 0.12, mongodb: 0.03 };
const DATABASES = new Set(['postgres', 'mysql', 'mongodb', 'redis']);
const ALL = ['postgres', 'mysql', 'mongodb', 'redis', 's3', 'local'] as const;
type Name = (typeof ALL)[number];

interface Target {
  backend: StorageBackend;
  raw: RawDriver;
  /** Run after seeding (e.g. statistics), with a note for the table. */
  afterSeed?: () => Promise<string | undefined>;
  cleanup: () => Promise<void>;
}

interface Plan {
  name: Name;
  label: string;
  /** The storage file whose own queryCalls makes the backend measurable. */
  file: string;
  /** Calls in one merge, and merges in flight at once. */
  batch: number;
  parallel: number;
  open: () => Promise<Target>;
}

interface Measured {
  label: string;
  backendMs: number;
  rawMs: number;
  /** Every raw form's median, when there are several. */
  forms: { label: string; ms: number }[];
  page: boolean;
  rows: number;
  problem?: string;
}

interface Result {
  plan: Plan;
  calls: number;
  seedSeconds: number;
  notes: string[];
  measured: Measured[];
  notReady?: string;
  raw?: RawDriver;
}

const cleanups = new Set<() => Promise<void>>();
function onCleanup(cleanup: () => Promise<void>): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    cleanups.delete(once);
    await cleanup().catch((error: unknown) => process.stderr.write(`cleanup failed: ${String(error)}\n`));
  };
  cleanups.add(once);
  return once;
}

const log = (text: string) => process.stderr.write(`${text}\n`);

// ---- locations ---------------------------------------------------------------------------------

const PLANS: Record<Name, Plan> = {
  postgres: {
    name: 'postgres',
    label: 'postgres',
    file: 'postgres.ts',
    batch: 1_000,
    parallel: 4,
    open: async () => {
      const url = new URL(await requireServer('postgres'));
      const admin = new pg.Client({ connectionString: url.toString() });
      await admin.connect();
      const schema = `calldata_qbench_${RUN}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      const cleanup = onCleanup(async () => {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.end();
      });
      url.searchParams.set('options', `-c search_path=${schema}`);
      const { PostgresBackend } = await import('../functions/storage/postgres.ts');
      return {
        backend: new PostgresBackend(url.toString(), OPTIONS),
        raw: rawPostgres(url.toString()),
        // What autovacuum does after a bulk load; both sides read the same table.
        afterSeed: async () => {
          await admin.query(`VACUUM ANALYZE ${schema}.call_records`);
          return 'VACUUM ANALYZE after seeding (what autovacuum does after a bulk load)';
        },
        cleanup,
      };
    },
  },
  mysql: {
    name: 'mysql',
    label: 'mysql (MariaDB)',
    file: 'mysql.ts',
    batch: 1_000,
    parallel: 4,
    open: async () => {
      const url = new URL(await requireServer('mysql'));
      const admin = await mysql.createConnection({ uri: url.toString() });
      const database = `calldata_qbench_${RUN}`;
      await admin.query(`CREATE DATABASE ${database}`);
      const cleanup = onCleanup(async () => {
        await admin.query(`DROP DATABASE ${database}`);
        await admin.end();
      });
      url.pathname = `/${database}`;
      const { MysqlBackend } = await import('../functions/storage/mysql.ts');
      return {
        backend: new MysqlBackend(url.toString(), OPTIONS),
        raw: rawMysql(url.toString()),
        afterSeed: async () => {
          await admin.query(`ANALYZE TABLE ${database}.call_records`);
          return 'ANALYZE TABLE after seeding (fresh index statistics; both sides read the same table)';
        },
        cleanup,
      };
    },
  },
  mongodb: {
    name: 'mongodb',
    label: 'mongodb (FerretDB)',
    file: 'mongodb.ts',
    // FerretDB applies a bulk write one document at a time in SQLite; 1 000 at once outlast the driver's timeout.
    batch: 100,
    parallel: 2,
    open: async () => {
      const url = new URL(await requireServer('mongodb'));
      url.pathname = `/calldata_qbench_${RUN}`;
      const location = url.toString();
      const admin = new MongoClient(location, { serverSelectionTimeoutMS: 10_000, socketTimeoutMS: 60_000 });
      // FerretDB under load can stop answering: find out in seconds, not at the first write.
      const answered = await Promise.race([admin.db('admin').command({ ping: 1 }).then(() => true), new Promise<false>((done) => setTimeout(() => done(false), 15_000).unref())]).catch(() => false);
      if (!answered) {
        await admin.close(true).catch(() => undefined);
        throw new Error('the MongoDB server (FerretDB) accepts connections but does not answer a ping within 15 s');
      }
      const cleanup = onCleanup(async () => {
        await admin.db().dropDatabase();
        await admin.close();
      });
      const { MongoBackend } = await import('../functions/storage/mongodb.ts');
      return { backend: new MongoBackend(location, OPTIONS), raw: rawMongo(location), cleanup };
    },
  },
  redis: {
    name: 'redis',
    label: 'redis',
    file: 'redis.ts',
    batch: 1_000,
    parallel: 4,
    open: async () => {
      const base = new URL(await requireServer('redis'));
      // The backend's keys have fixed names: a database of its own, empty before and flushed after.
      // 11-15 belong to the tests and the other benches; the first empty one of 10..1 is ours.
      let location: string | undefined;
      for (let db = 10; db >= 1 && !location; db--) {
        base.pathname = `/${db}`;
        const client = new Redis(base.toString());
        if ((await client.dbsize()) === 0) location = base.toString();
        await client.quit();
      }
      if (!location) throw new Error('redis: no empty database among 1-10 to seed into');
      const at = location;
      const cleanup = onCleanup(async () => {
        const client = new Redis(at);
        await client.flushdb();
        await client.quit();
      });
      const { RedisBackend } = await import('../functions/storage/redis.ts');
      return { backend: new RedisBackend(at, OPTIONS), raw: rawRedis(at), cleanup, afterSeed: async () => `database ${new URL(at).pathname.slice(1)}` };
    },
  },
  s3: {
    name: 's3',
    label: 's3 (LocalStack)',
    file: 's3.ts',
    batch: 250,
    // Each merge runs 16 requests at once; the SDK's client has 50 sockets.
    parallel: 3,
    open: async () => {
      const endpoint = await requireServer('localstack');
      const bucket = await createBucket(endpoint, 'calldata-qbench');
      const cleanup = onCleanup(async () => {
        const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
        try {
          // Every key first (LIST is cheap), then the deletes, a few requests of 1 000 keys at once.
          for (;;) {
            const pages: { Key: string }[][] = [];
            let token: string | undefined;
            do {
              const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000, ...(token ? { ContinuationToken: token } : {}) }));
              const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key as string }));
              if (keys.length > 0) pages.push(keys);
              token = listed.IsTruncated ? listed.NextContinuationToken : undefined;
            } while (token);
            if (pages.length === 0) break;
            let next = 0;
            const lane = async () => {
              while (next < pages.length) {
                const Objects = pages[next++] as { Key: string }[];
                await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
              }
            };
            await Promise.all(Array.from({ length: 4 }, lane));
          }
          await client.send(new DeleteBucketCommand({ Bucket: bucket }));
        } finally {
          client.destroy();
        }
      });
      const settings = s3SettingsFor(endpoint, bucket);
      const { S3Backend } = await import('../functions/storage/s3.ts');
      return {
        backend: new S3Backend(settings, OPTIONS),
        raw: rawS3({ endpoint, bucket, credentials: LOCALSTACK_CREDENTIALS }),
        cleanup: async () => {
          await cleanup();
          // The backend's client is shared per process and never closed by it.
          s3Client(settings).destroy();
        },
      };
    },
  },
  local: {
    name: 'local',
    label: 'local folder',
    file: 'local.ts',
    batch: 500,
    parallel: 4,
    open: async () => {
      const folder = await mkdtemp(join(tmpdir(), 'calldata-qbench-'));
      const cleanup = onCleanup(() => rm(folder, { recursive: true, force: true }));
      const { LocalFolderBackend } = await import('../functions/storage/local.ts');
      const root = join(folder, 'Call_Metadata');
      return { backend: new LocalFolderBackend(root, OPTIONS), raw: rawLocal(root), cleanup, afterSeed: async () => `under ${tmpdir()}` };
    },
  },
};

// ---- readiness ------------------------------------------------------------------------------

/** The backend file defines its own queryCalls (the base class's placeholder refuses every query). */
async function definesQueryCalls(file: string): Promise<boolean> {
  const text = await readFile(new URL(`../functions/storage/${file}`, import.meta.url), 'utf8');
  return /^\s*(override\s+)?(async\s+)?queryCalls\s*\(/m.test(text);
}

// ---- seeding ----------------------------------------------------------------------------------

function countFor(name: Name): number {
  return Math.max(PAGE * 4, Math.round(CALLS * (SCALE[name] ?? 1)));
}

/** Merges calls [0, total) in batches, `parallel` at once, oldest first; stops starting batches after the budget. */
async function seed(plan: Plan, backend: StorageBackend, total: number): Promise<{ stored: number; seconds: number }> {
  const start = performance.now();
  let next = 0;
  let stored = 0;
  let lastLog = start;
  const lane = async () => {
    while (next < total && performance.now() - start < BUDGET_MS) {
      const from = next;
      const to = Math.min(total, from + plan.batch);
      next = to;
      const outcomes = await backend.merge(deltas(RUN, from, to, total));
      if (outcomes.length !== to - from || outcomes.some((o) => !o.changed)) throw new Error(`${plan.label}: seeding calls ${from}-${to - 1} stored ${outcomes.filter((o) => o.changed).length} of ${to - from}`);
      stored += to - from;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`  ${plan.label}: ${stored} / ${total} calls stored (${((stored / (lastLog - start)) * 1000).toFixed(0)} calls/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: plan.parallel }, lane));
  // Lanes take batches in order and finish them: what is stored is calls [0, stored).
  return { stored, seconds: (performance.now() - start) / 1000 };
}

// ---- measuring --------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function time<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await work();
  return { ms: performance.now() - start, value };
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * One page query: warm-up, then REPS repetitions in which the backend and every raw form run one
 * after the other (the order reversed every other repetition, so neither always goes first).
 */
async function measurePage(label: string, backend: StorageBackend, raw: RawDriver, filter: PageFilter): Promise<Measured> {
  const query: CallQuery = { limit: PAGE, ...filter };
  const runs = [async () => (await backend.queryCalls(query)).calls.map((c) => c.callId), ...raw.forms.map((form) => () => form.page(filter, PAGE))];
  const times: number[][] = runs.map(() => []);
  let problem: string | undefined;
  const results: string[][] = runs.map(() => []);
  for (let rep = 0; rep < WARMUP + REPS; rep++) {
    const order = rep % 2 === 0 ? runs.map((_, i) => i) : runs.map((_, i) => runs.length - 1 - i);
    for (const i of order) {
      const { ms, value } = await time(runs[i] as () => Promise<string[]>);
      if (rep >= WARMUP) (times[i] as number[]).push(ms);
      results[i] = value;
    }
  }
  const [mine, ...theirs] = results as [string[], ...string[][]];
  theirs.forEach((ids, k) => {
    if (!same(mine, ids)) problem ??= `${raw.forms[k]?.label} returned other calls (${ids.length} vs ${mine.length}, first ${ids[0]} vs ${mine[0]})`;
  });
  if (mine.length === 0) problem ??= 'empty page';
  const forms = raw.forms.map((form, k) => ({ label: form.label, ms: median(times[k + 1] as number[]) }));
  return { label, backendMs: median(times[0] as number[]), rawMs: Math.min(...forms.map((f) => f.ms)), forms, page: true, rows: mine.length, problem };
}

async function measureRead(backend: StorageBackend, raw: RawDriver, ids: readonly string[]): Promise<Measured> {
  const backendTimes: number[] = [];
  const rawTimes: number[] = [];
  let problem: string | undefined;
  for (let rep = 0; rep < WARMUP + REPS; rep++) {
    const callId = ids[rep % ids.length] as string;
    const mine = async () => {
      const { ms, value } = await time(() => backend.read(callId));
      if (rep >= WARMUP) backendTimes.push(ms);
      const documents = Object.keys(value?.documents ?? {}).sort();
      if (value?.callId !== callId || value.state.callId !== callId || documents.join() !== 'metadata,transcription') problem ??= `read(${callId}) gave ${value?.callId} with ${documents.join('+') || 'no documents'}, not both documents`;
    };
    const theirs = async () => {
      const { ms, value } = await time(() => raw.read(callId));
      if (rep >= WARMUP) rawTimes.push(ms);
      if (value?.callId !== callId || value.documents.length !== 2) problem ??= `raw read of ${callId} gave ${value?.callId} with ${value?.documents.join('+')}`;
    };
    if (rep % 2 === 0) {
      await mine();
      await theirs();
    } else {
      await theirs();
      await mine();
    }
  }
  return { label: 'read one call', backendMs: median(backendTimes), rawMs: median(rawTimes), forms: [], page: false, rows: 1, problem };
}

async function measure(plan: Plan): Promise<Result> {
  const result: Result = { plan, calls: 0, seedSeconds: 0, notes: [], measured: [] };
  if (!(await definesQueryCalls(plan.file))) return { ...result, notReady: `functions/storage/${plan.file} has no queryCalls of its own yet` };
  log(`${plan.label}: opening an isolated location…`);
  const target = await plan.open();
  try {
    // The placeholder answers "not available yet": not measurable.
    const probe = await target.backend.queryCalls({ limit: 1 }).then(
      () => undefined,
      (error: unknown) => (error instanceof InvalidQueryError ? error.message : undefined),
    );
    if (probe) return { ...result, notReady: probe };
    const total = countFor(plan.name);
    log(`${plan.label}: seeding ${total} calls (batches of ${plan.batch}, ${plan.parallel} in flight)…`);
    const { stored, seconds } = await seed(plan, target.backend, total);
    result.calls = stored;
    result.seedSeconds = seconds;
    if (stored < total) result.notes.push(`seeding stopped at the ${BUDGET_MS / 1000} s budget: ${stored} of ${total} calls`);
    const note = await target.afterSeed?.();
    if (note) result.notes.push(note);
    log(`${plan.label}: ${stored} calls in ${seconds.toFixed(0)} s; measuring…`);

    const caller = userNumber(stored - 1, total);
    result.measured.push(await measurePage('newest 50', target.backend, target.raw, {}));
    result.measured.push(await measurePage(`room (${ROOMS[0]}, 5%)`, target.backend, target.raw, { room: ROOMS[0] }));
    result.measured.push(await measurePage('number (agent line, 10%)', target.backend, target.raw, { number: AGENT_LINES[0] }));
    result.measured.push(await measurePage('number (a caller)', target.backend, target.raw, { number: caller }));
    // Answered calls: a record and both documents (metadata, transcript) to read.
    const answered = (await target.backend.queryCalls({ limit: PAGE, answered: true })).calls.map((c) => c.callId);
    result.measured.push(await measureRead(target.backend, target.raw, answered));
    result.raw = target.raw;
    return result;
  } finally {
    await target.backend.close().catch(() => undefined);
    await target.raw.close().catch(() => undefined);
    await target.cleanup();
  }
}

// ---- report -----------------------------------------------------------------------------------

function report(results: readonly Result[]): boolean {
  const width = Math.max(...results.map((r) => r.plan.label.length), 7);
  const qwidth = Math.max(...results.flatMap((r) => r.measured.map((m) => m.label.length)), 12);
  let allMet = true;
  console.log(`\nquery benchmark: pages of ${PAGE}, newest first; median ms of ${REPS} runs after ${WARMUP} warm-up runs, each run alternating with its raw twin`);
  console.log(`targets: backend ≤ 2× raw (every query); < 50 ms per page on the databases (postgres, mysql, mongodb, redis)\n`);
  console.log(`${'backend'.padEnd(width)}   calls  ${'query'.padEnd(qwidth)}  backend ms   raw ms   ratio  ≤2× raw  <50 ms  rows`);
  for (const r of results) {
    if (r.notReady) {
      console.log(`${r.plan.label.padEnd(width)}       —  ${r.notReady.startsWith('failed: ') ? r.notReady : `not ready: ${r.notReady}`}`);
      continue;
    }
    r.measured.forEach((m, i) => {
      const ratio = m.backendMs / m.rawMs;
      const ratioOk = ratio <= 2 && !m.problem;
      const fastOk = !m.page || !DATABASES.has(r.plan.name) ? undefined : m.backendMs < 50;
      allMet &&= ratioOk && fastOk !== false;
      const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)).padStart(8);
      console.log(
        `${(i === 0 ? r.plan.label : '').padEnd(width)}  ${(i === 0 ? String(r.calls) : '').padStart(6)}  ${m.label.padEnd(qwidth)}  ${fmt(m.backendMs)}   ${fmt(m.rawMs)}  ${`${ratio.toFixed(2)}×`.padStart(6)}  ${(ratioOk ? 'ok' : 'MISS').padEnd(7)}  ${(fastOk === undefined ? '—' : fastOk ? 'ok' : 'MISS').padEnd(6)}  ${String(m.rows).padStart(4)}`,
      );
      if (m.problem) console.log(`${''.padEnd(width + 10)}${'MISS: '.padStart(qwidth + 2)}${m.problem}`);
    });
  }
  console.log('\nnotes');
  for (const r of results) {
    if (r.notReady) continue;
    const lines = [`${r.calls} calls seeded through merge in ${r.seedSeconds.toFixed(0)} s (${(r.calls / r.seedSeconds).toFixed(0)} calls/s)`, ...r.notes];
    for (const m of r.measured) if (m.forms.length > 1) lines.push(`${m.label}: raw forms ${m.forms.map((f) => `${f.label} ${f.ms.toFixed(2)} ms`).join(', ')} (the faster is the bar)`);
    if (r.raw) {
      lines.push(`raw page: ${r.raw.forms.map((f) => f.label).join(' / ')}; raw read: ${r.raw.readForm}`);
    }
    console.log(`  ${r.plan.label}`);
    for (const line of lines) console.log(`    ${line}`);
  }
  if (results.some((r) => r.plan.name === 'mongodb' && !r.notReady)) console.log("  mongodb figures are FerretDB's (the MongoDB wire protocol over SQLite), not a MongoDB server's");
  const unmeasured = results.filter((r) => r.notReady).map((r) => r.plan.name);
  if (unmeasured.length === results.length) {
    console.log(`\nnothing measured (${unmeasured.join(', ')})`);
    return false;
  }
  console.log(
    `\n${allMet ? 'all targets met' : 'some targets missed'}${unmeasured.length ? ` on the backends measured (not measured: ${unmeasured.join(', ')})` : ''} (a shared machine is noisy: rerun with BENCH_REPS=41 for steadier medians)`,
  );
  return allMet;
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const arg of args) if (!(ALL as readonly string[]).includes(arg)) throw new Error(`unknown backend ${arg}; choose from ${ALL.join(', ')}`);
  const wanted = ALL.filter((name) => args.length === 0 || args.includes(name));
  const interrupted = async () => {
    log('interrupted: cleaning up…');
    for (const cleanup of [...cleanups]) await cleanup();
    process.exit(130);
  };
  process.once('SIGINT', () => void interrupted());
  process.once('SIGTERM', () => void interrupted());
  const results: Result[] = [];
  try {
    for (const name of wanted) {
      const plan = PLANS[name];
      try {
        results.push(await measure(plan));
      } catch (error) {
        log(`${plan.label}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        results.push({ plan, calls: 0, seedSeconds: 0, notes: [], measured: [], notReady: `failed: ${error instanceof Error ? error.message : String(error)}` });
      }
    }
  } finally {
    for (const cleanup of [...cleanups]) await cleanup();
  }
  report(results);
}

await main();
// Everything is closed above; if a driver still holds the loop open, say which and exit anyway.
setTimeout(() => {
  process.stderr.write(`open handles after the run: ${process.getActiveResourcesInfo().join(', ')}\n`);
  process.exit(1);
}, 5_000).unref();
