/**
 * `npm run bench:persist`: the same N call records written through the persist handler and
 * through each backend's raw driver, one record at a time, in one run. Prints records/s side
 * by side and their ratio. Needs the test servers (`npm run servers -- up`).
 *
 * Columns:
 *   raw 1×1      the raw driver, one guarded upsert per record, sequentially (the baseline)
 *   handler 1×1  the persist handler fed one-record SQS batches (parse + validate + write)
 *   handler 10×  the handler fed 10-record SQS batches (one multi-row write per batch)
 * Targets: handler 1×1 ≥ 0.9× raw; handler 10× ≥ 3× raw on PostgreSQL, MySQL and MongoDB.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { resetConfigForTests } from '../functions/config/config.ts';
import { encodeSnapshot, type Snapshot } from '../functions/contract/snapshot.ts';
import { metadataRecord } from '../functions/storage/documents.ts';
import { callPaths } from '../functions/storage/paths.ts';
import { closeAllBackends } from '../functions/storage/select.ts';
import { createBucket, useLocalstackEnv } from '../test/support/localstack.ts';
import { testContext } from '../test/support/queue-poller.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../test/support/servers.ts';
import { buildSnapshot } from '../test/support/snapshots.ts';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { handler } = await import('../functions/persist/handler.ts');

const N = Number(process.env.BENCH_N ?? 2_000);
const WARMUP = 200;
const TZ = 'UTC';

interface RawDriver {
  /** One guarded upsert of one record, as a hand-written integration would do it. */
  writeOne(callId: string, seq: number, room: string, startedAtMs: number, doc: string): Promise<void>;
  close(): Promise<void>;
}

// The raw baselines write the same records into the very tables, collections and keys the
// backends create (each bench run in its own database), with one guarded upsert per record.

async function rawPostgres(url: string): Promise<RawDriver> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await pool.query(
        `INSERT INTO call_metadata AS stored (call_id, room_name, start_time, seq, document) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (call_id) DO UPDATE SET room_name = EXCLUDED.room_name, start_time = EXCLUDED.start_time, seq = EXCLUDED.seq, document = EXCLUDED.document
         WHERE stored.seq < EXCLUDED.seq`,
        [callId, room, new Date(startedAtMs), seq, doc],
      );
    },
    close: () => pool.end(),
  };
}

async function rawMysql(url: string): Promise<RawDriver> {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4 });
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await pool.execute(
        `INSERT INTO call_metadata (call_id, room_name, start_time, seq, document, write_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, NOW(3))
         ON DUPLICATE KEY UPDATE document = IF(VALUES(seq) > seq, VALUES(document), document), room_name = IF(VALUES(seq) > seq, VALUES(room_name), room_name), seq = IF(VALUES(seq) > seq, VALUES(seq), seq)`,
        [callId, room, new Date(startedAtMs), String(seq), doc, randomUUID()],
      );
    },
    close: () => pool.end(),
  };
}

async function rawMongo(url: string): Promise<RawDriver> {
  const client = await new MongoClient(url).connect();
  const collection = client.db().collection<{ _id: string }>('call_metadata');
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      try {
        await collection.updateOne({ _id: callId, seq: { $lt: seq } }, { $set: { call_id: callId, room_name: room, start_time_ms: startedAtMs, seq, document: JSON.parse(doc) } }, { upsert: true });
      } catch (error) {
        // Duplicate key: a newer version is stored, which is the guard working.
        if ((error as { code?: number }).code !== 11000) throw error;
      }
    },
    close: () => client.close(),
  };
}

async function rawRedis(url: string): Promise<RawDriver> {
  const client = new Redis(url);
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      const key = `calldata:call_metadata:call:${callId}`;
      // The hand-written guard: read, compare, write.
      const stored = await client.hget(key, 'seq');
      if (stored !== null && Number(stored) >= seq) return;
      await client.multi().hset(key, 'seq', seq, 'doc', doc).zadd(`calldata:call_metadata:room:${room}`, startedAtMs, callId).exec();
    },
    close: async () => {
      client.disconnect();
    },
  };
}

async function rawS3(endpoint: string, bucket: string): Promise<RawDriver> {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      const paths = callPaths(room, startedAtMs, TZ, callId);
      // Create-if-absent, the cheapest guarded write S3 has.
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${paths.folder}/${paths.metadataFile}`, Body: doc, Metadata: { seq: String(seq) }, IfNoneMatch: '*' }));
    },
    close: async () => client.destroy(),
  };
}

async function rawLocal(folder: string): Promise<RawDriver> {
  return {
    writeOne: async (callId, _seq, room, startedAtMs, doc) => {
      // The spec's layout, written atomically: mkdir, temp file, rename.
      const paths = callPaths(room, startedAtMs, TZ, callId);
      const dir = join(folder, 'raw', paths.folder);
      await mkdir(dir, { recursive: true });
      const file = join(dir, paths.metadataFile);
      await writeFile(`${file}.tmp`, doc);
      await rename(`${file}.tmp`, file);
    },
    close: async () => undefined,
  };
}

function eventOf(snapshots: Snapshot[]): SQSEvent {
  return {
    Records: snapshots.map((s) => ({
      messageId: randomUUID(),
      receiptHandle: 'bench',
      body: encodeSnapshot(s),
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'bench', ApproximateFirstReceiveTimestamp: '0' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:bench',
      awsRegion: 'us-east-1',
    })),
  };
}

async function timeIt(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return N / ((performance.now() - start) / 1000);
}

async function throughHandler(location: string, batchSize: number, extraEnv: Record<string, string>, count = N): Promise<number> {
  Object.assign(process.env, { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', TIMEZONE: TZ, METADATA_LOCATION: location, ...extraEnv });
  resetConfigForTests();
  const snapshots = Array.from({ length: count }, () => buildSnapshot({ kind: 'ended', turns: 2 }));
  // Messages are encoded by the producer, not the handler: build them outside the measurement.
  const events: SQSEvent[] = [];
  for (let i = 0; i < snapshots.length; i += batchSize) events.push(eventOf(snapshots.slice(i, i + batchSize)));
  // Warm the backend (connection, schema) and the JIT outside the measurement.
  for (let i = 0; i < WARMUP; i++) await handler(eventOf([buildSnapshot({ kind: 'ended' })]), testContext());
  return timeIt(async () => {
    for (const event of events) {
      const response = await handler(event, testContext());
      if (response && response.batchItemFailures.length > 0) throw new Error(`${location}: handler reported failures`);
    }
  });
}

async function throughRaw(driver: RawDriver): Promise<number> {
  const records = Array.from({ length: N }, () => metadataRecord(buildSnapshot({ kind: 'ended', turns: 2 }), TZ));
  for (let i = 0; i < WARMUP; i++) {
    const warm = metadataRecord(buildSnapshot({ kind: 'ended', turns: 2 }), TZ);
    await driver.writeOne(warm.callId, warm.seq, warm.roomName, warm.startedAtMs, JSON.stringify(warm.document));
  }
  const rate = await timeIt(async () => {
    for (const r of records) await driver.writeOne(r.callId, r.seq, r.roomName, r.startedAtMs, JSON.stringify(r.document));
  });
  await driver.close();
  return rate;
}

interface Row {
  backend: string;
  raw: number;
  single: number;
  batched: number;
  batchTarget: number | undefined;
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'calldata-bench-'));
  const endpoint = await requireServer('localstack');
  useLocalstackEnv(endpoint);
  const bucket = await createBucket(endpoint, 'calldata-bench');
  const s3Env = { AWS_S3_BUCKET: bucket, AWS_S3_ENDPOINT: endpoint, AWS_S3_FORCE_PATH_STYLE: 'true', AWS_S3_ACCESS_KEY_ID: 'test', AWS_S3_SECRET_ACCESS_KEY: 'test' };
  const run = randomUUID().slice(0, 8);
  const pgUrl = new URL(await requireServer('postgres'));
  const admin = new pg.Pool({ connectionString: pgUrl.toString(), max: 1 });
  await admin.query(`CREATE SCHEMA bench_${run}`);
  pgUrl.searchParams.set('options', `-c search_path=bench_${run}`);
  const mysqlUrl = new URL(await requireServer('mysql'));
  const mysqlAdmin = await mysql.createConnection({ uri: mysqlUrl.toString() });
  await mysqlAdmin.query(`CREATE DATABASE calldata_bench_${run}`);
  mysqlUrl.pathname = `/calldata_bench_${run}`;
  const mongoUrl = new URL(await requireServer('mongodb'));
  mongoUrl.pathname = `/calldata_bench_${run}`;
  const redisUrl = new URL(await requireServer('redis'));
  redisUrl.pathname = '/15';
  const cleanup = async () => {
    await admin.query(`DROP SCHEMA bench_${run} CASCADE`);
    await admin.end();
    await mysqlAdmin.query(`DROP DATABASE calldata_bench_${run}`);
    await mysqlAdmin.end();
    const mongo = await new MongoClient(mongoUrl.toString()).connect();
    await mongo.db().dropDatabase();
    await mongo.close();
    const redis = new Redis(redisUrl.toString());
    await redis.flushdb();
    redis.disconnect();
  };
  const plans: { backend: string; location: () => Promise<string>; raw: (location: string) => Promise<RawDriver>; batchTarget?: number; env?: Record<string, string> }[] = [
    { backend: 'postgres', location: async () => pgUrl.toString(), raw: rawPostgres, batchTarget: 3 },
    { backend: 'mysql', location: async () => mysqlUrl.toString(), raw: rawMysql, batchTarget: 3 },
    { backend: 'mongodb', location: async () => mongoUrl.toString(), raw: rawMongo, batchTarget: 3 },
    { backend: 'redis', location: async () => redisUrl.toString(), raw: rawRedis },
    { backend: 's3', location: async () => 's3', raw: () => rawS3(endpoint, bucket), env: s3Env },
    { backend: 'local', location: async () => join(folder, 'Call_Metadata'), raw: () => rawLocal(folder) },
  ];
  const only = process.argv.slice(2);
  const rows: Row[] = [];
  for (const plan of plans) {
    if (only.length > 0 && !only.includes(plan.backend)) continue;
    const location = await plan.location();
    // The handler goes first so the backend creates its tables; the raw driver then writes into them.
    await throughHandler(location, 1, plan.env ?? {}, WARMUP);
    const raw = await throughRaw(await plan.raw(location));
    const single = await throughHandler(location, 1, plan.env ?? {});
    const batched = await throughHandler(location, 10, plan.env ?? {});
    rows.push({ backend: plan.backend, raw, single, batched, batchTarget: plan.batchTarget });
    process.stderr.write(`measured ${plan.backend}\n`);
  }
  await closeAllBackends();
  await cleanup();
  await rm(folder, { recursive: true, force: true });

  const fmt = (n: number) => n.toFixed(0).padStart(9);
  const ratio = (n: number) => `${n.toFixed(2)}×`.padStart(7);
  console.log(`\npersist benchmark: ${N} metadata records per column (records/s; ratios vs raw 1×1 in the same run)\n`);
  console.log('backend    raw 1×1  handler 1×1  ratio  target   handler 10×  ratio  target');
  let allMet = true;
  for (const r of rows) {
    const singleOk = r.single / r.raw >= 0.9;
    const batchOk = r.batchTarget === undefined || r.batched / r.raw >= r.batchTarget;
    allMet &&= singleOk && batchOk;
    console.log(
      `${r.backend.padEnd(9)}${fmt(r.raw)}  ${fmt(r.single)}   ${ratio(r.single / r.raw)} ≥0.9 ${singleOk ? 'ok ' : 'MISS'}  ${fmt(r.batched)}  ${ratio(r.batched / r.raw)} ${r.batchTarget ? `≥${r.batchTarget}  ${batchOk ? 'ok' : 'MISS'}` : '  —'}`,
    );
  }
  console.log(`\n${allMet ? 'all targets met' : 'some targets missed'} (machine noise: compare ratios, rerun with BENCH_N=5000 for steadier figures)`);
}

await main();
