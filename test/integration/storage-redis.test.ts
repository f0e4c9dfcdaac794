/**
 * Redis backend against the real server. Everything runs in a database number of its own, and
 * every call this file writes is removed afterwards (its hash and its index entries), so nothing
 * clashes with other test files, and concurrent runs of this file only ever add entries that
 * carry fresh call ids. The query conformance suite needs a key space holding only its own
 * calls: it gets a second database, emptied before and after it (so two runs of this file at
 * once would disturb each other's query suite).
 */
import { randomUUID } from 'node:crypto';
import { Pipeline, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import { stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { summarize } from '../../functions/domain/render.ts';
import { newestFirst, type BackendOptions } from '../../functions/storage/backend.ts';
import { InvalidQueryError, LocationError, StorageError } from '../../functions/storage/errors.ts';
import { CALL_KEY_PREFIX, callKey, NUMBER_KEY_PREFIX, numberKey, OPEN_KEY, RedisBackend, ROOM_KEY_PREFIX, roomKey, TIME_KEY } from '../../functions/storage/redis.ts';
import { BOTH, describeBackendConformance, MODEL, workerMessage } from '../support/backend-conformance.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

/** This file's database (bench/persist.ts flushes 15; other tests use 0). */
const DB = 11;
/** The query conformance suite's database, emptied before and after it. */
const QUERY_DB = 12;
const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

/** Call ids this file wrote, removed in afterAll. */
const written = new Set<string>();

function inDb(url: string, db = DB): string {
  const withDb = new URL(url);
  withDb.pathname = `/${db}`;
  return withDb.toString();
}

function viaPort(location: string, port: number): string {
  const url = new URL(location);
  url.port = String(port);
  return url.toString();
}

/** A backend that remembers which calls it wrote, for the clean-up. */
function tracked(backend: RedisBackend): RedisBackend {
  const merge = backend.merge.bind(backend);
  backend.merge = async (deltas) => {
    for (const delta of deltas) written.add(delta.callId);
    return merge(deltas);
  };
  return backend;
}

function create(location: string, options: BackendOptions): RedisBackend {
  return tracked(new RedisBackend(location, options));
}

const callId = (): string => `RM_${randomUUID().replaceAll('-', '').slice(0, 16)}`;

let inspector: Redis;

beforeAll(async () => {
  inspector = new Redis(inDb(await requireServer('redis')), { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  if (!inspector) return;
  const ids = [...written];
  const fields = await Promise.all(ids.map((id) => inspector.hmgetBuffer(callKey(id), 'room', 'user_number', 'agent_number')));
  const cleanup = inspector.pipeline();
  ids.forEach((id, i) => {
    const [room, ...numbers] = fields[i] ?? [];
    if (room) cleanup.zrem(Buffer.concat([Buffer.from(ROOM_KEY_PREFIX), room]), id);
    for (const number of numbers) if (number) cleanup.zrem(Buffer.concat([Buffer.from(NUMBER_KEY_PREFIX), number]), id);
    cleanup.zrem(OPEN_KEY, id).zrem(TIME_KEY, id).del(callKey(id));
  });
  await cleanup.exec();
  await inspector.quit();
});

describeQueryConformance({
  name: 'redis',
  create: async (options) => {
    const location = inDb(await requireServer('redis'), QUERY_DB);
    const flush = new Redis(location, { maxRetriesPerRequest: 1 });
    try {
      await flush.flushdb();
    } finally {
      await flush.quit();
    }
    return new RedisBackend(location, options);
  },
});

afterAll(async () => {
  const flush = new Redis(inDb(SERVERS.redis.url, QUERY_DB), { maxRetriesPerRequest: 1 });
  try {
    await flush.flushdb();
  } finally {
    await flush.quit();
  }
});

describeBackendConformance({
  name: 'redis',
  location: async () => inDb(await requireServer('redis')),
  create,
  serverPort: SERVERS.redis.port,
  viaPort,
});

describe('redis backend specifics', () => {
  let location: string;
  let backend: RedisBackend;

  beforeAll(async () => {
    location = inDb(await requireServer('redis'));
    backend = create(location, BOTH);
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('keeps a call in one hash with the documented fields, indexed by room, start time and openness', async () => {
    // Prepare
    const id = callId();
    const roomName = `fields-${randomUUID()}`;
    const message = workerMessage(id, 2, { roomName });
    // Act
    const [outcome] = await backend.merge(deltasOf([message]));
    // Assess
    expect(outcome?.location).toBe(`${location} key ${CALL_KEY_PREFIX}${id}`);
    const hash = await inspector.hgetall(callKey(id));
    expect(Object.keys(hash).sort()).toEqual([
      'agent_number',
      'final',
      'folder',
      'last_fact_ms',
      'metadata',
      'room',
      'sole_writer',
      'start_ms',
      'state',
      'summary',
      'transcription',
      'user_number',
      'version',
      'writer_seq',
    ]);
    expect(hash).toMatchObject({ version: '1', sole_writer: 'job:AJ_worker', writer_seq: '2', final: '0', room: roomName, start_ms: String(START), last_fact_ms: String(START + 4_000), folder: outcome?.folder });
    expect(hash).toMatchObject({ user_number: '+919876543210', agent_number: '+14155550100', summary: JSON.stringify(summarize(stateOf(message))) });
    expect(JSON.parse(hash.state ?? '')).toEqual(stateOf(message));
    expect(JSON.parse(hash.metadata ?? '')).toMatchObject({ call_id: id, room_name: roomName });
    expect(await inspector.zrange(roomKey(roomName), 0, '-1', 'WITHSCORES')).toEqual([id, String(START)]);
    expect(await inspector.zscore(TIME_KEY, id)).toBe(String(START));
    expect(await inspector.zscore(OPEN_KEY, id)).toBe(String(START + 4_000));
    expect(await inspector.zscore(numberKey('+919876543210'), id)).toBe(String(START));
    expect(await inspector.zscore(numberKey('+14155550100'), id)).toBe(String(START));
  });

  it('indexes a call for listing only once an agent reported it, and moves it when its number changes', async () => {
    // Prepare: a call known only by room and start (no direction yet: not listed)
    const id = callId();
    const roomName = `listing-${randomUUID()}`;
    const caller = `+1555${randomUUID().slice(0, 8)}`;
    const newCaller = `+1666${randomUUID().slice(0, 8)}`;
    const { direction: _direction, userNumber: _userNumber, ...facts } = workerMessage(id, 1, { roomName }).facts;
    await backend.merge(deltasOf([{ ...workerMessage(id, 1, { roomName }), facts }]));
    const unlisted = { hash: await inspector.hkeys(callKey(id)), time: await inspector.zscore(TIME_KEY, id), room: await inspector.zscore(roomKey(roomName), id) };
    // Act: the agent reports the call (with a caller number), then a later snapshot carries another number
    const listed = workerMessage(id, 2, { roomName });
    await backend.merge(deltasOf([{ ...listed, facts: { ...listed.facts, userNumber: { value: caller, atMs: START } } }]));
    const first = { caller: await inspector.zscore(numberKey(caller), id), page: await backend.queryCalls({ limit: 10, number: caller }) };
    const moved = workerMessage(id, 3, { roomName });
    await backend.merge(deltasOf([{ ...moved, facts: { ...moved.facts, userNumber: { value: newCaller, atMs: START } } }]));
    // Assess
    expect(unlisted).toEqual({ hash: expect.not.arrayContaining(['summary', 'user_number', 'agent_number']), time: null, room: null });
    expect(first.caller).toBe(String(START));
    expect(first.page.calls.map((c) => c.callId)).toEqual([id]);
    expect(await inspector.zscore(TIME_KEY, id)).toBe(String(START));
    expect(await inspector.zscore(roomKey(roomName), id)).toBe(String(START));
    expect(await inspector.exists(numberKey(caller))).toBe(0);
    expect(await inspector.zscore(numberKey(newCaller), id)).toBe(String(START));
    expect((await backend.queryCalls({ limit: 10, number: newCaller })).calls).toEqual([summarize((await backend.read(id))!.state)]);
    expect((await backend.queryCalls({ limit: 10, number: caller })).calls).toEqual([]);
  });

  it('pages calls that share a start by call id, descending, resuming exactly after the cursor', async () => {
    // Prepare: nine calls of one room, all starting at the same millisecond
    const roomName = `ties-${randomUUID()}`;
    const ids = Array.from({ length: 9 }, callId);
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1, { roomName }))));
    const want = [...ids].sort().reverse();
    for (const limit of [1, 2, 4, 9, 10]) {
      // Act
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await backend.queryCalls({ limit, room: roomName, cursor });
        seen.push(...page.calls.map((c) => c.callId));
        cursor = page.cursor;
      } while (cursor);
      // Assess
      expect(seen, `pages of ${limit}`).toEqual(want);
    }
    const inbound = await backend.queryCalls({ limit: 3, room: roomName, direction: 'inbound' });
    expect(inbound.calls.map((c) => c.callId)).toEqual(want.slice(0, 3));
    expect((await backend.queryCalls({ limit: 3, room: roomName, direction: 'inbound', cursor: inbound.cursor })).calls.map((c) => c.callId)).toEqual(want.slice(3, 6));
  });

  it('an unfiltered page of 50 is two round trips: one index read, one pipeline of summaries', async () => {
    // Prepare: at least 51 listed calls in this database (the client is connected already)
    await backend.merge(deltasOf(Array.from({ length: 60 }, () => workerMessage(callId(), 1))));
    await backend.queryCalls({ limit: 1 });
    const exec = vi.spyOn(Pipeline.prototype, 'exec');
    const sent = vi.spyOn(Redis.prototype, 'sendCommand');
    try {
      // Act
      const page = await backend.queryCalls({ limit: 50 });
      // Assess: one command on its own and one pipeline; everything else went in that pipeline
      expect(page.calls).toHaveLength(50);
      expect(page.cursor).toBeDefined();
      expect([...page.calls].sort(newestFirst)).toEqual(page.calls);
      expect(exec).toHaveBeenCalledTimes(1);
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(['zrevrangebyscore', ...Array.from({ length: 50 }, () => 'hget')]);
    } finally {
      exec.mockRestore();
      sent.mockRestore();
    }
  });

  it('refuses a page size outside 1..1000 and a time that is not whole milliseconds', async () => {
    for (const query of [{ limit: 0 }, { limit: 1_001 }, { limit: 2.5 }, { limit: 10, sinceMs: Number.NaN }, { limit: 10, untilMs: 1.5 }]) {
      const error = await backend.queryCalls(query).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, JSON.stringify(query)).toBeInstanceOf(InvalidQueryError);
    }
  });

  it('writes only the documents this location stores and leaves the other field untouched', async () => {
    // Prepare: a call stored by a metadata-only location, and a transcription field someone else wrote
    const id = callId();
    const metadataOnly = create(location, { documents: ['metadata'], model: MODEL });
    try {
      await metadataOnly.merge(deltasOf([workerMessage(id, 1)]));
      const afterFirst = await inspector.hkeys(callKey(id));
      await inspector.hset(callKey(id), 'transcription', '{"kept":true}');
      // Act
      await metadataOnly.merge(deltasOf([workerMessage(id, 2)]));
      // Assess
      expect(afterFirst).toContain('metadata');
      expect(afterFirst).not.toContain('transcription');
      expect(await inspector.hget(callKey(id), 'transcription')).toBe('{"kept":true}');
      expect(await inspector.hget(callKey(id), 'version')).toBe('2');
      expect((await metadataOnly.read(id))?.documents).toEqual({ metadata: expect.objectContaining({ call_id: id }) });
    } finally {
      await metadataOnly.close();
    }
  });

  it('keeps hostile room names as data: each call in its own room key, no key created by a name', async () => {
    // Prepare: a plain room, a room named like a glob over room keys, a room with a CRLF command
    // in it, and two names that differ only in an unpaired surrogate (UTF-8 would merge them)
    const names = [`plain-${randomUUID()}`, `${ROOM_KEY_PREFIX}*`, '\r\nSET injected 1\r\n', 'cut \ud83d', 'cut \ud83e'];
    const calls = names.map((roomName, i) => ({ roomName, id: callId(), lastFactAtMs: 1_000 + i }));
    // A last fact long ago, so the open-calls query below sees these calls first.
    const messages = calls.map(({ roomName, id, lastFactAtMs }): FactMessage => ({ ...workerMessage(id, 1, { roomName }), sentAtMs: lastFactAtMs }));
    // Act
    await backend.merge(deltasOf(messages));
    // Assess: every room key holds its own call and none of the others (other tests share some
    // of these names); the names made no other keys
    const ids = new Set(calls.map((call) => call.id));
    for (const { roomName, id } of calls) {
      expect((await inspector.zrange(roomKey(roomName), 0, '-1')).filter((member) => ids.has(member))).toEqual([id]);
      expect((await backend.read(id))?.state.roomName).toBe(roomName);
    }
    expect(await inspector.exists('injected')).toBe(0);
    const keys = await inspector.keysBuffer('*');
    const foreign = keys.map((key) => key.toString('latin1')).filter((key) => !key.startsWith(CALL_KEY_PREFIX) && !key.startsWith(ROOM_KEY_PREFIX) && !key.startsWith(NUMBER_KEY_PREFIX) && key !== OPEN_KEY && key !== TIME_KEY);
    expect(foreign).toEqual([]);
    const open = await backend.openCalls(1_000 + calls.length, 1_000);
    for (const { roomName, id, lastFactAtMs } of calls) expect(open).toContainEqual({ callId: id, roomName, lastFactAtMs });
  });

  it('moves the call to the room the merge settles on when another writer reports a smaller room name', async () => {
    // Prepare: the worker reports one room; the webhook reports a name that sorts first
    const id = callId();
    const later = `room-b-${randomUUID()}`;
    const earlier = `room-a-${randomUUID()}`;
    await backend.merge(deltasOf([workerMessage(id, 1, { roomName: later })]));
    // Act
    await backend.merge(deltasOf([{ ...workerMessage(id, 1, { roomName: earlier, writer: 'webhook:room' }), cumulative: false }]));
    // Assess
    expect((await backend.read(id))?.state.roomName).toBe(earlier);
    expect(await inspector.zrange(roomKey(earlier), 0, '-1')).toEqual([id]);
    expect(await inspector.exists(roomKey(later))).toBe(0);
  });

  it('one writer per call: a batch of updates of ten stored calls is one pipeline, one round trip', async () => {
    // Prepare: ten stored calls (which also loads the scripts on the connection), then their next snapshots
    const ids = Array.from({ length: 10 }, callId);
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
    const exec = vi.spyOn(Pipeline.prototype, 'exec');
    const sent = vi.spyOn(Redis.prototype, 'sendCommand');
    try {
      // Act
      const outcomes = await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
      // Assess: every call replaced, by ten scripts sent in a single pipeline and nothing else
      expect(outcomes.every((o) => o.changed)).toBe(true);
      expect(exec).toHaveBeenCalledTimes(1);
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(Array.from({ length: 10 }, () => 'evalsha'));
      expect(await Promise.all(ids.map((id) => inspector.hget(callKey(id), 'version')))).toEqual(ids.map(() => '2'));
    } finally {
      exec.mockRestore();
      sent.mockRestore();
    }
  });

  it('drops a call from the open index once it is final', async () => {
    // Prepare: an open call
    const id = callId();
    await backend.merge(deltasOf([workerMessage(id, 1)]));
    const whileOpen = await inspector.zscore(OPEN_KEY, id);
    // Act
    await backend.merge(deltasOf([workerMessage(id, 2, { final: true })]));
    // Assess
    expect(whileOpen).toBe(String(START + 2_000));
    expect(await inspector.zscore(OPEN_KEY, id)).toBeNull();
    expect(await inspector.hget(callKey(id), 'final')).toBe('1');
    expect(await backend.openCalls(Number.MAX_SAFE_INTEGER, 1_000_000)).not.toContainEqual(expect.objectContaining({ callId: id }));
  });

  it('fails fast with a retryable error when the server cannot be reached at all', async () => {
    // Prepare: a port nothing listens on
    const proxy = new TcpProxy(SERVERS.redis.port);
    const port = await proxy.start();
    await proxy.down();
    const unreachable = create(viaPort(location, port), BOTH);
    const started = Date.now();
    try {
      // Act
      const failure = await unreachable.merge(deltasOf([workerMessage(callId(), 1)])).then(
        () => undefined,
        (error: unknown) => error,
      );
      // Assess
      expect(failure).toBeInstanceOf(StorageError);
      expect((failure as StorageError).retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await unreachable.close();
    }
  });

  it('keeps the password out of the location and refuses a location that is not a redis URL', async () => {
    // Prepare: the server's default user accepts any password
    const url = new URL(location);
    url.username = 'default';
    url.password = 's3cret';
    const withPassword = create(url.toString(), BOTH);
    const id = callId();
    try {
      // Act
      const [outcome] = await withPassword.merge(deltasOf([workerMessage(id, 1)]));
      // Assess
      expect(outcome?.location).toBe(`redis://default:***@127.0.0.1:${SERVERS.redis.port}/${DB} key ${CALL_KEY_PREFIX}${id}`);
      expect(() => new RedisBackend('postgres://127.0.0.1/calldata', BOTH)).toThrow(LocationError);
    } finally {
      await withPassword.close();
    }
  });
});
