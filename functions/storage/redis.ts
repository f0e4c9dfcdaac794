/**
 * Redis backend: one hash per call and three sorted sets that index it.
 * - `calldata:call:<callId>`: HASH { version, sole_writer, writer_seq, folder, final,
 *   last_fact_ms, room, start_ms, state, metadata, transcription } — the merged record (`state`)
 *   and the rendered documents as JSON text, the folder, a version for compare-and-swap and the
 *   sole writer for the one-round-trip fast path. `room` / `start_ms` are absent until known.
 * - `calldata:room:<roomName>`: ZSET of the room's call ids scored by start time (ms);
 * - `calldata:time`: ZSET of every call id scored by start time;
 * - `calldata:open`: ZSET of the call ids not final, scored by their last fact (the sweeper's list).
 *
 * Both guarded writes are Lua scripts (sent as EVALSHA), so the guard, the hash and the indexes
 * change together atomically; a batch is one pipeline of one script per call: one round trip.
 * The scripts touch keys of different hash slots, so this needs a standalone Redis (or a single
 * shard), as before.
 *
 * Keys are binary-safe: untrusted room names go into keys verbatim, and the `call:` / `room:`
 * prefixes keep the key families apart whatever a name contains. Call ids and writer ids are
 * restricted to a safe alphabet by the contract. Room names may hold unpaired UTF-16
 * surrogates, which UTF-8 cannot carry, so room keys and the `room` field are WTF-8 (see wtf8()).
 */
import { Redis, type ChainableCommander } from 'ioredis';
import type { CallState, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import { MergingBackend, type BackendOptions, type FastResult, type OpenCall, type RowWrite, type StoredCall } from './backend.ts';
import { BackendUnavailableError, classifyDriverError, LocationError, StorageError } from './errors.ts';

const BACKEND = 'redis';
const CONNECT_TIMEOUT_MS = 5_000;
/** A hung server must not hold a Lambda invocation: the queue retries instead. */
const COMMAND_TIMEOUT_MS = 15_000;

export const CALL_KEY_PREFIX = 'calldata:call:';
export const ROOM_KEY_PREFIX = 'calldata:room:';
export const OPEN_KEY = 'calldata:open';
export const TIME_KEY = 'calldata:time';

/**
 * Text as WTF-8: exactly its UTF-8 bytes when well formed; an unpaired surrogate becomes the
 * three-byte sequence of its code unit instead of U+FFFD, so two room names that differ only
 * there keep apart keys and the name reads back exactly.
 */
export function wtf8(text: string): Buffer {
  if (text.isWellFormed()) return Buffer.from(text, 'utf8');
  const bytes: number[] = [];
  // for..of walks code points; an unpaired surrogate comes out alone.
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Buffer.from(bytes);
}

/** The inverse of wtf8() (the bytes are always ones this backend wrote). */
export function fromWtf8(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // U+FFFD marks an encoded surrogate (or a genuine U+FFFD, which the slow path keeps too).
  if (!text.includes('\uFFFD')) return text;
  const units: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] ?? 0;
    const next = (k: number) => (bytes[i + k] ?? 0) & 0x3f;
    let cp: number;
    if (b < 0x80) [cp, i] = [b, i + 1];
    else if (b < 0xe0) [cp, i] = [((b & 0x1f) << 6) | next(1), i + 2];
    else if (b < 0xf0) [cp, i] = [((b & 0x0f) << 12) | (next(1) << 6) | next(2), i + 3];
    else [cp, i] = [((b & 0x07) << 18) | (next(1) << 12) | (next(2) << 6) | next(3), i + 4];
    if (cp < 0x10000) units.push(cp);
    else units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  let out = '';
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let i = 0; i < units.length; i += 8_192) out += String.fromCharCode(...units.slice(i, i + 8_192));
  return out;
}

export function callKey(callId: string): string {
  return `${CALL_KEY_PREFIX}${callId}`;
}

export function roomKey(roomName: string): Buffer {
  return Buffer.concat([Buffer.from(ROOM_KEY_PREFIX), wtf8(roomName)]);
}

/**
 * The write both scripts share, after their guard has set `version`.
 * KEYS: 1 call hash, 2 open zset, 3 time zset, 4 room zset of ARGV[7] (untouched while the room is unknown).
 * ARGV: 1 call id, 2 sole writer ('' when several), 3 writer seq, 4 folder, 5 final ('1' / '0'),
 *       6 last fact ms, 7 room ('' = unknown), 8 start ms ('' = unknown), 9 state JSON,
 *       10 expected version (compare-and-swap only; '' = absent), then pairs of document field
 *       and JSON ('' = none) for the documents this location stores.
 * A room name is never empty (the contract), so '' is free to mean unknown. The record's room
 * can change (the merge keeps the smallest name reported): the call then leaves the old room's
 * set, whose key is built here from the stored name (not declared in KEYS: fine on a standalone server).
 */
const WRITE_LUA = `
local previous_room = redis.call('HGET', KEYS[1], 'room')
redis.call('HSET', KEYS[1], 'version', string.format('%d', version), 'sole_writer', ARGV[2], 'writer_seq', ARGV[3],
  'folder', ARGV[4], 'final', ARGV[5], 'last_fact_ms', ARGV[6], 'state', ARGV[9])
local function put(field, value)
  if value == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, value) end
end
put('room', ARGV[7])
put('start_ms', ARGV[8])
for i = 11, #ARGV, 2 do put(ARGV[i], ARGV[i + 1]) end
if previous_room and previous_room ~= ARGV[7] then redis.call('ZREM', '${ROOM_KEY_PREFIX}' .. previous_room, ARGV[1]) end
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
  if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1]) end
end
if ARGV[5] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) end
return 1
`;

/**
 * Fast path: insert when absent (version 1); replace (version + 1) when the stored record's sole
 * writer is ours with a lower sequence and the same folder; otherwise write nothing and return 0.
 * Sequences stay below 2^53, so Lua's doubles compare them exactly.
 */
const FAST_WRITE_LUA = `
local stored = redis.call('HMGET', KEYS[1], 'version', 'sole_writer', 'writer_seq', 'folder')
local version
if not stored[1] then
  version = 1
elseif ARGV[2] ~= '' and stored[2] == ARGV[2] and tonumber(stored[3]) < tonumber(ARGV[3]) and stored[4] == ARGV[4] then
  version = tonumber(stored[1]) + 1
else
  return 0
end
${WRITE_LUA}`;

/** Compare-and-swap: with ARGV[10] '' write only when absent, else only when the stored version equals it. */
const CAS_WRITE_LUA = `
local stored = redis.call('HGET', KEYS[1], 'version')
local version
if ARGV[10] == '' then
  if stored then return 0 end
  version = 1
else
  if not stored or tonumber(stored) ~= tonumber(ARGV[10]) then return 0 end
  version = tonumber(ARGV[10]) + 1
end
${WRITE_LUA}`;

const FAST_WRITE = 'calldataFastWrite';
const CAS_WRITE = 'calldataCasWrite';

type ScriptArg = string | Buffer;

/** The script commands defineCommand adds (ioredis sends EVALSHA, falling back to EVAL once per connection). */
interface ScriptCommander {
  calldataFastWrite(...args: ScriptArg[]): unknown;
  calldataCasWrite(...args: ScriptArg[]): unknown;
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

export class RedisBackend extends MergingBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly redacted: string;
  private client: Redis | undefined;

  constructor(location: string, options: BackendOptions) {
    super(options);
    if (!/^rediss?:\/\//i.test(location)) throw new LocationError(BACKEND, 'redis: location must start with redis:// or rediss://');
    this.location = location;
    this.redacted = redactUrl(location);
  }

  protected locate(callId: string): string {
    return `${this.redacted} key ${callKey(callId)}`;
  }

  /** The document fields this location stores; the others are left as they are. */
  private documentFields(): DocumentKind[] {
    return (['metadata', 'transcription'] as const).filter((kind) => this.documents.includes(kind));
  }

  private getClient(): Redis {
    if (!this.client || this.client.status === 'end') {
      let client: Redis;
      try {
        client = new Redis(this.location, {
          connectTimeout: CONNECT_TIMEOUT_MS,
          commandTimeout: COMMAND_TIMEOUT_MS,
          // RESP2: the same reply shapes from every server version (RESP3 needs Redis 6).
          protocol: 2,
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
      client.defineCommand(FAST_WRITE, { numberOfKeys: 4, lua: FAST_WRITE_LUA });
      client.defineCommand(CAS_WRITE, { numberOfKeys: 4, lua: CAS_WRITE_LUA });
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

  /**
   * Queues `count` commands on one pipeline and sends them in one round trip. Any failed
   * command fails the whole call: the batch stays queued, and its retry is harmless because
   * every write is guarded.
   */
  private async pipelined(action: string, count: number, queue: (pipeline: ChainableCommander) => void): Promise<unknown[]> {
    if (count === 0) return [];
    let results: [error: Error | null, result: unknown][] | null;
    try {
      const client = await this.connected();
      const pipeline = client.pipeline();
      queue(pipeline);
      results = await pipeline.exec();
    } catch (error) {
      throw classify(action, error);
    }
    if (!results || results.length !== count) {
      throw new BackendUnavailableError(BACKEND, `${BACKEND}: ${action} failed: pipeline returned ${results?.length ?? 'no'} replies for ${count} commands`);
    }
    return results.map(([error, reply]) => {
      if (error) throw classify(action, error);
      return reply;
    });
  }

  /** Keys and arguments of a write script (see WRITE_LUA for their order). */
  private scriptArgs(row: RowWrite, expected: number | undefined): ScriptArg[] {
    const room = row.roomName === undefined ? Buffer.alloc(0) : wtf8(row.roomName);
    const documents = this.documentFields().flatMap((kind) => {
      const document = row.documents[kind];
      return [kind, document === undefined ? '' : JSON.stringify(document)];
    });
    return [
      callKey(row.callId),
      OPEN_KEY,
      TIME_KEY,
      Buffer.concat([Buffer.from(ROOM_KEY_PREFIX), room]),
      row.callId,
      row.soleWriter ?? '',
      String(row.writerSeq),
      row.folder,
      row.final ? '1' : '0',
      // Epoch milliseconds stay below 2^53: String() gives every digit, never an exponent.
      String(row.lastFactAtMs),
      room,
      row.startedAtMs === undefined ? '' : String(row.startedAtMs),
      // JSON.stringify escapes unpaired surrogates, so the text survives UTF-8 exactly.
      JSON.stringify(row.state),
      expected === undefined ? '' : String(expected),
      ...documents,
    ];
  }

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    const replies = await this.pipelined('write', rows.length, (pipeline) => {
      const scripts = pipeline as unknown as ScriptCommander;
      for (const row of rows) scripts.calldataFastWrite(...this.scriptArgs(row, undefined));
    });
    // Not written: a duplicate or another writer's record; the read-merge-write tells them apart.
    return replies.map((reply) => (Number(reply) === 1 ? 'applied' : 'conflict'));
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    const replies = await this.pipelined('write', rows.length, (pipeline) => {
      const scripts = pipeline as unknown as ScriptCommander;
      for (const { row, expected } of rows) scripts.calldataCasWrite(...this.scriptArgs(row, expected));
    });
    return replies.map((reply) => Number(reply) === 1);
  }

  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    // Only the documents this location stores: another configuration's may lag behind the record.
    const kinds = this.documentFields();
    const replies = await this.pipelined('read', callIds.length, (pipeline) => {
      for (const callId of callIds) pipeline.hmget(callKey(callId), 'version', 'folder', 'state', ...kinds);
    });
    const rows = new Map<string, StoredCall>();
    callIds.forEach((callId, i) => {
      const [version, folder, state, ...documentTexts] = replies[i] as (string | null)[];
      if (version == null || state == null) return;
      const documents: RenderedDocuments = {};
      kinds.forEach((kind, k) => {
        const text = documentTexts[k];
        if (text != null) Object.assign(documents, { [kind]: JSON.parse(text) as unknown });
      });
      rows.set(callId, { callId, version: Number(version), folder: folder ?? '', state: JSON.parse(state) as CallState, documents, location: this.locate(callId) });
    });
    return rows;
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    return (await this.readRows([callId])).get(callId);
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    if (limit <= 0) return [];
    let flat: string[];
    try {
      const client = await this.connected();
      // '(' makes the bound exclusive: last fact strictly older than quietSinceMs.
      flat = await client.zrangebyscore(OPEN_KEY, '-inf', `(${quietSinceMs}`, 'WITHSCORES', 'LIMIT', 0, limit);
    } catch (error) {
      throw classify('list open calls', error);
    }
    const open: { callId: string; lastFactAtMs: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) open.push({ callId: flat[i] as string, lastFactAtMs: Number(flat[i + 1]) });
    const rooms = await this.pipelined('list open calls', open.length, (pipeline) => {
      for (const call of open) pipeline.hgetBuffer(callKey(call.callId), 'room');
    });
    return open.map((call, i) => {
      const room = rooms[i];
      return room instanceof Buffer ? { ...call, roomName: fromWtf8(room) } : call;
    });
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
