/**
 * Redis backend. Per artifact kind (`call_metadata`, `call_transcription`):
 * - `calldata:<kind>:call:<callId>`: HASH { seq, doc } holding the newest document as JSON text;
 * - `calldata:<kind>:room:<roomName>`: ZSET of call ids scored by the call's start time.
 * Keys are binary-safe, so untrusted room names go in verbatim; the `call:` / `room:` prefixes
 * keep the two key families apart whatever a room name contains. Every write is a Lua script
 * that compares the stored seq first, so redelivery and reordering never regress or duplicate.
 */
import { Redis, type ChainableCommander } from 'ioredis';
import { redactUrl } from '../shared/redact.ts';
import { COLLECTION, newestPerCall, spreadOutcomes, type StorageBackend, type StoredArtifact, type WriteOutcome } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { BackendUnavailableError, classifyDriverError, LocationError, StorageError } from './errors.ts';

const BACKEND = 'redis';
const CONNECT_TIMEOUT_MS = 5_000;
/** A hung server must not hold a Lambda invocation: the queue retries instead. */
const COMMAND_TIMEOUT_MS = 15_000;
const KEY_PREFIX = 'calldata';

export function callKey(kind: ArtifactKind, callId: string): string {
  return `${KEY_PREFIX}:${COLLECTION[kind]}:call:${callId}`;
}

export function roomKey(kind: ArtifactKind, roomName: string): string {
  return `${KEY_PREFIX}:${COLLECTION[kind]}:room:${roomName}`;
}

/**
 * KEYS: call hash, room zset. ARGV: seq, document JSON, start time (ms), call id.
 * Returns 1 when written, 0 when a record with an equal or newer seq is already stored.
 * Seqs stay below 2^53, so Lua's doubles compare them exactly.
 */
const GUARDED_WRITE_LUA = `
local stored = redis.call('HGET', KEYS[1], 'seq')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'doc', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`;
const GUARDED_WRITE = 'calldataGuardedWrite';

/** The script command defineCommand adds (ioredis sends EVALSHA, falling back to EVAL once per connection). */
interface GuardedWriteCommander {
  calldataGuardedWrite(callKey: string, roomKey: string, seq: string, doc: string, startedAtMs: string, callId: string): unknown;
}

function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|LOADING|READONLY|MASTERDOWN|TRYAGAIN/.test(error.message)
  );
}

function classify(action: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  if (isConnectionError(error)) return new BackendUnavailableError(BACKEND, `${BACKEND}: ${action} failed: server unavailable`, error);
  return classifyDriverError(BACKEND, action, error);
}

export class RedisBackend implements StorageBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly redacted: string;
  private client: Redis | undefined;

  constructor(location: string) {
    if (!/^rediss?:\/\//i.test(location)) throw new LocationError(BACKEND, 'redis: location must start with redis:// or rediss://');
    this.location = location;
    this.redacted = redactUrl(location);
  }

  private getClient(): Redis {
    if (!this.client || this.client.status === 'end') {
      let client: Redis;
      try {
        client = new Redis(this.location, {
          connectTimeout: CONNECT_TIMEOUT_MS,
          commandTimeout: COMMAND_TIMEOUT_MS,
          // No offline queue: a command issued while disconnected fails at once instead of
          // waiting in memory (see connected() for how a fresh or recovering connection is awaited).
          enableOfflineQueue: false,
          // Commands in flight when the connection drops get one reconnect to complete, then fail.
          maxRetriesPerRequest: 1,
          // Keep reconnecting forever, but never more than a second apart, so a write soon after
          // the server returns finds a live connection.
          retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1_000),
        });
      } catch (cause) {
        throw new LocationError(BACKEND, `redis: cannot use location ${this.redacted}`, cause);
      }
      // Connection errors surface through the commands (and connected()); without a listener
      // ioredis would print every failed reconnect attempt.
      client.on('error', () => undefined);
      // Every write waiting in connected() listens briefly; all of them remove their listeners.
      client.setMaxListeners(64);
      client.defineCommand(GUARDED_WRITE, { numberOfKeys: 2, lua: GUARDED_WRITE_LUA });
      this.client = client;
    }
    return this.client;
  }

  /**
   * The client once it is ready. A connection being (re)established is waited for until it is
   * ready or its attempt fails, at most the connect timeout; while the server stays down this
   * fails with a retryable error within about a second (the next refused reconnect).
   */
  private async connected(): Promise<Redis> {
    const client = this.getClient();
    if (client.status === 'ready') return client;
    if (client.status === 'wait') client.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const done = (error?: unknown) => {
        clearTimeout(timer);
        client.off('ready', onReady).off('error', onError).off('end', onEnd);
        if (error === undefined) resolve();
        else reject(new BackendUnavailableError(BACKEND, `${BACKEND}: not connected to ${this.redacted}`, error));
      };
      const onReady = () => done();
      const onError = (error: unknown) => done(error ?? new Error('connection failed'));
      const onEnd = () => done(new Error('Connection is closed.'));
      const timer = setTimeout(() => done(new Error(`not ready after ${CONNECT_TIMEOUT_MS} ms (status ${client.status})`)), CONNECT_TIMEOUT_MS);
      client.on('ready', onReady).on('error', onError).on('end', onEnd);
    });
    return client;
  }

  locationOf(kind: ArtifactKind, callId: string): string {
    return `${this.redacted} key ${callKey(kind, callId)}`;
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    if (records.length === 0) return [];
    const { winners, winnerIndex } = newestPerCall(records);
    let results: [error: Error | null, result: unknown][] | null;
    try {
      const client = await this.connected();
      // All guarded writes go out in one pipeline: one round trip whatever the batch size.
      const pipeline: ChainableCommander = client.pipeline();
      const scripted = pipeline as unknown as GuardedWriteCommander;
      for (const record of winners) {
        scripted.calldataGuardedWrite(
          callKey(record.kind, record.callId),
          roomKey(record.kind, record.roomName),
          String(record.seq),
          JSON.stringify(record.document),
          String(record.startedAtMs),
          record.callId,
        );
      }
      results = await pipeline.exec();
    } catch (error) {
      throw classify('write', error);
    }
    if (!results || results.length !== winners.length) {
      throw new BackendUnavailableError(BACKEND, `${BACKEND}: write failed: pipeline returned ${results?.length ?? 'no'} replies for ${winners.length} commands`);
    }
    const outcomes = winners.map((record, i): WriteOutcome => {
      const [error, reply] = results[i] ?? [new Error('missing reply'), null];
      // Any failed script fails the batch: the records stay queued, and a retry is harmless.
      if (error) throw classify('write', error);
      return { location: this.locationOf(record.kind, record.callId), applied: Number(reply) === 1 };
    });
    return spreadOutcomes(records, winnerIndex, outcomes);
  }

  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    let seq: string | null | undefined;
    let doc: string | null | undefined;
    try {
      const client = await this.connected();
      [seq, doc] = await client.hmget(callKey(kind, callId), 'seq', 'doc');
    } catch (error) {
      throw classify('read', error);
    }
    if (seq == null || doc == null) return undefined;
    return { seq: Number(seq), document: JSON.parse(doc) as unknown, location: this.locationOf(kind, callId) };
  }

  /** Call ids of a room, oldest start first (ties by call id), from the room index. */
  async roomCallIds(kind: ArtifactKind, roomName: string): Promise<string[]> {
    try {
      const client = await this.connected();
      return await client.zrange(roomKey(kind, roomName), 0, '-1');
    } catch (error) {
      throw classify('list room', error);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client || client.status === 'end') return;
    // quit() needs a live connection; otherwise drop the socket and stop reconnecting.
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }
}
