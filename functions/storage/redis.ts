/**
 * Redis backend: one hash per call and sorted sets that index it.
 * - `calldata:call:<callId>`: HASH { version, sole_writer, writer_seq, folder, final,
 *   last_fact_ms, room, start_ms, state, summary, user_number, agent_number, metadata,
 *   transcription } — the merged record (`state`) and the rendered documents as JSON text, the
 *   folder, a version for compare-and-swap and the sole writer for the one-round-trip fast path.
 *   `room` / `start_ms` are absent until known. `summary` is the call's line in a list (compact
 *   JSON), present once an agent reported the call ("listed"); `user_number` / `agent_number` are
 *   the numbers the call is indexed under, kept so a write can leave a number it no longer has.
 * - `calldata:time`: ZSET of the listed call ids scored by start time (ms);
 * - `calldata:room:<roomName>`: ZSET of the room's listed call ids scored by start time;
 * - `calldata:number:<number>`: ZSET of the listed call ids with that caller or agent number,
 *   scored by start time;
 * - `calldata:open`: ZSET of the call ids not final, scored by their last fact (the sweeper's list).
 *
 * Both guarded writes are Lua scripts (sent as EVALSHA), so the guard, the hash and the indexes
 * change together atomically; a batch is one pipeline of one script per call: one round trip.
 * The scripts touch keys of different hash slots, so this needs a standalone Redis (or a single
 * shard), as before.
 *
 * Listing calls (queryCalls), newest first by (start, call id), both descending: the narrowest
 * index the filter allows is read backwards (a room's set, else a number's set, else the time
 * set) with ZREVRANGEBYSCORE, bounded by the time window and the cursor; then one pipeline reads
 * the candidates' `summary` fields and the rest of the filter is applied to them. Calls sharing a
 * start come in descending call id order (a sorted set orders equal scores by member bytes, and
 * call ids are ASCII), so the (start, call id) cursor resumes exactly. How it scales: the time
 * window, room and number are range reads on an index, O(log N + page) and usually two round
 * trips per page; direction / answered / status (and a number together with a room) are checked
 * after reading, so such a page scans the index range until it fills — batches sized from the
 * share that matched so far, at most MAX_SCANNED entries per page, after which the page is
 * returned short with a cursor to continue from (a short page is not the end; no cursor is).
 *
 * Keys are binary-safe: untrusted room names and numbers go into keys verbatim, and the `call:` /
 * `room:` / `number:` prefixes keep the key families apart whatever a name contains. Call ids
 * and writer ids are restricted to a safe alphabet by the contract. Room names and numbers may
 * hold unpaired UTF-16 surrogates, which UTF-8 cannot carry, so their keys and the `room`,
 * `user_number` and `agent_number` fields are WTF-8 (see wtf8()).
 */
import { Redis, type ChainableCommander } from 'ioredis';
import type { CallState, CallSummary, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import {
  checkQuery,
  decodeCursor,
  encodeCursor,
  matchesFilter,
  MergingBackend,
  type BackendOptions,
  type CallPage,
  type CallQuery,
  type FastResult,
  type OpenCall,
  type RowWrite,
  type StoredCall,
} from './backend.ts';
import { BackendUnavailableError, classifyDriverError, InvalidQueryError, LocationError, StorageError } from './errors.ts';

const BACKEND = 'redis';
const CONNECT_TIMEOUT_MS = 5_000;
/** A hung server must not hold a Lambda invocation: the queue retries instead. */
const COMMAND_TIMEOUT_MS = 15_000;

export const CALL_KEY_PREFIX = 'calldata:call:';
export const ROOM_KEY_PREFIX = 'calldata:room:';
export const OPEN_KEY = 'calldata:open';
export const TIME_KEY = 'calldata:time';
export const NUMBER_KEY_PREFIX = 'calldata:number:';

/** Largest page a query may ask for. */
/** Index entries one page may read while a filter the index cannot apply keeps rejecting them. */
const MAX_SCANNED = 20_000;
/** Index entries read at once while filtering after reading. */
const MIN_BATCH = 100;
const MAX_BATCH = 5_000;

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

export function numberKey(number: string): Buffer {
  return Buffer.concat([Buffer.from(NUMBER_KEY_PREFIX), wtf8(number)]);
}

/**
 * The write both scripts share, after their guard has set `version`.
 * KEYS: 1 call hash, 2 open zset, 3 time zset, 4 room zset of ARGV[7] (untouched while the room is unknown).
 * ARGV: 1 call id, 2 sole writer ('' when several), 3 writer seq, 4 folder, 5 final ('1' / '0'),
 *       6 last fact ms, 7 room ('' = unknown), 8 start ms ('' = unknown), 9 state JSON,
 *       10 expected version (compare-and-swap only; '' = absent), 11 summary JSON ('' = not
 *       listed), 12 caller number and 13 agent number to index the call under ('' = none; always
 *       '' when not listed), then pairs of document field and JSON ('' = none) for the documents
 *       this location stores.
 * A room name is never empty (the contract), so '' is free to mean unknown; an empty number is
 * never indexed. A listed call always has a room and a start (the summary holds both, equal to
 * ARGV[7] / ARGV[8]), and is in the time set, its room's set and its numbers' sets; a call that
 * is not listed is in none of them. The record's room can change (the merge keeps the smallest
 * name reported), and so can its numbers: the call then leaves the old room's or number's set,
 * whose key is built here from the stored name (not declared in KEYS: fine on a standalone server).
 */
const WRITE_LUA = `
local previous_room = redis.call('HGET', KEYS[1], 'room')
local previous_numbers = redis.call('HMGET', KEYS[1], 'user_number', 'agent_number')
redis.call('HSET', KEYS[1], 'version', string.format('%d', version), 'sole_writer', ARGV[2], 'writer_seq', ARGV[3],
  'folder', ARGV[4], 'final', ARGV[5], 'last_fact_ms', ARGV[6], 'state', ARGV[9])
local function put(field, value)
  if value == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, value) end
end
put('room', ARGV[7])
put('start_ms', ARGV[8])
put('summary', ARGV[11])
put('user_number', ARGV[12])
put('agent_number', ARGV[13])
for i = 14, #ARGV, 2 do put(ARGV[i], ARGV[i + 1]) end
if previous_room and previous_room ~= ARGV[7] then redis.call('ZREM', '${ROOM_KEY_PREFIX}' .. previous_room, ARGV[1]) end
for i = 1, 2 do
  local number = previous_numbers[i]
  if number and number ~= ARGV[12] and number ~= ARGV[13] then redis.call('ZREM', '${NUMBER_KEY_PREFIX}' .. number, ARGV[1]) end
end
if ARGV[11] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
  if ARGV[12] ~= '' then redis.call('ZADD', '${NUMBER_KEY_PREFIX}' .. ARGV[12], ARGV[8], ARGV[1]) end
  if ARGV[13] ~= '' and ARGV[13] ~= ARGV[12] then redis.call('ZADD', '${NUMBER_KEY_PREFIX}' .. ARGV[13], ARGV[8], ARGV[1]) end
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  if ARGV[7] ~= '' then redis.call('ZREM', KEYS[4], ARGV[1]) end
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
    const summary = row.summary;
    const indexed = (number: string | undefined): ScriptArg => (summary && number ? wtf8(number) : '');
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
      // Compact JSON; like the state, it escapes unpaired surrogates.
      summary ? JSON.stringify(summary) : '',
      indexed(summary?.userNumber),
      indexed(summary?.agentNumber),
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

  /** See the file comment for which index a filter reads and how that scales. */
  override async queryCalls(query: CallQuery): Promise<CallPage> {
    const { limit } = query;
    checkQuery(query);
    for (const [field, value] of [['sinceMs', query.sinceMs], ['untilMs', query.untilMs]] as const) {
      if (value !== undefined && !Number.isSafeInteger(value)) throw new InvalidQueryError(`${field} must be a whole number of milliseconds`);
    }
    const cursor = decodeCursor(query.cursor);

    // The narrowest index; whatever of the filter it does not apply is checked after reading.
    // '' is never indexed (no room is empty; an empty number is not indexed): the time set then.
    const key: string | Buffer = query.room ? roomKey(query.room) : query.number ? numberKey(query.number) : TIME_KEY;
    const filteredAfter =
      query.direction !== undefined ||
      query.answered !== undefined ||
      query.status !== undefined ||
      query.room === '' ||
      query.number === '' ||
      (query.room !== undefined && query.number !== undefined);

    // Read backwards from `max` (inclusive, or exclusive with '(') down to `min`, skipping
    // `offset` entries; only entries strictly after `position` in page order are new.
    const min = query.sinceMs === undefined ? '-inf' : String(query.sinceMs);
    let max = query.untilMs === undefined ? '+inf' : `(${query.untilMs}`;
    let maxScore: number | undefined;
    if (cursor && (query.untilMs === undefined || cursor.startedAtMs < query.untilMs)) {
      max = String(cursor.startedAtMs);
      maxScore = cursor.startedAtMs;
    }
    let offset = 0;
    let position: { score: number; callId: string } | undefined = cursor ? { score: cursor.startedAtMs, callId: cursor.callId } : undefined;
    const isNew = (score: number, callId: string) => !position || score < position.score || (score === position.score && callId < position.callId);

    const calls: CallSummary[] = [];
    let scanned = 0;
    let matched = 0;
    for (;;) {
      // Without a filter to apply after reading every entry is a call of the page: one more
      // than the page needs tells whether another page follows.
      const wanted = limit - calls.length;
      const share = scanned === 0 ? 0.25 : Math.max(matched / scanned, 0.01);
      // Right after a cursor the first entry read is usually the cursor's own call: one more.
      const skipped = scanned === 0 && cursor ? 1 : 0;
      const count = filteredAfter ? Math.min(MAX_BATCH, MAX_SCANNED - scanned, Math.max(MIN_BATCH, Math.ceil((wanted / share) * 1.2))) : wanted + 1 + skipped;
      let flat: string[];
      try {
        const client = await this.connected();
        flat = await client.zrevrangebyscore(key, max, min, 'WITHSCORES', 'LIMIT', offset, count);
      } catch (error) {
        throw classify('list calls', error);
      }
      const entries: { callId: string; score: number }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ callId: flat[i] as string, score: Number(flat[i + 1]) });
      const exhausted = entries.length < count;

      // The entries this round examines: without a filter after reading, only as many as the page needs.
      const fresh = entries.filter((entry) => isNew(entry.score, entry.callId));
      const examined = filteredAfter ? fresh : fresh.slice(0, wanted);
      const texts = await this.pipelined('list calls', examined.length, (pipeline) => {
        for (const entry of examined) pipeline.hget(callKey(entry.callId), 'summary');
      });
      let full = false;
      let consumed = 0;
      let k = 0;
      let last: { score: number; callId: string } | undefined;
      for (const entry of entries) {
        if (isNew(entry.score, entry.callId)) {
          if (k === examined.length) break;
          const text = texts[k++];
          last = entry;
          scanned++;
          // A call removed since the index was read has no summary: skipped.
          if (typeof text === 'string') {
            const summary = JSON.parse(text) as CallSummary;
            if (matchesFilter(summary, query)) {
              matched++;
              calls.push(summary);
            }
          }
        }
        consumed++;
        if (calls.length === limit) {
          full = true;
          break;
        }
      }
      if (last) position = last;
      const more = !exhausted || consumed < entries.length;
      if (full) return { calls, ...(more ? { cursor: encodeCursor(calls[calls.length - 1] as CallSummary) } : {}) };
      if (!more) return { calls };
      if (scanned >= MAX_SCANNED && position) {
        // Enough work for one request: the caller continues from the last entry read.
        return { calls, cursor: encodeCursor({ startedAtMs: position.score, callId: position.callId }) };
      }
      // Continue right after the last entry consumed: from its score, past the entries with that
      // score consumed already (the first ones at that score, as they come in member order).
      const lastConsumed = entries[consumed - 1];
      if (!lastConsumed) break;
      const atLast = entries.slice(0, consumed).filter((entry) => entry.score === lastConsumed.score).length;
      offset = maxScore === lastConsumed.score ? offset + atLast : atLast;
      max = String(lastConsumed.score);
      maxScore = lastConsumed.score;
    }
    return { calls };
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
