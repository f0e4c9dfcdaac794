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

async function rawPostgres(url: string): Promise<RawDriver> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const table = `bench_raw_${randomUUID().slice(0, 8)}`;
  await pool.query(`CREATE TABLE ${table} (call_id text PRIMARY KEY, room_name text, start_time timestamptz, seq bigint, document jsonb)`);
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await pool.query(
        `INSERT INTO ${table} VALUES ($1,$2,$3,$4,$5) ON CONFLICT (call_id) DO UPDATE SET room_name=EXCLUDED.room_name, start_time=EXCLUDED.start_time, seq=EXCLUDED.seq, document=EXCLUDED.document WHERE ${table}.seq < EXCLUDED.seq`,
        [callId, room, new Date(startedAtMs), seq, doc],
      );
    },
    close: async () => {
      await pool.query(`DROP TABLE ${table}`);
      await pool.end();
    },
  };
}

async function rawMysql(url: string): Promise<RawDriver> {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4 });
  const table = `bench_raw_${randomUUID().slice(0, 8)}`;
  await pool.query(`CREATE TABLE ${table} (call_id VARCHAR(128) PRIMARY KEY, room_name TEXT, start_time DATETIME(3), seq BIGINT, document JSON)`);
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await pool.execute(
        `INSERT INTO ${table} VALUES (?,?,?,?,?) ON DUPLICATE KEY UPDATE document=IF(VALUES(seq)>seq,VALUES(document),document), room_name=IF(VALUES(seq)>seq,VALUES(room_name),room_name), seq=IF(VALUES(seq)>seq,VALUES(seq),seq)`,
        [callId, room, new Date(startedAtMs), seq, doc],
      );
    },
    close: async () => {
      await pool.query(`DROP TABLE ${table}`);
      await pool.end();
    },
  };
}

async function rawMongo(url: string): Promise<RawDriver> {
  const client = await new MongoClient(url).connect();
  const collection = client.db().collection(`bench_raw_${randomUUID().slice(0, 8)}`);
  await collection.createIndex({ call_id: 1 }, { unique: true });
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await collection.updateOne({ call_id: callId, seq: { $lt: seq } }, { $set: { room_name: room, start_time_ms: startedAtMs, seq, document: JSON.parse(doc) } }, { upsert: true });
    },
    close: async () => {
      await collection.drop();
      await client.close();
    },
  };
}

async function rawRedis(url: string): Promise<RawDriver> {
  const client = new Redis(url);
  const prefix = `bench:${randomUUID().slice(0, 8)}`;
  return {
    writeOne: async (callId, seq, room, startedAtMs, doc) => {
      await client.hset(`${prefix}:call:${callId}`, 'seq', seq, 'doc', doc);
      await client.zadd(`${prefix}:room:${room}`, startedAtMs, callId);
    },
    close: async () => {
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
      client.disconnect();
    },
  };
}

async function rawS3(endpoint: string, bucket: string): Promise<RawDriver> {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  return {
    writeOne: async (callId, seq, room, _startedAtMs, doc) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${room}/${callId}.json`, Body: doc, Metadata: { seq: String(seq) } }));
    },
    close: async () => client.destroy(),
  };
}

async function rawLocal(folder: string): Promise<RawDriver> {
  return {
    writeOne: async (callId, _seq, room, _startedAtMs, doc) => {
      const dir = join(folder, 'raw', room);
      await mkdir(dir, { recursive: true });
      const file = join(dir, `${callId}.json`);
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

async function throughHandler(location: string, batchSize: number, extraEnv: Record<string, string>): Promise<number> {
  Object.assign(process.env, { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', TIMEZONE: TZ, METADATA_LOCATION: location, ...extraEnv });
  resetConfigForTests();
  const snapshots = Array.from({ length: N }, () => buildSnapshot({ kind: 'ended', turns: 2 }));
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
    await driver.writeOne(warm.callId, warm.seq, warm.paths.slug, warm.startedAtMs, JSON.stringify(warm.document));
  }
  const rate = await timeIt(async () => {
    for (const r of records) await driver.writeOne(r.callId, r.seq, r.paths.slug, r.startedAtMs, JSON.stringify(r.document));
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
  const plans: { backend: string; location: () => Promise<string>; raw: (location: string) => Promise<RawDriver>; batchTarget?: number; env?: Record<string, string> }[] = [
    { backend: 'postgres', location: () => requireServer('postgres'), raw: rawPostgres, batchTarget: 3 },
    { backend: 'mysql', location: () => requireServer('mysql'), raw: rawMysql, batchTarget: 3 },
    { backend: 'mongodb', location: () => requireServer('mongodb'), raw: rawMongo, batchTarget: 3 },
    { backend: 'redis', location: () => requireServer('redis'), raw: rawRedis },
    { backend: 's3', location: async () => 's3', raw: () => rawS3(endpoint, bucket), env: s3Env },
    { backend: 'local', location: async () => join(folder, 'Call_Metadata'), raw: () => rawLocal(folder) },
  ];
  const only = process.argv.slice(2);
  const rows: Row[] = [];
  for (const plan of plans) {
    if (only.length > 0 && !only.includes(plan.backend)) continue;
    const location = await plan.location();
    const raw = await throughRaw(await plan.raw(location));
    const single = await throughHandler(location, 1, plan.env ?? {});
    const batched = await throughHandler(location, 10, plan.env ?? {});
    rows.push({ backend: plan.backend, raw, single, batched, batchTarget: plan.batchTarget });
    process.stderr.write(`measured ${plan.backend}\n`);
  }
  await closeAllBackends();
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
