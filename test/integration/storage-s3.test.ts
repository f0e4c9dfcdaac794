/**
 * S3 backend against LocalStack's real S3 (conditional writes included). Every test works in a
 * bucket of its own, so nothing clashes with other test files.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { mergeAll, sameState, stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { renderDocuments, summarize } from '../../functions/domain/render.ts';
import { entryName } from '../../functions/storage/local.ts';
import { S3Backend } from '../../functions/storage/s3.ts';
import { BOTH, describeBackendConformance, TZ, workerMessage } from '../support/backend-conformance.ts';
import { createBucket, localstackEndpoint, s3SettingsFor } from '../support/localstack.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
import { LOCALSTACK_CREDENTIALS, SERVERS } from '../support/servers.ts';
import { longConversation } from '../support/snapshots.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
/** START in Asia/Kolkata, as folder timestamps show it. */
const START_STAMP = '20261124T004838.120';

// The backend reads its bucket from S3 settings (the location string is just "s3"), so the
// conformance suite's location carries endpoint and bucket as a URL.
function fromLocation(location: string): S3Backend {
  const url = new URL(location);
  return new S3Backend(s3SettingsFor(`${url.protocol}//${url.host}`, url.searchParams.get('bucket') ?? ''), BOTH);
}

describeBackendConformance({
  name: 's3',
  create: fromLocation,
  location: async () => {
    const endpoint = await localstackEndpoint();
    return `${endpoint}/?bucket=${await createBucket(endpoint)}`;
  },
  serverPort: SERVERS.localstack.port,
  viaPort: (location, port) => {
    const url = new URL(location);
    url.port = String(port);
    return url.toString();
  },
});

describeQueryConformance({
  name: 's3',
  create: async (options) => {
    const endpoint = await localstackEndpoint();
    return new S3Backend(s3SettingsFor(endpoint, await createBucket(endpoint)), options);
  },
  calls: 2_000,
});

describe('s3 backend specifics', () => {
  let endpoint: string;
  let bucket: string;
  let backend: S3Backend;
  let client: S3Client;

  beforeAll(async () => {
    endpoint = await localstackEndpoint();
    bucket = await createBucket(endpoint);
    backend = new S3Backend(s3SettingsFor(endpoint, bucket), BOTH);
    client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  });
  afterAll(async () => {
    await backend?.close();
    client?.destroy();
  });

  async function keys(prefix = ''): Promise<string[]> {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      found.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  async function getJson(key: string): Promise<unknown> {
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse((await object.Body?.transformToString('utf8')) ?? 'null');
  }

  const newCallId = () => `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

  it("writes the documents at the spec's keys, the record at _calldata-index/<callId>.json", async () => {
    // Prepare
    const callId = newCallId();
    const message = workerMessage(callId, 3, { roomName: 'sales-call', final: true });
    const folder = `sales-call/${START_STAMP}_${callId}`;
    // Act
    const [outcome] = await backend.merge(deltasOf([message]));
    // Assess
    expect(outcome?.folder).toBe(folder);
    expect(outcome?.location).toBe(`s3://${bucket}/${folder}/`);
    expect((await keys('sales-call/')).filter((k) => k.includes(callId)).sort()).toEqual([
      `${folder}/call_metadata_sales-call_${START_STAMP}_${callId}.json`,
      `${folder}/call_transcription_sales-call_${START_STAMP}_${callId}.json`,
    ]);
    const metadata = await getJson(`${folder}/call_metadata_sales-call_${START_STAMP}_${callId}.json`);
    expect(metadata).toEqual(renderDocuments(stateOf(message), folder, ['metadata'], TZ).metadata);
    expect(metadata).toMatchObject({ room_name: 'sales-call', start_time: '2026-11-24T00:48:38.120+05:30', status: 'completed' });
    const record = (await getJson(`_calldata-index/${callId}.json`)) as { version: number; folder: string; final: boolean; state: unknown };
    expect(record).toMatchObject({ version: 1, folder, final: true });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${folder}/call_metadata_sales-call_${START_STAMP}_${callId}.json` }));
    expect(head.Metadata?.['calldata-version']).toBe('1');
  });

  it("never names a folder with a leading '-' or a device name", async () => {
    // Prepare
    const rooms = ['-rf', 'con', 'LPT1.txt'];
    const ids = rooms.map(() => newCallId());
    // Act
    const outcomes = await backend.merge(deltasOf(rooms.map((roomName, i) => workerMessage(ids[i] as string, 1, { roomName }))));
    // Assess: the room's folder is a safe name, and the documents are in it
    for (const [i, outcome] of outcomes.entries()) {
      const [slug = ''] = (outcome?.folder ?? '').split('/');
      expect(slug.startsWith('-')).toBe(false);
      expect(slug).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i);
      expect(await keys(`${outcome?.folder}/`)).toHaveLength(2);
      expect((await backend.read(ids[i] as string))?.documents.metadata?.room_name).toBe(rooms[i]);
    }
  });

  it("one writer's next snapshots are one conditional PUT per record, with no read first", async () => {
    // Prepare: ten stored calls, then their next snapshots; a spy on every request sent
    const ids = Array.from({ length: 10 }, () => newCallId());
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
    const spy = vi.spyOn(S3Client.prototype, 'send');
    try {
      // Act
      const outcomes = await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
      // Assess: per call the record, two documents and the marker; no GET or HEAD
      expect(outcomes.every((o) => o.changed)).toBe(true);
      const sent = spy.mock.calls.map(([command]) => command.constructor.name);
      expect(sent.filter((name) => name !== 'PutObjectCommand')).toEqual([]);
      const records = spy.mock.calls.map(([command]) => command.input as { Key?: string; IfMatch?: string }).filter((input) => input.Key?.startsWith('_calldata-index/'));
      expect(records).toHaveLength(10);
      expect(records.every((input) => input.IfMatch !== undefined)).toBe(true);
      expect(sent).toHaveLength(40);
    } finally {
      spy.mockRestore();
    }
  });

  it('two containers racing on the same 20 calls with different writers lose nothing', async () => {
    // Prepare: two backends (two Lambda containers, each with its own cache), each with its own job's snapshots
    const ids = Array.from({ length: 20 }, () => newCallId());
    const containers = [0, 1].map(() => new S3Backend(s3SettingsFor(endpoint, bucket), BOTH));
    const writers = ['job:AJ_one', 'job:AJ_two'];
    const messages = writers.map((writer) => ids.flatMap((id) => [1, 2, 3, 4].map((seq) => workerMessage(id, seq, { writer, final: seq === 4 && writer === 'job:AJ_two' }))));
    // Act: each container sends its job's snapshots in order, all calls at once, both containers at once
    await Promise.all(
      containers.map(async (container, c) => {
        for (const seq of [1, 2, 3, 4]) await container.merge(deltasOf((messages[c] as FactMessage[]).filter((m) => m.seq === seq)));
      }),
    );
    // Assess: every record is the merge of both jobs' facts, and its documents render it
    for (const id of ids) {
      const expected = mergeAll([...(messages[0] as FactMessage[]), ...(messages[1] as FactMessage[])].filter((m) => m.callId === id).map(stateOf));
      const stored = await backend.read(id);
      expect(stored && sameState(stored.state, expected)).toBe(true);
      expect(stored?.documents).toEqual(renderDocuments(expected, stored?.folder ?? '', BOTH.documents, TZ));
      expect(stored?.documents.transcription?.conversation).toHaveLength(16);
    }
  });

  it('keeps an open-call marker while the call is open and deletes it once final', async () => {
    // Prepare
    const callId = newCallId();
    // Act + Assess: open
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName: 'open-room' })]));
    expect(await getJson(`_calldata-open/${callId}`)).toEqual({ call_id: callId, room_name: 'open-room', last_fact_ms: START + 2_000 });
    expect(await backend.openCalls(START + 60_000, 10_000)).toContainEqual({ callId, roomName: 'open-room', lastFactAtMs: START + 2_000 });
    // Act + Assess: final
    await backend.merge(deltasOf([workerMessage(callId, 2, { roomName: 'open-room', final: true })]));
    expect(await keys(`_calldata-open/${callId}`)).toEqual([]);
  });

  it('ignores and removes a marker a losing writer left behind for a final call', async () => {
    // Prepare: a final call, then a stale marker as a slow writer of an older version would put it
    const callId = newCallId();
    await backend.merge(deltasOf([workerMessage(callId, 2, { final: true })]));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `_calldata-open/${callId}`, Body: JSON.stringify({ call_id: callId, room_name: 'sip-room-1', last_fact_ms: START }) }));
    // Act
    const open = await backend.openCalls(START + 60_000, 10_000);
    // Assess
    expect(open.map((c) => c.callId)).not.toContain(callId);
    expect(await keys(`_calldata-open/${callId}`)).toEqual([]);
  });

  it('a redelivered batch writes the documents its first delivery stored the record of but not them', async () => {
    // Prepare: the documents' PUTs fail once, after the record's PUT went through
    const callId = newCallId();
    const message = workerMessage(callId, 2, { final: true });
    const original = S3Client.prototype.send as (...args: unknown[]) => Promise<unknown>;
    const spy = vi.spyOn(S3Client.prototype as unknown as { send: (...args: unknown[]) => Promise<unknown> }, 'send').mockImplementation(async function (this: S3Client, ...args: unknown[]) {
      const [command] = args;
      const key = (command as { input: { Key?: string } }).input.Key ?? '';
      if (command instanceof PutObjectCommand && key.includes('/call_')) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      return Reflect.apply(original, this, args);
    });
    const failed = await backend.merge(deltasOf([message])).then(
      () => undefined,
      (error: unknown) => error,
    );
    spy.mockRestore();
    expect(failed).toMatchObject({ retryable: true });
    expect((await backend.read(callId))?.documents).toEqual({});
    // Act: the queue delivers the batch again
    const [outcome] = await backend.merge(deltasOf([message]));
    // Assess: nothing new for the record, and the documents are there now
    expect(outcome?.changed).toBe(false);
    expect((await backend.read(callId))?.documents).toEqual(renderDocuments(stateOf(message), outcome?.folder ?? '', BOTH.documents, TZ));
  });

  it('never lets a slow writer of an older version replace a newer document', async () => {
    // Prepare: container A stored version 1; its documents of version 2 will be held back until
    // container B has written version 3 and its documents
    const callId = newCallId();
    const [a, b] = [0, 1].map(() => new S3Backend(s3SettingsFor(endpoint, bucket), BOTH)) as [S3Backend, S3Backend];
    await a.merge(deltasOf([workerMessage(callId, 1)]));
    const original = S3Client.prototype.send as (...args: unknown[]) => Promise<unknown>;
    let recordTwoLanded!: () => void;
    const recordTwo = new Promise<void>((done) => (recordTwoLanded = done));
    let documentsThree = 0;
    let releaseTwo!: () => void;
    const documentsThreeWritten = new Promise<void>((done) => (releaseTwo = done));
    const spy = vi.spyOn(S3Client.prototype as unknown as { send: (...args: unknown[]) => Promise<unknown> }, 'send').mockImplementation(async function (this: S3Client, ...args: unknown[]) {
      const [command] = args;
      const input = (command as { input: { Key?: string; Metadata?: Record<string, string> } }).input;
      const version = command instanceof PutObjectCommand ? input.Metadata?.['calldata-version'] : undefined;
      const isDocument = input.Key?.includes(`_${callId}/call_`) ?? false;
      if (isDocument && version === '2') await documentsThreeWritten;
      const result = await Reflect.apply(original, this, args);
      if (!isDocument && input.Key === `_calldata-index/${callId}.json` && version === '2') recordTwoLanded();
      if (isDocument && version === '3' && ++documentsThree === 2) releaseTwo();
      return result;
    });
    try {
      // Act: A's next snapshot lands its record (version 2), then B merges another job's facts (version 3)
      const slow = a.merge(deltasOf([workerMessage(callId, 2)]));
      await recordTwo;
      // (Its job ended the call, so both of version 3's documents differ from version 1's: an ETag
      // is the content's hash, and A's If-Match names version 1's.)
      await b.merge(deltasOf([workerMessage(callId, 1, { writer: 'job:AJ_other', final: true })]));
      await slow;
    } finally {
      spy.mockRestore();
    }
    // Assess: the documents are version 3's, which hold both jobs' facts
    const stored = await b.read(callId);
    for (const kind of ['metadata', 'transcription']) {
      const key = `${stored?.folder}/call_${kind}_sip-room-1_${START_STAMP}_${callId}.json`;
      expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.['calldata-version']).toBe('3');
    }
    expect(stored?.version).toBe(3);
    expect(stored?.documents).toEqual(renderDocuments(stored?.state as CallState, stored?.folder ?? '', BOTH.documents, TZ));
    expect(stored?.documents.transcription?.conversation).toHaveLength(4 + 2);
  });

  it('stores a 2 MB transcript at its spec key, and a 6 MB one through a conditional multipart upload', async () => {
    for (const megabytes of [2, 6]) {
      // Prepare
      const callId = newCallId();
      const items = longConversation(4 * 60 * 60 * 1000, megabytes * 1024 * 1024).map((item, i) => ({ ...item, id: `long-${i}` }));
      // Act
      const [outcome] = await backend.merge(deltasOf([workerMessage(callId, 2, { final: true, items })]));
      await backend.merge(deltasOf([workerMessage(callId, 3, { final: true, items })]));
      // Assess: the document is there, whole, at the version of the second write
      const key = `${outcome?.folder}/call_transcription_sip-room-1_${START_STAMP}_${callId}.json`;
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ContentLength).toBeGreaterThan(megabytes * 1024 * 1024);
      expect(head.Metadata?.['calldata-version']).toBe('2');
      expect(((await getJson(key)) as { conversation: unknown[] }).conversation).toHaveLength(items.length);
    }
  });

  /** The index keys of a call (time, room, numbers), with the body each holds. */
  async function indexOf(callId: string, startedAtMs: number): Promise<Map<string, { version: number; summary: { status: string; startedAtMs: number; roomName: string } }>> {
    const name = entryName(startedAtMs, callId) ?? '';
    const found = new Map<string, { version: number; summary: { status: string; startedAtMs: number; roomName: string } }>();
    for (const prefix of ['_calldata-time/', '_calldata-room/', '_calldata-number/']) {
      for (const key of await keys(prefix)) if (key.endsWith(`/${name}`)) found.set(key, (await getJson(key)) as never);
    }
    return found;
  }

  it('keeps one index entry per scope that follows the call from in progress to completed, and moves it when the start does', async () => {
    // Prepare
    const callId = newCallId();
    const room = `follow-${randomUUID()}`;
    // Act + Assess: in progress; time, room and both numbers list it
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName: room })]));
    let index = await indexOf(callId, START);
    expect([...index.keys()].map((k) => k.split('/')[0])).toEqual(['_calldata-time', '_calldata-room', '_calldata-number', '_calldata-number']);
    expect([...index.values()].map((v) => v.summary.status)).toEqual(['in_progress', 'in_progress', 'in_progress', 'in_progress']);
    expect((await backend.queryCalls({ limit: 10, room })).calls).toEqual([summarize(stateOf(workerMessage(callId, 1, { roomName: room })))]);
    // Act + Assess: completed; the same keys, now completed, at the version that changed them
    await backend.merge(deltasOf([workerMessage(callId, 2, { roomName: room })]));
    await backend.merge(deltasOf([workerMessage(callId, 3, { roomName: room, final: true })]));
    const completed = await indexOf(callId, START);
    expect([...completed.keys()]).toEqual([...index.keys()]);
    expect([...completed.values()].map((v) => [v.summary.status, v.version])).toEqual(Array.from({ length: 4 }, () => ['completed', 3]));
    const page = await backend.queryCalls({ limit: 10, room });
    expect(page.calls.map((c) => [c.callId, c.status])).toEqual([[callId, 'completed']]);
    expect(page.cursor).toBeUndefined();
    // Act + Assess: another job reports an earlier start and a smaller room name: the entries move, none is left behind
    const earlier = workerMessage(callId, 1, { roomName: `${room.slice(0, -1)}!`, writer: 'job:AJ_other' });
    earlier.facts.startedAtMs = START - 60_000;
    await backend.merge(deltasOf([earlier]));
    expect(await indexOf(callId, START)).toEqual(new Map());
    index = await indexOf(callId, START - 60_000);
    expect([...index.values()].map((v) => [v.summary.startedAtMs, v.summary.roomName, v.version])).toEqual(Array.from({ length: 4 }, () => [START - 60_000, `${room.slice(0, -1)}!`, 4]));
    expect((await backend.queryCalls({ limit: 10, room })).calls).toEqual([]);
    const window = await backend.queryCalls({ limit: 1000, sinceMs: START - 120_000, untilMs: START + 1 });
    expect(window.calls.filter((c) => c.callId === callId).map((c) => c.startedAtMs)).toEqual([START - 60_000]);
  });

  it("one writer's progress snapshots do not write the index while the summary stays the same", async () => {
    // Prepare: five stored calls; a spy on every request sent
    const ids = Array.from({ length: 5 }, () => newCallId());
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
    const spy = vi.spyOn(S3Client.prototype, 'send');
    const indexPuts = () =>
      spy.mock.calls
        .map(([command]) => command)
        .filter((command) => command instanceof PutObjectCommand && (command.input.Key ?? '').match(/^_calldata-(time|room|number)\//)).length;
    try {
      // Act: three more progress snapshots each (the fast path)
      for (const seq of [2, 3, 4]) await backend.merge(deltasOf(ids.map((id) => workerMessage(id, seq))));
      // Assess: records, documents and markers only
      expect(spy.mock.calls.length).toBe(3 * 5 * 4);
      expect(indexPuts()).toBe(0);
      // Act: the final snapshots change the summary
      await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 5, { final: true }))));
      // Assess: one conditional PUT per entry (time, room, two numbers), and no read
      expect(indexPuts()).toBe(5 * 4);
      expect(spy.mock.calls.filter(([command]) => !(command instanceof PutObjectCommand) && !(command instanceof DeleteObjectCommand))).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    for (const id of ids) expect([...(await indexOf(id, START)).values()].map((v) => [v.summary.status, v.version])).toEqual(Array.from({ length: 4 }, () => ['completed', 5]));
  });

  it('a redelivered batch writes the index entries its first delivery stored the record of but not them', async () => {
    // Prepare: the index PUTs fail once, after the record's PUT went through
    const callId = newCallId();
    const message = workerMessage(callId, 2, { final: true });
    const original = S3Client.prototype.send as (...args: unknown[]) => Promise<unknown>;
    const spy = vi.spyOn(S3Client.prototype as unknown as { send: (...args: unknown[]) => Promise<unknown> }, 'send').mockImplementation(async function (this: S3Client, ...args: unknown[]) {
      const [command] = args;
      const key = (command as { input: { Key?: string } }).input.Key ?? '';
      if (command instanceof PutObjectCommand && key.startsWith('_calldata-time/')) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      return Reflect.apply(original, this, args);
    });
    const failed = await backend.merge(deltasOf([message])).then(
      () => undefined,
      (error: unknown) => error,
    );
    spy.mockRestore();
    expect(failed).toMatchObject({ retryable: true });
    expect([...(await indexOf(callId, START)).keys()].filter((k) => k.startsWith('_calldata-time/'))).toEqual([]);
    // Act: the queue delivers the batch again
    const [outcome] = await backend.merge(deltasOf([message]));
    // Assess: nothing new for the record, and all four entries are there
    expect(outcome?.changed).toBe(false);
    expect([...(await indexOf(callId, START)).values()].map((v) => [v.summary.status, v.version])).toEqual(Array.from({ length: 4 }, () => ['completed', 1]));
  });

  it('a slow writer of an older version never replaces a newer index entry, nor brings back a deleted one', async () => {
    // Prepare: container A stored version 1; its index entries of version 2 are held back until
    // container B has written version 3 (an earlier start: the entries move) and its entries
    const callId = newCallId();
    const [a, b] = [0, 1].map(() => new S3Backend(s3SettingsFor(endpoint, bucket), BOTH)) as [S3Backend, S3Backend];
    await a.merge(deltasOf([workerMessage(callId, 1)]));
    const original = S3Client.prototype.send as (...args: unknown[]) => Promise<unknown>;
    let recordTwoLanded!: () => void;
    const recordTwo = new Promise<void>((done) => (recordTwoLanded = done));
    let releaseTwo!: () => void;
    const versionThreeDone = new Promise<void>((done) => (releaseTwo = done));
    const spy = vi.spyOn(S3Client.prototype as unknown as { send: (...args: unknown[]) => Promise<unknown> }, 'send').mockImplementation(async function (this: S3Client, ...args: unknown[]) {
      const [command] = args;
      const input = (command as { input: { Key?: string; Metadata?: Record<string, string> } }).input;
      const version = command instanceof PutObjectCommand ? input.Metadata?.['calldata-version'] : undefined;
      const isEntry = /^_calldata-(time|room|number)\//.test(input.Key ?? '');
      if (isEntry && version === '2') await versionThreeDone;
      const result = await Reflect.apply(original, this, args);
      if (input.Key === `_calldata-index/${callId}.json` && version === '2') recordTwoLanded();
      return result;
    });
    try {
      // Act: A's final snapshot lands its record (version 2, the summary changes), then B merges an earlier start (version 3)
      const slow = a.merge(deltasOf([workerMessage(callId, 2, { final: true })]));
      await recordTwo;
      const earlier = workerMessage(callId, 1, { writer: 'job:AJ_other', final: true });
      earlier.facts.startedAtMs = START - 1_000;
      await b.merge(deltasOf([earlier]));
      releaseTwo();
      await slow;
    } finally {
      spy.mockRestore();
    }
    // Assess: only version 3's entries, at the earlier start
    expect(await indexOf(callId, START)).toEqual(new Map());
    expect([...(await indexOf(callId, START - 1_000)).values()].map((v) => [v.summary.startedAtMs, v.version])).toEqual(Array.from({ length: 4 }, () => [START - 1_000, 3]));
  });

  it('refuses a limit outside 1-1000 and a cursor with a call id no record can have', async () => {
    for (const limit of [0, 1001, 2.5, Number.NaN]) await expect(backend.queryCalls({ limit })).rejects.toMatchObject({ name: 'InvalidQueryError', retryable: false });
    const cursor = Buffer.from(JSON.stringify([START, 'not/an id'])).toString('base64url');
    await expect(backend.queryCalls({ limit: 10, cursor })).rejects.toMatchObject({ name: 'InvalidQueryError', retryable: false });
  });
});
