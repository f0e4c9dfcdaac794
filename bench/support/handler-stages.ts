/**
 * `node bench/support/handler-stages.ts`: the persist handler's CPU per stage, without any
 * I/O, next to the hand-written baseline's decode + render — what bench/persist.ts's profile
 * points at, measured precisely (each stage run alone, many times, after a warm-up).
 *
 * Stages, for one message of the main workload (a progress message with 3 turns) and for a
 * batch of 10 different calls:
 *   JSON.parse, decodeMessage (JSON.parse + zod), deltasOf (stateOf + merge), chooseFolder +
 *   render (the metadata document), JSON.stringify of the row, the whole persistFacts against an
 *   in-memory MergingBackend (merge → fast path → row → render; no driver), the Powertools batch
 *   response, middy + its middlewares around a no-op, and the raw baseline's parse + render.
 */
import './quiet.ts';
import type { Context, SQSEvent } from 'aws-lambda';
import { decodeMessage, type FactMessage } from '../../functions/contract/facts.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { deltasOf, persistFacts } from '../../functions/domain/persist.ts';
import { lambdaHandler } from '../../functions/shared/lambda.ts';
import { partialBatchResponse } from '../../functions/shared/sqs-batch.ts';
import { MergingBackend, type CallPage, type FastResult, type OpenCall, type RowWrite, type StoredCall } from '../../functions/storage/backend.ts';
import { rawRow } from './persist-raw.ts';
import { eventsOf, workload } from './persist-workloads.ts';

const TZ = 'Asia/Kolkata';
const model = recordModel(TZ);

/** A backend whose writes cost nothing: every fast-path row is applied. Serializes rows as a SQL backend would. */
class MemoryBackend extends MergingBackend {
  readonly name = 'memory';
  bytes = 0;
  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    for (const row of rows) this.bytes += JSON.stringify(row.state).length + JSON.stringify(row.documents.metadata ?? null).length;
    return rows.map(() => 'applied');
  }
  protected async readRows(): Promise<Map<string, StoredCall>> {
    return new Map();
  }
  protected async writeIfVersion(rows: readonly { row: RowWrite }[]): Promise<boolean[]> {
    return rows.map(() => true);
  }
  async read(): Promise<StoredCall | undefined> {
    return undefined;
  }
  async queryCalls(): Promise<CallPage> {
    return { calls: [] };
  }
  async openCalls(): Promise<OpenCall[]> {
    return [];
  }
  async close(): Promise<void> {}
  protected locate(callId: string): string {
    return `memory:${callId}`;
  }
}

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'calldata-bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:calldata-bench',
    memoryLimitInMB: '1024',
    awsRequestId: 'bench',
    logGroupName: '/aws/lambda/calldata-bench',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** µs per call of `work` (async allowed), median of 5 runs of `n` calls after a warm-up. */
async function time(n: number, work: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 2_000); i++) await work(i);
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await work(i);
    const used = process.cpuUsage(start);
    runs.push((used.user + used.system) / n);
  }
  return runs.sort((a, b) => a - b)[2] as number;
}

const single = workload('updates', 'S', 2_000).filter((_, i) => Math.floor(i / 10) % 5 === 3); // progress, 3 turns
const bodies = single.map((m) => m.body);
const messages: FactMessage[] = bodies.map((b) => decodeMessage(b));
const batches: SQSEvent[] = eventsOf(single, 10);
const batchMessages: FactMessage[][] = batches.map((e) => e.Records.map((r) => decodeMessage(r.body)));
const pick = <T>(list: readonly T[], i: number) => list[i % list.length] as T;
const backend = new MemoryBackend({ documents: ['metadata'], model });
const targets = [{ location: 'memory', backend }];
const noop = lambdaHandler(async () => ({ batchItemFailures: [] }));
const N = 5_000;

const rows: [string, number, number][] = [];
async function stage(name: string, one: (i: number) => unknown, ten: ((i: number) => unknown) | undefined) {
  const a = await time(N, one);
  const b = ten ? (await time(N / 10, ten)) / 10 : NaN;
  rows.push([name, a, b]);
}

await stage('JSON.parse(body)', (i) => JSON.parse(pick(bodies, i)), undefined);
await stage('decodeMessage (JSON.parse + zod)', (i) => decodeMessage(pick(bodies, i)), (i) => pick(batches, i).Records.map((r) => decodeMessage(r.body)));
await stage('deltasOf (stateOf + merge)', (i) => deltasOf([pick(messages, i)]), (i) => deltasOf(pick(batchMessages, i)));
const deltas = messages.map((m) => deltasOf([m])[0]!);
await stage(
  'chooseFolder + render metadata',
  (i) => {
    const d = pick(deltas, i);
    return model.render(d.state, model.chooseFolder(d.state) ?? '', ['metadata']);
  },
  undefined,
);
await stage(
  'JSON.stringify(state) + (metadata)',
  (i) => {
    const d = pick(deltas, i);
    return JSON.stringify(d.state).length + JSON.stringify(model.render(d.state, 'x/y', ['metadata'])).length;
  },
  undefined,
);
await stage('persistFacts, in-memory backend (all above but zod)', (i) => persistFacts([pick(messages, i)], targets), (i) => persistFacts(pick(batchMessages, i), targets));
await stage('Powertools partialBatchResponse', (i) => partialBatchResponse(pick(eventsOf(single.slice(i % 100, (i % 100) + 1), 1), 0), new Map(), context()), (i) => partialBatchResponse(pick(batches, i), new Map(), context()));
const ones = eventsOf(single.slice(0, 200), 1);
await stage('middy + logger + secrets middlewares (no-op handler)', (i) => noop(pick(ones, i), context()), (i) => noop(pick(batches, i), context()));
await stage('raw baseline: JSON.parse + record + render', (i) => rawRow(pick(bodies, i), TZ), undefined);

console.log('\nhandler CPU by stage, µs per message (median of 5 runs; "10×" = a 10-record batch ÷ 10)');
console.log(`${'stage'.padEnd(56)}   1×1     10×`);
for (const [name, a, b] of rows) console.log(`${name.padEnd(56)} ${a.toFixed(1).padStart(6)}  ${Number.isNaN(b) ? '     —' : b.toFixed(1).padStart(6)}`);
