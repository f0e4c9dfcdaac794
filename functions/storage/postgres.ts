/**
 * PostgreSQL backend: one row per call in `call_records` — the merged record (`state`), the
 * rendered documents (`metadata`, `transcription`, jsonb so operators can query them), the folder,
 * a version for compare-and-swap, and the sole writer for the one-round-trip fast path. The
 * table is created on first use.
 *
 * Both guarded writes are one multi-row upsert per batch: the fast path updates a row only when
 * its sole writer matches with a lower sequence, the compare-and-swap only when the stored version
 * is the one the merge read (a new row carries version 1, so "insert only when absent" is the
 * same statement).
 *
 * jsonb (and text) cannot hold NUL or unpaired UTF-16 surrogates, which untrusted room names and
 * transcripts may contain: such a row is stored with those characters escaped reversibly (see
 * text-escape.ts) and `escaped` set, and reads undo it.
 *
 * Listing: every write also stores the call's summary (its line in a list) in plain columns —
 * `listed` (an agent reported the call), direction, numbers, answered, status, duration,
 * has_recording, beside room_name and start_time — so a page is one index range scan that never
 * touches the (possibly megabytes of) jsonb. The listing indexes are partial (`WHERE listed`) and
 * end in (start_time, call_id COLLATE "C"): read backwards, they give the page order directly.
 * Room names are up to 4 096 characters (more bytes than a btree entry may hold), so the room
 * index keys md5(room_name) and the query re-checks the name itself.
 */
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import { CALL_ID_PATTERN } from '../contract/facts.ts';
import type { CallState, CallSummary, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import {
  checkQuery,
  decodeCursor,
  encodeCursor,
  RECORDS,
  type BackendOptions,
  type CallPage,
  type CallQuery,
  type OpenCall,
  type RowWrite,
  type StoredCall,
} from './backend.ts';
import { SqlBackend, type UpsertKind } from './sql-base.ts';
import { classifyDriverError, InvalidQueryError, LocationError } from './errors.ts';
import { textEscaper } from './text-escape.ts';

const BACKEND = 'postgres';
/** Twenty-one parameters a row; PostgreSQL allows 65 535 parameters in one statement. */
const ROWS_PER_STATEMENT = 1_000;
/** Statements of up to this many rows are prepared (named); SQS batches repeat a few sizes. */
const PREPARED_MAX_ROWS = 20;
/** Adding the listing columns and indexes to a large table from an earlier version takes a while, once. */
const MIGRATION_TIMEOUT_MS = 15 * 60_000;
/** Serialises table creation between processes starting at once ('calldata' in ASCII). */
const SCHEMA_LOCK_KEY = '7161124082938749025';

const TEXT = textEscaper('\\u0000\\p{Cs}');

const DDL = [
  `CREATE TABLE IF NOT EXISTS ${RECORDS} (
    call_id text PRIMARY KEY,
    version bigint NOT NULL,
    sole_writer text,
    writer_seq bigint NOT NULL,
    folder text NOT NULL,
    room_name text,
    start_time timestamptz,
    last_fact_ms bigint NOT NULL,
    final boolean NOT NULL,
    state jsonb NOT NULL,
    metadata jsonb,
    transcription jsonb,
    escaped boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_start_time_idx ON ${RECORDS} (start_time)`,
  // A hash index: a btree entry for a 4 096-character room name can exceed the btree row limit.
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_room_name_idx ON ${RECORDS} USING hash (room_name)`,
  // The sweeper's question: open calls, oldest last fact first. Final rows leave the index.
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_open_idx ON ${RECORDS} (last_fact_ms) WHERE NOT final`,
  // The summary columns. A table from an earlier version gains them here (its rows stay unlisted
  // until their next write); on a new table this is the only place they are declared.
  `ALTER TABLE ${RECORDS}
    ADD COLUMN IF NOT EXISTS listed boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS direction text,
    ADD COLUMN IF NOT EXISTS user_number text,
    ADD COLUMN IF NOT EXISTS agent_number text,
    ADD COLUMN IF NOT EXISTS answered boolean,
    ADD COLUMN IF NOT EXISTS status text,
    ADD COLUMN IF NOT EXISTS duration_ms bigint,
    ADD COLUMN IF NOT EXISTS has_recording boolean`,
  // Listing, newest first: (start_time, call_id) read backwards is the page order, so a page (and
  // a time window) is one range scan stopping after limit + 1 rows. call_id in "C" order, which is
  // the order of the ids' characters ([A-Za-z0-9_.-]), whatever the database's collation.
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_listed_idx ON ${RECORDS} (start_time, call_id COLLATE "C") WHERE listed`,
  // One room's calls in page order. md5 because a btree entry cannot hold every room name (4 096
  // characters); the query re-checks room_name itself, so a collision costs a row, not a wrong answer.
  // Not partial: the planner keeps statistics of an index expression only for a whole-table index,
  // and without them it guesses a room has a handful of calls and sorts all of them instead.
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_room_md5_idx ON ${RECORDS} (md5(room_name), start_time, call_id COLLATE "C")`,
  // The query says both md5(room_name) = md5($1) and room_name = $1; without this the planner
  // multiplies their selectivities, expects a handful of rows, and sorts the whole room instead
  // of reading the md5 index backwards (measured: 32 ms instead of 0.1 ms for 5,000 calls of a room).
  `CREATE STATISTICS IF NOT EXISTS ${RECORDS}_room_stats (dependencies) ON room_name, md5(room_name) FROM ${RECORDS}`,
  // A number is the caller's or the agent's: one index each, one ordered branch each in the query.
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_listed_user_idx ON ${RECORDS} (user_number, start_time, call_id COLLATE "C") WHERE listed`,
  `CREATE INDEX IF NOT EXISTS ${RECORDS}_listed_agent_idx ON ${RECORDS} (agent_number, start_time, call_id COLLATE "C") WHERE listed`,
];
/**
 * Present when the schema is complete. The summary columns are added in the same transaction as
 * the listing indexes that name them, so the indexes being there means the columns are too.
 */
const RELATIONS = [
  RECORDS,
  `${RECORDS}_start_time_idx`,
  `${RECORDS}_room_name_idx`,
  `${RECORDS}_open_idx`,
  `${RECORDS}_listed_idx`,
  `${RECORDS}_room_md5_idx`,
  `${RECORDS}_listed_user_idx`,
  `${RECORDS}_listed_agent_idx`,
];

/** Page sizes a query may ask for. */
/** Start times are whole milliseconds in [0, 8.64e15]; every safe integer is a valid timestamptz. */
const MIN_BOUND_MS = -1;
const MAX_BOUND_MS = Number.MAX_SAFE_INTEGER;

/** The columns a listed call's summary is built from (start_ms: start_time as epoch milliseconds). */
const SUMMARY_COLUMNS = `call_id COLLATE "C" AS call_id, room_name, (extract(epoch FROM start_time) * 1000)::bigint AS start_ms, direction,
  user_number, agent_number, answered, status, duration_ms, has_recording, escaped`;

interface SummaryRow {
  call_id: string;
  room_name: string;
  start_ms: string;
  direction: string;
  user_number: string | null;
  agent_number: string | null;
  answered: boolean;
  status: string;
  duration_ms: string | null;
  has_recording: boolean;
  escaped: boolean;
}

/** Epoch milliseconds as a timestamptz, in integer arithmetic (exact), for parameter `$n`. */
const msParam = (n: number) => `(TIMESTAMPTZ 'epoch' + $${n}::bigint * INTERVAL '1 millisecond')`;

/** A time bound as a whole millisecond the comparison means the same with ("start >= 1.5" is "start >= 2"). */
function boundMs(value: number, what: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new InvalidQueryError(`${what} is not a number`);
  return Math.min(Math.max(Math.ceil(value), MIN_BOUND_MS), MAX_BOUND_MS);
}


interface Row {
  call_id: string;
  version: string;
  folder: string;
  state: unknown;
  metadata: unknown;
  transcription: unknown;
  escaped: boolean;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A listed call's summary from its columns, equal to what the model's summarize gives. */
function summaryOf(row: SummaryRow): CallSummary {
  const text = (value: string) => (row.escaped ? TEXT.unescape(value) : value);
  return {
    callId: row.call_id,
    roomName: text(row.room_name),
    startedAtMs: Number(row.start_ms),
    direction: text(row.direction) as CallSummary['direction'],
    ...(row.agent_number === null ? {} : { agentNumber: text(row.agent_number) }),
    ...(row.user_number === null ? {} : { userNumber: text(row.user_number) }),
    ...(row.duration_ms === null ? {} : { durationMs: Number(row.duration_ms) }),
    answered: row.answered,
    status: text(row.status),
    hasRecording: row.has_recording,
  };
}

export class PostgresBackend extends SqlBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly shownLocation: string;
  private pool: Pool | undefined;
  private schemaReady: Promise<void> | undefined;

  constructor(location: string, options: BackendOptions) {
    super(options);
    if (!/^postgres(ql)?:\/\//i.test(location)) throw new LocationError(BACKEND, 'location is not a postgres:// or postgresql:// URL');
    if (!URL.canParse(location)) {
      // No cause attached: Node's URL error carries the input, password included.
      throw new LocationError(BACKEND, 'location is not a valid URL');
    }
    this.location = location;
    this.shownLocation = redactUrl(location);
  }

  protected locate(callId: string): string {
    return `${this.shownLocation} table ${RECORDS} call_id=${callId}`;
  }


  /**
   * One guarded multi-row upsert. `guard` is the WHERE of the conflict branch; the values
   * carry the version a new or replaced row gets (`fresh`: 1 when inserted, stored + 1 when updated).
   */
  private upsert(kind: 'fast' | 'cas', rows: readonly RowWrite[], versions: readonly number[]): QueryConfig<unknown[]> {
    const values: unknown[] = [];
    const tuples = rows.map((row, i) => {
      const escaped = TEXT.needs(row.roomName ?? '') || TEXT.needsAny(row.state) || TEXT.needsAny(row.documents);
      const json = (value: unknown) => (value === undefined ? null : JSON.stringify(escaped ? TEXT.mapStrings(value, TEXT.escape) : value));
      const text = (value: string | undefined) => (value === undefined ? null : escaped ? TEXT.escape(value) : value);
      const summary = row.summary;
      const p = values.length;
      values.push(
        row.callId,
        versions[i],
        row.soleWriter,
        row.writerSeq,
        row.folder,
        row.roomName === undefined ? null : escaped ? TEXT.escape(row.roomName) : row.roomName,
        row.startedAtMs ?? null,
        row.lastFactAtMs,
        row.final,
        json(row.state),
        json(row.documents.metadata),
        json(row.documents.transcription),
        escaped,
        // The summary: all null (and not listed) until an agent reported the call.
        summary !== undefined,
        text(summary?.direction),
        text(summary?.userNumber),
        text(summary?.agentNumber),
        summary?.answered ?? null,
        text(summary?.status),
        summary?.durationMs ?? null,
        summary?.hasRecording ?? null,
      );
      const $ = (n: number) => `$${p + n}`;
      // Epoch milliseconds as integer arithmetic: exact for every time the contract allows.
      return `(${$(1)}, ${$(2)}::bigint, ${$(3)}::text, ${$(4)}::bigint, ${$(5)}, ${$(6)}::text, TIMESTAMPTZ 'epoch' + ${$(7)}::bigint * INTERVAL '1 millisecond', ${$(8)}::bigint, ${$(9)}::boolean, ${$(10)}::jsonb, ${$(11)}::jsonb, ${$(12)}::jsonb, ${$(13)}::boolean, ${$(14)}::boolean, ${$(15)}::text, ${$(16)}::text, ${$(17)}::text, ${$(18)}::boolean, ${$(19)}::text, ${$(20)}::bigint, ${$(21)}::boolean)`;
    });
    const documents = this.documentColumns().map((column) => `${column} = EXCLUDED.${column},`).join(' ');
    const guard =
      kind === 'fast'
        ? 'stored.sole_writer = EXCLUDED.sole_writer AND stored.writer_seq < EXCLUDED.writer_seq AND stored.folder = EXCLUDED.folder'
        : 'stored.version = EXCLUDED.version - 1';
    return {
      ...(rows.length <= PREPARED_MAX_ROWS ? { name: `calldata_${kind}_${this.documentColumns().join('_')}_${rows.length}` } : {}),
      text: `INSERT INTO ${RECORDS} AS stored (call_id, version, sole_writer, writer_seq, folder, room_name, start_time, last_fact_ms, final, state, metadata, transcription, escaped,
          listed, direction, user_number, agent_number, answered, status, duration_ms, has_recording)
        VALUES ${tuples.join(', ')}
        ON CONFLICT (call_id) DO UPDATE SET
          version = ${kind === 'fast' ? 'stored.version + 1' : 'EXCLUDED.version'},
          sole_writer = EXCLUDED.sole_writer, writer_seq = EXCLUDED.writer_seq, folder = EXCLUDED.folder,
          room_name = EXCLUDED.room_name, start_time = EXCLUDED.start_time, last_fact_ms = EXCLUDED.last_fact_ms,
          final = EXCLUDED.final, state = EXCLUDED.state, ${documents} escaped = EXCLUDED.escaped,
          listed = EXCLUDED.listed, direction = EXCLUDED.direction, user_number = EXCLUDED.user_number, agent_number = EXCLUDED.agent_number,
          answered = EXCLUDED.answered, status = EXCLUDED.status, duration_ms = EXCLUDED.duration_ms, has_recording = EXCLUDED.has_recording,
          updated_at = now()
        WHERE ${guard}
        RETURNING call_id`,
      values,
    };
  }

  /** Runs upserts (sorted by call id so concurrent writers lock rows in one order) and returns the call ids written. */
  protected async runUpserts(kind: UpsertKind, rows: readonly { row: RowWrite; version: number }[]): Promise<Set<string>> {
    const sorted = [...rows].sort((a, b) => (a.row.callId < b.row.callId ? -1 : a.row.callId > b.row.callId ? 1 : 0));
    const statements = chunks(sorted, ROWS_PER_STATEMENT).map((group) =>
      this.upsert(
        kind,
        group.map((g) => g.row),
        group.map((g) => g.version),
      ),
    );
    const written = new Set<string>();
    try {
      const pool = await this.ready();
      for (const statement of statements) {
        for (const row of (await pool.query<{ call_id: string }>(statement)).rows) written.add(row.call_id);
      }
    } catch (error) {
      throw classifyDriverError(BACKEND, 'write', error);
    }
    return written;
  }



  private stored(row: Row): StoredCall {
    const unescape = (value: unknown) => (row.escaped && value !== null ? TEXT.mapStrings(value, TEXT.unescape) : value);
    const documents: RenderedDocuments = {};
    const metadata = unescape(row.metadata);
    const transcription = unescape(row.transcription);
    if (metadata !== null && metadata !== undefined) documents.metadata = metadata as RenderedDocuments['metadata'];
    if (transcription !== null && transcription !== undefined) documents.transcription = transcription as RenderedDocuments['transcription'];
    return {
      callId: row.call_id,
      // bigint arrives as a string; versions stay far below Number.MAX_SAFE_INTEGER.
      version: Number(row.version),
      folder: row.folder,
      state: unescape(row.state) as CallState,
      documents,
      location: this.locate(row.call_id),
    };
  }

  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    try {
      const pool = await this.ready();
      const result = await pool.query<Row>({
        name: 'calldata_read_many',
        text: `SELECT call_id, version, folder, state, metadata, transcription, escaped FROM ${RECORDS} WHERE call_id = ANY($1::text[])`,
        values: [callIds],
      });
      return new Map(result.rows.map((row) => [row.call_id, this.stored(row)]));
    } catch (error) {
      throw classifyDriverError(BACKEND, 'read', error);
    }
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    return (await this.readRows([callId])).get(callId);
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    try {
      const pool = await this.ready();
      const result = await pool.query<{ call_id: string; room_name: string | null; last_fact_ms: string; escaped: boolean }>(
        `SELECT call_id, room_name, last_fact_ms, escaped FROM ${RECORDS} WHERE NOT final AND last_fact_ms < $1 ORDER BY last_fact_ms LIMIT $2`,
        [quietSinceMs, limit],
      );
      return result.rows.map((row) => ({
        callId: row.call_id,
        ...(row.room_name === null ? {} : { roomName: row.escaped ? TEXT.unescape(row.room_name) : row.room_name }),
        lastFactAtMs: Number(row.last_fact_ms),
      }));
    } catch (error) {
      throw classifyDriverError(BACKEND, 'list open calls', error);
    }
  }

  /**
   * One statement per page: the listed calls passing the filter after the cursor, newest first,
   * limit + 1 of them (the extra one says whether a cursor is due). A number filter is the union of
   * two ordered branches (the caller's index and the agent's), each stopping at limit + 1.
   */
  override async queryCalls(query: CallQuery): Promise<CallPage> {
    checkQuery(query);
    const after = decodeCursor(query.cursor);
    if (after && !CALL_ID_PATTERN.test(after.callId)) throw new InvalidQueryError('the cursor is not one this store returned');
    const values: unknown[] = [];
    const param = (value: unknown) => {
      values.push(value);
      return values.length;
    };
    // Untrusted text is compared as stored: a value that needs escaping is stored escaped (its row
    // is then an escaped one), and escaping changes nothing else, so escaping the value always is exact.
    const where: string[] = ['listed'];
    if (query.sinceMs !== undefined) where.push(`start_time >= ${msParam(param(boundMs(query.sinceMs, 'sinceMs')))}`);
    if (query.untilMs !== undefined) where.push(`start_time < ${msParam(param(boundMs(query.untilMs, 'untilMs')))}`);
    if (query.room !== undefined) {
      const room = param(TEXT.escape(query.room));
      where.push(`md5(room_name) = md5($${room}::text) AND room_name = $${room}::text`);
    }
    if (query.direction !== undefined) where.push(`direction = $${param(query.direction)}::text`);
    if (query.answered !== undefined) where.push(`answered = $${param(query.answered)}::boolean`);
    if (query.status !== undefined) where.push(`status = $${param(TEXT.escape(query.status))}::text`);
    if (after) where.push(`(start_time, call_id COLLATE "C") < (${msParam(param(Math.min(Math.max(after.startedAtMs, MIN_BOUND_MS), MAX_BOUND_MS)))}, $${param(after.callId)}::text)`);
    const limit = param(query.limit + 1);
    const order = `ORDER BY start_time DESC, call_id COLLATE "C" DESC LIMIT $${limit}::int`;
    const select = (extra: string[]) => `SELECT ${SUMMARY_COLUMNS} FROM ${RECORDS} WHERE ${[...where, ...extra].join(' AND ')} ${order}`;
    let text: string;
    if (query.number === undefined) text = select([]);
    else {
      const number = param(TEXT.escape(query.number));
      // The second branch leaves out the calls the first already has (both numbers the same).
      text = `(${select([`user_number = $${number}::text`])}) UNION ALL (${select([`agent_number = $${number}::text`, `user_number IS DISTINCT FROM $${number}::text`])})
        ORDER BY start_ms DESC, call_id DESC LIMIT $${limit}::int`;
    }
    let rows: SummaryRow[];
    try {
      const pool = await this.ready();
      rows = (await pool.query<SummaryRow>({ text, values })).rows;
    } catch (error) {
      throw classifyDriverError(BACKEND, 'list calls', error);
    }
    const calls = rows.slice(0, query.limit).map((row) => summaryOf(row));
    const last = calls[calls.length - 1];
    return rows.length > query.limit && last ? { calls, cursor: encodeCursor(last) } : { calls };
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.schemaReady = undefined;
    if (pool) await pool.end();
  }

  private async ready(): Promise<Pool> {
    const pool = this.getPool();
    this.schemaReady ??= this.createSchema(pool).catch((error: unknown) => {
      // Let the next call try again (the server may just have been unreachable).
      this.schemaReady = undefined;
      throw error;
    });
    await this.schemaReady;
    return pool;
  }

  private getPool(): Pool {
    if (!this.pool) {
      const pool = new Pool({
        connectionString: this.location,
        max: 4,
        // Fail fast while the server is down, so the record goes back to the queue promptly.
        connectionTimeoutMillis: 5_000,
        query_timeout: 30_000,
        idleTimeoutMillis: 30_000,
        keepAlive: true,
        allowExitOnIdle: true,
        application_name: 'calldata',
      });
      // An idle client whose server went away reports here; unhandled, it would crash the
      // process. The pool has already dropped that client and the next query reconnects.
      pool.on('error', () => undefined);
      this.pool = pool;
    }
    return this.pool;
  }

  private async createSchema(pool: Pool): Promise<void> {
    // Tables already there (the usual case): no DDL, so no locks and no CREATE privilege needed.
    const found = await pool.query<{ present: number }>('SELECT count(to_regclass(name))::int AS present FROM unnest($1::text[]) AS name', [RELATIONS]);
    if (found.rows[0]?.present === RELATIONS.length) return;
    // IF NOT EXISTS alone races (duplicate pg_type rows) when two processes start together.
    const client: PoolClient = await pool.connect();
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let healthy = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [SCHEMA_LOCK_KEY]);
      for (const ddl of DDL) {
        // query_timeout per query: the driver reads it, its typings leave it out.
        const statement: QueryConfig & { query_timeout: number } = { text: ddl, query_timeout: MIGRATION_TIMEOUT_MS };
        await client.query(statement);
      }
      await client.query('COMMIT');
      healthy = true;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', ignore);
      client.release(!healthy);
    }
  }
}
