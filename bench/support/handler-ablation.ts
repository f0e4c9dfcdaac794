/**
 * `node bench/support/handler-ablation.ts [postgres|mysql|redis|mongodb] [calls]`: where the persist
 * handler's 1×1 time goes against a real server, layer by layer, in the same run (the main
 * workload, one message per invocation, columns taking turns round by round):
 *
 *   raw              the hand-written baseline of bench/persist.ts
 *   backend.merge    the storage backend alone, fed deltas built beforehand (no decode, no merge
 *                    of messages, no Lambda layers)
 *   pipeline.persist deltasOf + backend (messages decoded beforehand)
 *   persistBatch     decode + pipeline + Powertools batch response (no middy)
 *   handler          the deployed handler: middy + logger context + secrets middleware around it
 *
 * The differences between neighbouring columns are what each layer costs in place (with the
 * I/O waits between invocations, code runs colder than in handler-stages.ts's tight loops).
 */
import './quiet.ts';
import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent } from 'aws-lambda';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { getConfig, resetConfigForTests } from '../../functions/config/config.ts';
import { decodeMessage } from '../../functions/contract/facts.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { handler, persistBatch } from '../../functions/persist/handler.ts';
import { RECORDS } from '../../functions/storage/backend.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { pipelineFor } from '../../functions/wiring.ts';
import { requireServer } from '../../test/support/servers.ts';
import { rawMongo, rawMysql, rawPostgres, rawRedis, rawRow, type RawDriver } from './persist-raw.ts';
import { eventsOf, workload, type BenchMessage } from './persist-workloads.ts';

const backendName = process.argv[2] ?? 'postgres';
const CALLS = Number(process.argv[3] ?? 400);
const ROUNDS = 6;
const TZ = 'Asia/Kolkata';
const RUN = randomUUID().replaceAll('-', '').slice(0, 8);
let counter = 0;
const prefix = () => `A${RUN}${String(++counter).padStart(3, '0')}x`;

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'calldata-bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:calldata-bench',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/calldata-bench',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

let location: string;
let cleanup: () => Promise<void>;
let raw: () => RawDriver;
if (backendName === 'postgres') {
  const url = new URL(await requireServer('postgres'));
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`CREATE SCHEMA calldata_ablation_${RUN}`);
  url.searchParams.set('options', `-c search_path=calldata_ablation_${RUN}`);
  location = url.toString();
  raw = () => rawPostgres(location, RECORDS);
  cleanup = async () => {
    await admin.query(`DROP SCHEMA calldata_ablation_${RUN} CASCADE`);
    await admin.end();
  };
} else if (backendName === 'mysql') {
  const url = new URL(await requireServer('mysql'));
  const admin = await mysql.createConnection({ uri: url.toString() });
  await admin.query(`CREATE DATABASE calldata_ablation_${RUN}`);
  url.pathname = `/calldata_ablation_${RUN}`;
  location = url.toString();
  raw = () => rawMysql(location, RECORDS);
  cleanup = async () => {
    await admin.query(`DROP DATABASE calldata_ablation_${RUN}`);
    await admin.end();
  };
} else if (backendName === 'redis') {
  const url = new URL(await requireServer('redis'));
  url.pathname = '/14';
  location = url.toString();
  raw = () => rawRedis(location);
  cleanup = async () => {
    const client = new Redis(location);
    await client.flushdb();
    await client.quit();
  };
} else if (backendName === 'mongodb') {
  const url = new URL(await requireServer('mongodb'));
  url.pathname = `/calldata_ablation_${RUN}`;
  location = url.toString();
  raw = () => rawMongo(location, 'raw_records', 'find-then-insert-or-replace');
  cleanup = async () => {
    const client = await new MongoClient(location).connect();
    await client.db().dropDatabase();
    await client.close();
  };
} else throw new Error(`unknown backend ${backendName}`);

Object.assign(process.env, { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', TIMEZONE: TZ, METADATA_LOCATION: location });
resetConfigForTests();
const pipeline = pipelineFor(getConfig());
const driver = raw();

type Prepared = () => Promise<unknown>;
const columns: Record<string, (messages: BenchMessage[]) => Prepared> = {
  raw: (messages) => async () => {
    for (const m of messages) await driver.write(rawRow(m.body, TZ));
  },
  'backend.merge': (messages) => {
    const deltas = messages.map((m) => deltasOf([decodeMessage(m.body)]));
    return async () => {
      const backend = await pipeline.primary();
      for (const d of deltas) await backend!.merge(d);
    };
  },
  'pipeline.persist': (messages) => {
    const decoded = messages.map((m) => decodeMessage(m.body));
    return async () => {
      for (const m of decoded) await pipeline.persist([m]);
    };
  },
  persistBatch: (messages) => {
    const events = eventsOf(messages, 1);
    return async () => {
      for (const e of events) await persistBatch(e, context());
    };
  },
  handler: (messages) => {
    const events: SQSEvent[] = eventsOf(messages, 1);
    return async () => {
      for (const e of events) await handler(e, context());
    };
  },
};

try {
  await columns.handler!(workload('updates', prefix(), 20))();
  await driver.prepare();
  const names = Object.keys(columns);
  for (const name of names) await columns[name]!(workload('updates', prefix(), 30))();
  const wall = new Map<string, number>(names.map((n) => [n, 0]));
  const cpu = new Map<string, number>(names.map((n) => [n, 0]));
  let messagesPerColumn = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const calls = Math.ceil(CALLS / ROUNDS);
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + round) % names.length] as string;
      const messages = workload('updates', prefix(), calls);
      const work = columns[name]!(messages);
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      await work();
      const used = process.cpuUsage(cpuStart);
      wall.set(name, (wall.get(name) ?? 0) + (performance.now() - start) * 1000);
      cpu.set(name, (cpu.get(name) ?? 0) + used.user + used.system);
      if (name === 'raw') messagesPerColumn += messages.length;
    }
  }
  const rawWall = (wall.get('raw') ?? 1) / messagesPerColumn;
  console.log(`\n${backendName}, updates workload, 1 message per invocation, ${messagesPerColumn} messages per column (µs per message)`);
  console.log(`${'column'.padEnd(18)}  wall    cpu   wall ÷ raw wall`);
  for (const name of names) {
    const w = (wall.get(name) ?? 0) / messagesPerColumn;
    const c = (cpu.get(name) ?? 0) / messagesPerColumn;
    console.log(`${name.padEnd(18)} ${w.toFixed(0).padStart(5)}  ${c.toFixed(0).padStart(5)}   ${(w / rawWall).toFixed(2)}×`);
  }
} finally {
  await driver.close();
  await closeAllBackends();
  await cleanup();
}
