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
 */
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import type { CallState, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import { MergingBackend, RECORDS, type BackendOptions, type FastResult, type OpenCall, type RowWrite, type StoredCall } from './backend.ts';
import { classifyDriverError, LocationError } from './errors.ts';
import { textEscaper } from './text-escape.ts';

const BACKEND = 'postgres';
/** Thirteen parameters a row; PostgreSQL allows 65 535 parameters in one statement. */
const ROWS_PER_STATEMENT = 1_000;
/** Statements of up to this many rows are prepared (named); SQS batches repeat a few sizes. */
const PREPARED_MAX_ROWS = 20;
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
];
const RELATIONS = [RECORDS, `${RECORDS}_start_time_idx`, `${RECORDS}_room_name_idx`, `${RECORDS}_open_idx`];

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

export class PostgresBackend extends MergingBackend {
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

  /** The document columns this location stores; the others are left as they are. */
  private documentColumns(): ('metadata' | 'transcription')[] {
    return (['metadata', 'transcription'] as const).filter((kind) => this.documents.includes(kind));
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
      );
      const $ = (n: number) => `$${p + n}`;
      // Epoch milliseconds as integer arithmetic: exact for every time the contract allows.
      return `(${$(1)}, ${$(2)}::bigint, ${$(3)}::text, ${$(4)}::bigint, ${$(5)}, ${$(6)}::text, TIMESTAMPTZ 'epoch' + ${$(7)}::bigint * INTERVAL '1 millisecond', ${$(8)}::bigint, ${$(9)}::boolean, ${$(10)}::jsonb, ${$(11)}::jsonb, ${$(12)}::jsonb, ${$(13)}::boolean)`;
    });
    const documents = this.documentColumns().map((column) => `${column} = EXCLUDED.${column},`).join(' ');
    const guard =
      kind === 'fast'
        ? 'stored.sole_writer = EXCLUDED.sole_writer AND stored.writer_seq < EXCLUDED.writer_seq AND stored.folder = EXCLUDED.folder'
        : 'stored.version = EXCLUDED.version - 1';
    return {
      ...(rows.length <= PREPARED_MAX_ROWS ? { name: `calldata_${kind}_${this.documentColumns().join('_')}_${rows.length}` } : {}),
      text: `INSERT INTO ${RECORDS} AS stored (call_id, version, sole_writer, writer_seq, folder, room_name, start_time, last_fact_ms, final, state, metadata, transcription, escaped)
        VALUES ${tuples.join(', ')}
        ON CONFLICT (call_id) DO UPDATE SET
          version = ${kind === 'fast' ? 'stored.version + 1' : 'EXCLUDED.version'},
          sole_writer = EXCLUDED.sole_writer, writer_seq = EXCLUDED.writer_seq, folder = EXCLUDED.folder,
          room_name = EXCLUDED.room_name, start_time = EXCLUDED.start_time, last_fact_ms = EXCLUDED.last_fact_ms,
          final = EXCLUDED.final, state = EXCLUDED.state, ${documents} escaped = EXCLUDED.escaped, updated_at = now()
        WHERE ${guard}
        RETURNING call_id`,
      values,
    };
  }

  /** Runs upserts (sorted by call id so concurrent writers lock rows in one order) and returns the call ids written. */
  private async runUpserts(kind: 'fast' | 'cas', rows: readonly { row: RowWrite; version: number }[]): Promise<Set<string>> {
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

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    const written = await this.runUpserts(
      'fast',
      rows.map((row) => ({ row, version: 1 })),
    );
    // Not written: a duplicate or another writer's record; the read-merge-write tells them apart.
    return rows.map((row) => (written.has(row.callId) ? 'applied' : 'conflict'));
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    const written = await this.runUpserts(
      'cas',
      rows.map(({ row, expected }) => ({ row, version: (expected ?? 0) + 1 })),
    );
    return rows.map(({ row }) => written.has(row.callId));
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
      for (const ddl of DDL) await client.query(ddl);
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
