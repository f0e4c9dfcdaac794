/**
 * The sweeper against the real livekit-server (dev mode) on the embedded default (no queue), with
 * the records in PostgreSQL (a database of this file's own, so a sweep sees only its calls) and in
 * a local folder.
 *
 *   - one sweep (functions/sweeper/sweep.ts) with records written through the embedded pipeline:
 *     a call whose room still exists stays open, a call whose room is gone and whose room_finished
 *     webhook was lost is closed, a room of the same name created again does not keep the old call
 *     open, and nothing is closed while LiveKit cannot be asked;
 *   - the purge of discarded recordings past their hold, against LocalStack's S3;
 *   - end to end: the real worker (`node worker/main.ts dev`, scripted agent) takes a call and is
 *     killed (SIGKILL) mid-call; the room is deleted; a new worker starts and its start-up sweep
 *     closes the call: final status, the end at the last fact, the transcript kept.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../functions/config/config.ts';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import { WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { DISCARD_HOLD_MS, DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { formatTime } from '../../functions/domain/render.ts';
import type { StorageBackend, StoredCall } from '../../functions/storage/backend.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { roomLister } from '../../functions/shared/livekit.ts';
import { purgeDiscarded } from '../../functions/sweeper/purge.ts';
import { sweep, SweepError, type RoomLister } from '../../functions/sweeper/sweep.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { createBucket, s3SettingsFor } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer, SERVERS } from '../support/servers.ts';
import { eventually, LIVEKIT_KEY, LIVEKIT_SECRET, LiveKitRooms, SimulatedCaller, WorkerProcess } from './worker-harness.ts';

const TZ = 'Asia/Kolkata';
const SWEEP_AFTER_MS = 1_000;
const SCRIPT = {
  instructions: 'front desk',
  responses: [
    { input: 'hello', content: 'Hi, this is the front desk. How can I help?' },
    { input: 'what are your hours?', content: 'We are open nine to five.' },
  ],
};

let livekitUrl: string;
let databaseUrl: string;
let database: string;
let folder: string;
let rooms: LiveKitRooms;
let lister: RoomLister;
const workers: WorkerProcess[] = [];

function uniqueName(label: string): string {
  return `sweep-${label}-${randomUUID().slice(0, 8)}`;
}

/** What a worker reports of a call it is in: started, answered or not, some lines. */
function workerMessage(callId: string, roomName: string, options: { answered: boolean; sentAtMs: number; lines?: string[] }): FactMessage {
  const start = options.sentAtMs - 20_000;
  return {
    v: MESSAGE_VERSION,
    kind: 'progress',
    callId,
    writer: `job:AJ_${callId}`,
    seq: 2,
    cumulative: true,
    sentAtMs: options.sentAtMs,
    facts: {
      roomName,
      startedAtMs: start,
      direction: { value: 'inbound', atMs: start },
      userNumber: { value: '+919876543210', atMs: start },
      ...(options.answered
        ? {
            answeredAtMs: start + 1_000,
            conversation: (options.lines ?? []).map((content, i) => ({ id: `${callId}-${i}`, role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content, interrupted: false, timestampMs: start + 2_000 + i * 1_000 })),
          }
        : {}),
    },
  };
}

/** The embedded pipeline of one location, as the worker's process would build it. */
async function embedded(location: string): Promise<{ config: Config; pipeline: Pipeline; primary: StorageBackend }> {
  const config = loadConfig({
    SAVE_METADATA: 'true',
    SAVE_TRANSCRIPTION: 'true',
    METADATA_LOCATION: location,
    TRANSCRIPTION_LOCATION: location,
    TIMEZONE: TZ,
    CALLDATA_SWEEP_AFTER_MS: String(SWEEP_AFTER_MS),
    CALLDATA_DEAD_LETTER_DIR: join(folder, 'dead-letter'),
  });
  const pipeline = pipelineFor(config);
  const primary = await pipeline.primary();
  if (!primary) throw new Error('no primary location');
  return { config, pipeline, primary };
}

async function storedIn(primary: StorageBackend, callId: string): Promise<StoredCall> {
  const call = await primary.read(callId);
  if (!call) throw new Error(`${callId} is not stored`);
  return call;
}

async function createRoom(name: string): Promise<string> {
  const room = await rooms.rooms.createRoom({ name, emptyTimeout: 120, departureTimeout: 1 });
  return room.sid;
}

beforeAll(async () => {
  livekitUrl = await requireServer('livekit');
  const base = await requireServer('postgres');
  // A database of this file's own: the sweep lists every open call of the location.
  database = `calldata_sweeper_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${database}`;
  databaseUrl = url.toString();

  folder = await mkdtemp(join(tmpdir(), 'calldata-sweeper-'));
  rooms = new LiveKitRooms(livekitUrl);
  lister = await roomLister({ url: livekitUrl, apiKey: LIVEKIT_KEY, apiSecret: LIVEKIT_SECRET });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop()));
  await rooms?.cleanup();
  await closeAllBackends();
  if (database) {
    const admin = new pg.Client({ connectionString: SERVERS.postgres.url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch((error: unknown) => console.error(error));
    await admin.end();
  }
  if (folder && !process.env.KEEP_E2E) await rm(folder, { recursive: true, force: true });
}, 60_000);

describe.each([
  ['PostgreSQL', () => databaseUrl],
  ['a local folder', () => join(folder, 'records')],
])('a sweep against the real livekit-server, records in %s', (_label, location) => {
  let pipeline: Pipeline;
  let primary: StorageBackend;
  const store = async (message: FactMessage) => {
    await (await pipeline.factSink()).send(message);
  };
  const stored = (callId: string) => storedIn(primary, callId);

  beforeAll(async () => {
    ({ pipeline, primary } = await embedded(location()));
  });

  it('leaves a quiet call open while its room still exists', async () => {
    // Prepare: the worker went quiet a while ago, but the room is there (the call is on hold)
    const name = uniqueName('live');
    const sid = await createRoom(name);
    await store(workerMessage(sid, name, { answered: true, sentAtMs: Date.now() - 5_000, lines: ['hello'] }));

    // Act
    const report = await sweep({ pipeline, rooms: lister });

    // Assess
    expect(report.closed).not.toContain(sid);
    expect(report.kept).toBeGreaterThanOrEqual(1);
    const call = await stored(sid);
    expect(call.state.outcome).toBeUndefined();
    expect(call.documents.metadata).toMatchObject({ status: 'in_progress', end_time: null });
    await rooms.rooms.deleteRoom(name);
  });

  it('closes a call whose room is gone and whose room_finished webhook was lost: final, ended at its last fact, transcript kept', async () => {
    // Prepare: a call with two lines, then the room goes and no webhook ever comes
    const name = uniqueName('lost');
    const sid = await createRoom(name);
    const lastFactAtMs = Date.now() - 5_000;
    await store(workerMessage(sid, name, { answered: true, sentAtMs: lastFactAtMs, lines: ['hello', 'Hi, how can I help?'] }));
    await rooms.rooms.deleteRoom(name);

    // Act
    const report = await sweep({ pipeline, rooms: lister });

    // Assess
    expect(report.closed).toContain(sid);
    const call = await stored(sid);
    expect(call.state.outcome).toMatchObject({ source: 'sweeper', reason: WORKER_LOST.sweeper });
    expect(call.documents.metadata).toMatchObject({
      call_id: sid,
      room_name: name,
      answered: true,
      status: 'completed',
      end_reason: 'worker_lost',
      end_reason_detail: WORKER_LOST.sweeper,
      end_time: formatTime(lastFactAtMs, TZ),
      timezone: TZ,
    });
    expect(call.documents.transcription?.conversation.map((i) => i.content)).toEqual(['hello', 'Hi, how can I help?']);
  });

  it('closes a never-answered call as failed, without a transcript', async () => {
    // Prepare
    const name = uniqueName('unanswered');
    const sid = await createRoom(name);
    await store(workerMessage(sid, name, { answered: false, sentAtMs: Date.now() - 5_000 }));
    await rooms.rooms.deleteRoom(name);

    // Act
    const report = await sweep({ pipeline, rooms: lister });

    // Assess
    expect(report.closed).toContain(sid);
    const call = await stored(sid);
    expect(call.documents.metadata).toMatchObject({ answered: false, status: 'failed', end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.sweeper });
    expect(call.documents.transcription).toBeUndefined();
  });

  it('does not let a new room of the same name keep the old call open', async () => {
    // Prepare: the old room instance ends, a new one with the same name starts a new call
    const name = uniqueName('reused');
    const oldSid = await createRoom(name);
    await store(workerMessage(oldSid, name, { answered: true, sentAtMs: Date.now() - 5_000, lines: ['old call'] }));
    await rooms.rooms.deleteRoom(name);
    await eventually(async () => !(await rooms.exists(name)), 10_000, 'the old room to go');
    const newSid = await createRoom(name);
    await store(workerMessage(newSid, name, { answered: true, sentAtMs: Date.now() - 5_000, lines: ['new call'] }));

    // Act
    const report = await sweep({ pipeline, rooms: lister });

    // Assess
    expect(newSid).not.toBe(oldSid);
    expect(report.closed).toContain(oldSid);
    expect(report.closed).not.toContain(newSid);
    expect((await stored(newSid)).state.outcome).toBeUndefined();
  });

  it('gives way to the worker\'s own final report when that arrives after the sweep', async () => {
    // Prepare: closed by the sweeper, then the worker's final message (stuck somewhere) arrives
    const name = uniqueName('late');
    const sid = await createRoom(name);
    const progress = workerMessage(sid, name, { answered: true, sentAtMs: Date.now() - 5_000, lines: ['hello'] });
    await store(progress);
    await rooms.rooms.deleteRoom(name);
    await sweep({ pipeline, rooms: lister });
    const endedAtMs = progress.sentAtMs + 1_000;

    // Act
    await store({
      ...progress,
      kind: 'ended',
      seq: 3,
      sentAtMs: endedAtMs,
      facts: { ...progress.facts, ended: { source: 'worker', atMs: endedAtMs, reason: 'caller hung up' }, outcome: { source: 'worker', atMs: endedAtMs, status: 'completed' } },
    });

    // Assess
    expect((await stored(sid)).documents.metadata).toMatchObject({ status: 'completed', end_reason_detail: 'caller hung up', end_time: formatTime(endedAtMs, TZ) });
  });

  it('closes nothing while LiveKit cannot be asked', async () => {
    // Prepare
    const name = uniqueName('unreachable');
    const sid = await createRoom(name);
    await store(workerMessage(sid, name, { answered: true, sentAtMs: Date.now() - 5_000, lines: ['hello'] }));
    await rooms.rooms.deleteRoom(name);
    const unreachable = await roomLister({ url: 'http://127.0.0.1:1', apiKey: LIVEKIT_KEY, apiSecret: LIVEKIT_SECRET });

    // Act
    const run = sweep({ pipeline, rooms: unreachable });

    // Assess
    await expect(run).rejects.toBeInstanceOf(SweepError);
    expect((await stored(sid)).state.outcome).toBeUndefined();
    await sweep({ pipeline, rooms: lister }); // leave nothing open for the next test
  });
});

describe('the purge of discarded recordings', () => {
  it('deletes what waited under the discard prefix longer than the hold, and nothing else', async () => {
    // Prepare: a discarded recording, and a recording in a call's folder, both in a real bucket
    const endpoint = await requireServer('localstack');
    const bucket = await createBucket(endpoint, 'calldata-purge');
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
    const discarded = `${DISCARD_PREFIX}/room/20261123T191838.120_RM_x/call_room_20261123T191838.120_RM_x.ogg`;
    const kept = 'room/20261123T191838.120_RM_y/call_room_20261123T191838.120_RM_y.ogg';
    for (const Key of [discarded, kept]) await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'OggS' }));
    const settings = s3SettingsFor(endpoint, bucket);

    // Act: once within the hold, once after it
    const early = await purgeDiscarded(settings, Date.now());
    const late = await purgeDiscarded(settings, Date.now() + DISCARD_HOLD_MS + 60_000);

    // Assess
    const left = ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);
    expect(early).toBe(0);
    expect(late).toBe(1);
    expect(left).toEqual([kept]);
    client.destroy();
  });
});

describe('the worker restarted after a crash', () => {
  let primary: StorageBackend;
  const stored = (callId: string) => storedIn(primary, callId);

  beforeAll(async () => {
    ({ primary } = await embedded(databaseUrl));
  });

  const workerEnv = (extra: Record<string, string>) => ({
    LIVEKIT_URL: livekitUrl,
    LIVEKIT_API_KEY: LIVEKIT_KEY,
    LIVEKIT_API_SECRET: LIVEKIT_SECRET,
    CALLDATA_AGENT_SCRIPT: JSON.stringify(SCRIPT),
    CALLDATA_PROGRESS_INTERVAL_MS: '300',
    SAVE_METADATA: 'true',
    SAVE_TRANSCRIPTION: 'true',
    METADATA_LOCATION: databaseUrl,
    TRANSCRIPTION_LOCATION: databaseUrl,
    TIMEZONE: TZ,
    CALLDATA_DEAD_LETTER_DIR: join(folder, 'dead-letter'),
    POWERTOOLS_LOG_LEVEL: 'INFO',
    // Many processes share this box: count jobs, not machine CPU, as the worker's load.
    CALLDATA_WORKER_LOAD: 'jobs',
    ...extra,
  });

  it('closes the call its killed predecessor left open once the room is gone, keeping the transcript', { timeout: 180_000 }, async () => {
    // Prepare: a worker takes a call, two turns are exchanged and stored
    const stamp = randomUUID().slice(0, 8);
    const first = new WorkerProcess(`calldata-sweep-first-${stamp}`, workerEnv({}), join(folder, 'worker-first.log'));
    workers.push(first);
    await first.start();
    const room = await rooms.callRoom(uniqueName('killed'), first.agentName);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    await caller.say('what are your hours?', 'We are open nine to five.');
    await eventually(async () => (await primary.read(room.sid))?.documents.transcription?.conversation.length === 4, 20_000, 'the transcript of two turns to be stored');

    // Act: the worker dies without a word, the room is deleted (no webhook reaches anyone), a new
    // worker starts with a short quiet time
    first.kill();
    const open = await stored(room.sid);
    expect(open.state.outcome).toBeUndefined();
    await rooms.rooms.deleteRoom(room.name);
    await caller.leave();
    await eventually(async () => !(await rooms.exists(room.name)), 20_000, 'the room to be gone');
    const lastFactAtMs = (await stored(room.sid)).state.lastFactAtMs;
    const second = new WorkerProcess(`calldata-sweep-second-${stamp}`, workerEnv({ CALLDATA_SWEEP_AFTER_MS: String(SWEEP_AFTER_MS) }), join(folder, 'worker-second.log'));
    workers.push(second);
    await second.start();

    // Assess: closed by the new worker's sweep, ended at the last fact, transcript intact
    const closed = await eventually(
      async () => {
        const call = await primary.read(room.sid);
        return call?.state.outcome ? call : undefined;
      },
      30_000,
      'the new worker to close the call',
    );
    expect(closed.documents.metadata).toMatchObject({
      call_id: room.sid,
      room_name: room.name,
      answered: true,
      status: 'completed',
      end_reason: 'worker_lost',
      end_reason_detail: WORKER_LOST.sweeper,
      end_time: formatTime(lastFactAtMs, TZ),
    });
    expect(closed.documents.metadata?.status).not.toBe('in_progress');
    expect(closed.documents.transcription?.conversation.map((i) => i.content)).toEqual([
      'hello',
      'Hi, this is the front desk. How can I help?',
      'what are your hours?',
      'We are open nine to five.',
    ]);
    expect(second.logs()).toContain('open call closed by the sweeper');
    expect(second.logs()).toContain(room.sid);
  });
});
