import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { StorageError } from '../../functions/storage/errors.ts';
import { callKey, RedisBackend, roomKey } from '../../functions/storage/redis.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

const TZ = 'Asia/Kolkata';

function viaPort(location: string, port: number): string {
  const url = new URL(location);
  url.port = String(port);
  return url.toString();
}

/**
 * Counts writes to sockets connected to `port` while `act` runs. A temporary own `write` on
 * Socket.prototype wraps the inherited one (vi.spyOn did not see calls to the inherited stream
 * method); the original property is put back afterwards.
 */
async function countSocketWrites<T>(port: number, act: () => Promise<T>): Promise<{ result: T; writes: number }> {
  const own = Object.getOwnPropertyDescriptor(Socket.prototype, 'write');
  const inherited = Socket.prototype.write;
  let writes = 0;
  Object.defineProperty(Socket.prototype, 'write', {
    configurable: true,
    writable: true,
    value: function (this: Socket, ...args: Parameters<Socket['write']>) {
      if (this.remotePort === port) writes++;
      return inherited.apply(this, args);
    },
  });
  try {
    return { result: await act(), writes };
  } finally {
    if (own) Object.defineProperty(Socket.prototype, 'write', own);
    else delete (Socket.prototype as { write?: unknown }).write;
  }
}

describeBackendConformance({
  name: 'redis',
  location: () => requireServer('redis'),
  create: (location) => new RedisBackend(location),
  serverPort: SERVERS.redis.port,
  viaPort,
});

describe('redis backend specifics', () => {
  let location: string;
  let backend: RedisBackend;
  let inspector: Redis;

  beforeAll(async () => {
    location = await requireServer('redis');
    backend = new RedisBackend(location);
    inspector = new Redis(location, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await backend?.close();
    await inspector?.quit();
  });

  it('lists a room’s calls in start-time order whatever order they were written in', async () => {
    // Prepare: three calls of one room, written latest first
    const roomName = `ordered-${randomUUID()}`;
    const base = Date.UTC(2026, 0, 1, 12, 0, 0);
    const calls = [2, 0, 1].map((minute) => buildSnapshot({ roomName, startedAtMs: base + minute * 60_000 }));
    // Act
    for (const snapshot of calls) await backend.write([metadataRecord(snapshot, TZ)]);
    // Assess
    const ids = await backend.roomCallIds('metadata', roomName);
    expect(ids).toEqual([calls[1]?.callId, calls[2]?.callId, calls[0]?.callId]);
  });

  it('adds no second room entry or record when a snapshot is redelivered', async () => {
    // Prepare
    const roomName = `redelivered-${randomUUID()}`;
    const snapshot = buildSnapshot({ roomName, turns: 2 });
    const first = await backend.write([metadataRecord(snapshot, TZ), transcriptionRecord(snapshot, TZ)]);
    // Act: the same snapshot three more times, once twice in one batch
    const again = await backend.write([metadataRecord(snapshot, TZ), metadataRecord(snapshot, TZ)]);
    await backend.write([metadataRecord(snapshot, TZ), transcriptionRecord(snapshot, TZ)]);
    // Assess
    expect(first.map((o) => o.applied)).toEqual([true, true]);
    expect(again.map((o) => o.applied)).toEqual([false, false]);
    expect(await backend.roomCallIds('metadata', roomName)).toEqual([snapshot.callId]);
    expect(await backend.roomCallIds('transcription', roomName)).toEqual([snapshot.callId]);
    expect(await inspector.zcard(roomKey('metadata', roomName))).toBe(1);
    expect(await inspector.hkeys(callKey('metadata', snapshot.callId))).toEqual(expect.arrayContaining(['seq', 'doc']));
    expect(await inspector.hlen(callKey('metadata', snapshot.callId))).toBe(2);
  });

  it('keeps a room name that looks like a key pattern out of other rooms’ keys', async () => {
    // Prepare: a room literally named like a glob over other room keys
    const plainRoom = `plain-${randomUUID()}`;
    const globRoom = 'calldata:call_metadata:room:*';
    const plain = buildSnapshot({ roomName: plainRoom });
    const glob = buildSnapshot({ roomName: globRoom });
    // Act
    await backend.write([metadataRecord(plain, TZ), metadataRecord(glob, TZ)]);
    // Assess: each call is indexed under its own room only; the stored JSON keeps the name verbatim
    expect(await backend.roomCallIds('metadata', plainRoom)).toEqual([plain.callId]);
    expect(await backend.roomCallIds('metadata', globRoom)).toContain(glob.callId);
    expect(await backend.roomCallIds('metadata', globRoom)).not.toContain(plain.callId);
    expect((await backend.read('metadata', glob.callId))?.document).toMatchObject({ room_name: globRoom });
  });

  it('sends a batch of many records to the server in one pipeline write', async () => {
    // Prepare: a warm connection, 20 records of 10 calls
    await backend.read('metadata', 'warm-up');
    const records = Array.from({ length: 10 }, () => buildSnapshot({ turns: 1 })).flatMap((s) => [metadataRecord(s, TZ), transcriptionRecord(s, TZ)]);
    // Act
    const { result: outcomes, writes } = await countSocketWrites(SERVERS.redis.port, () => backend.write(records));
    // Assess: every record written, with a single socket write (so one round trip)
    expect(outcomes).toHaveLength(20);
    expect(outcomes.every((o) => o.applied)).toBe(true);
    expect(writes).toBe(1);
  });

  it('fails fast with a retryable error when the server cannot be reached at all', async () => {
    // Prepare: a port nothing listens on
    const proxy = new TcpProxy(SERVERS.redis.port);
    const port = await proxy.start();
    await proxy.down();
    const unreachable = new RedisBackend(viaPort(location, port));
    const started = Date.now();
    try {
      // Act
      const failure = await unreachable.write([metadataRecord(buildSnapshot({}), TZ)]).then(
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

  it('reads nothing for a call that was never written', async () => {
    // Act
    const stored = await backend.read('metadata', `missing-${randomUUID()}`);
    // Assess
    expect(stored).toBeUndefined();
  });

  it('keeps the location free of the password', () => {
    const withPassword = new RedisBackend('redis://user:s3cret@127.0.0.1:1/0');
    expect(withPassword.locationOf('metadata', 'call-1')).toBe('redis://user:***@127.0.0.1:1/0 key calldata:call_metadata:call:call-1');
  });
});
