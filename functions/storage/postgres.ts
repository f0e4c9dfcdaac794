/**
 * PostgreSQL backend: one row per call in `call_metadata` / `call_transcription`, the document
 * as jsonb so operators can query it. Tables are created on first use.
 *
 * jsonb (and text) cannot hold NUL or unpaired UTF-16 surrogates, which untrusted room names
 * and transcripts may contain. Such a document is stored with those characters escaped
 * reversibly (see text-escape.ts) and `document_escaped` set, and read() undoes the escaping, so
 * every document round-trips exactly while ordinary documents are stored untouched.
 */
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import { redactUrl } from '../shared/redact.ts';
import { COLLECTION, newestPerCall, spreadOutcomes, type StorageBackend, type StoredArtifact, type WriteOutcome } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { textEscaper } from './text-escape.ts';
import { classifyDriverError, LocationError } from './errors.ts';

const BACKEND = 'postgres';
const KINDS: readonly ArtifactKind[] = ['metadata', 'transcription'];
/** Six parameters a row; PostgreSQL allows 65 535 parameters in one statement. */
const ROWS_PER_STATEMENT = 1_000;
/** Statements of up to this many rows are prepared (named); larger ones are rare and one-off. */
const PREPARED_MAX_ROWS = 20;
/** Serialises table creation between processes starting at once ('calldata' in ASCII). */
const SCHEMA_LOCK_KEY = '7161124082938749025';

const TEXT = textEscaper('\\u0000\\p{Cs}');

interface StoredRow {
  roomName: string;
  document: string;
  escaped: boolean;
}

function storedRow(record: ArtifactRecord): StoredRow {
  const escaped = TEXT.needs(record.roomName) || TEXT.needsAny(record.document);
  return {
    roomName: escaped ? TEXT.escape(record.roomName) : record.roomName,
    document: JSON.stringify(escaped ? TEXT.mapStrings(record.document, TEXT.escape) : record.document),
    escaped,
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function byCallId(a: ArtifactRecord, b: ArtifactRecord): number {
  return a.callId < b.callId ? -1 : a.callId > b.callId ? 1 : 0;
}

function outcomeKey(kind: ArtifactKind, callId: string): string {
  return `${kind}\u0000${callId}`;
}

function tableDdl(kind: ArtifactKind): string[] {
  const table = COLLECTION[kind];
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (
      call_id text PRIMARY KEY,
      room_name text NOT NULL,
      start_time timestamptz NOT NULL,
      seq bigint NOT NULL,
      document jsonb NOT NULL,
      document_escaped boolean NOT NULL DEFAULT false,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE INDEX IF NOT EXISTS ${table}_start_time_idx ON ${table} (start_time)`,
    // A hash index: a btree entry for a 4 096-character room name can exceed the btree row limit
    // and would make that call unstorable; equality lookups by room are what it serves.
    `CREATE INDEX IF NOT EXISTS ${table}_room_name_idx ON ${table} USING hash (room_name)`,
  ];
}

function schemaRelations(): string[] {
  return KINDS.flatMap((kind) => {
    const table = COLLECTION[kind];
    return [table, `${table}_start_time_idx`, `${table}_room_name_idx`];
  });
}

/**
 * One guarded multi-row upsert: a stored row changes only for a strictly newer sequence, and
 * RETURNING lists exactly the rows this statement inserted or updated.
 */
function upsertStatement(kind: ArtifactKind, rows: readonly ArtifactRecord[]): QueryConfig<unknown[]> {
  const table = COLLECTION[kind];
  const values: unknown[] = [];
  const tuples = rows.map((record) => {
    const row = storedRow(record);
    const p = values.length;
    values.push(record.callId, row.roomName, record.startedAtMs, record.seq, row.document, row.escaped);
    // Epoch milliseconds as integer arithmetic: exact, and valid for every time the contract allows.
    return `($${p + 1}, $${p + 2}, TIMESTAMPTZ 'epoch' + $${p + 3}::bigint * INTERVAL '1 millisecond', $${p + 4}::bigint, $${p + 5}::jsonb, $${p + 6}::boolean)`;
  });
  return {
    // Named statements are parsed and planned once per connection; batch sizes repeat (SQS
    // delivers at most 10 records), so the few shapes stay prepared.
    ...(rows.length <= PREPARED_MAX_ROWS ? { name: `calldata_upsert_${table}_${rows.length}` } : {}),
    text: `INSERT INTO ${table} AS stored (call_id, room_name, start_time, seq, document, document_escaped)
      VALUES ${tuples.join(', ')}
      ON CONFLICT (call_id) DO UPDATE SET
        room_name = EXCLUDED.room_name,
        start_time = EXCLUDED.start_time,
        seq = EXCLUDED.seq,
        document = EXCLUDED.document,
        document_escaped = EXCLUDED.document_escaped,
        updated_at = now()
      WHERE stored.seq < EXCLUDED.seq
      RETURNING call_id`,
    values,
  };
}

export class PostgresBackend implements StorageBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly shownLocation: string;
  private pool: Pool | undefined;
  private schemaReady: Promise<void> | undefined;

  constructor(location: string) {
    if (!/^postgres(ql)?:\/\//i.test(location)) throw new LocationError(BACKEND, 'location is not a postgres:// or postgresql:// URL');
    try {
      new URL(location);
    } catch {
      // No cause attached: Node's URL error carries the input, password included.
      throw new LocationError(BACKEND, 'location is not a valid URL');
    }
    this.location = location;
    this.shownLocation = redactUrl(location);
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    if (records.length === 0) return [];
    const { winners, winnerIndex } = newestPerCall(records);
    // Sorted so concurrent writers lock rows in the same order and cannot deadlock each other.
    const statements = KINDS.flatMap((kind) =>
      chunks(winners.filter((record) => record.kind === kind).sort(byCallId), ROWS_PER_STATEMENT).map((rows) => ({
        kind,
        query: upsertStatement(kind, rows),
      })),
    );
    const applied = new Set<string>();
    try {
      const pool = this.getPool();
      await this.ensureSchema(pool);
      const collect = (kind: ArtifactKind, rows: readonly { call_id: string }[]): void => {
        for (const row of rows) applied.add(outcomeKey(kind, row.call_id));
      };
      const [only] = statements;
      if (statements.length === 1 && only) {
        collect(only.kind, (await pool.query<{ call_id: string }>(only.query)).rows);
      } else {
        // Several statements commit together, so a failed batch is retried whole.
        await this.transaction(pool, async (client) => {
          for (const statement of statements) collect(statement.kind, (await client.query<{ call_id: string }>(statement.query)).rows);
        });
      }
    } catch (error) {
      throw classifyDriverError(BACKEND, 'write', error);
    }
    const outcomes = winners.map((record) => ({
      location: this.locate(record.kind, record.callId),
      applied: applied.has(outcomeKey(record.kind, record.callId)),
    }));
    return spreadOutcomes(records, winnerIndex, outcomes);
  }

  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    try {
      const pool = this.getPool();
      await this.ensureSchema(pool);
      const result = await pool.query<{ seq: string; document: unknown; document_escaped: boolean }>(
        `SELECT seq, document, document_escaped FROM ${COLLECTION[kind]} WHERE call_id = $1`,
        [callId],
      );
      const row = result.rows[0];
      if (!row) return undefined;
      return {
        // bigint arrives as a string; sequences are within Number.MAX_SAFE_INTEGER by contract.
        seq: Number(row.seq),
        document: row.document_escaped ? TEXT.mapStrings(row.document, TEXT.unescape) : row.document,
        location: this.locate(kind, callId),
      };
    } catch (error) {
      throw classifyDriverError(BACKEND, 'read', error);
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.schemaReady = undefined;
    if (pool) await pool.end();
  }

  private locate(kind: ArtifactKind, callId: string): string {
    return `${this.shownLocation} table ${COLLECTION[kind]} call_id=${callId}`;
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

  private ensureSchema(pool: Pool): Promise<void> {
    this.schemaReady ??= this.createSchema(pool).catch((error: unknown) => {
      // Let the next call try again (the server may just have been unreachable).
      this.schemaReady = undefined;
      throw error;
    });
    return this.schemaReady;
  }

  private async createSchema(pool: Pool): Promise<void> {
    const relations = schemaRelations();
    // Tables already there (the usual case): no DDL, so no locks and no CREATE privilege needed.
    const found = await pool.query<{ present: number }>('SELECT count(to_regclass(name))::int AS present FROM unnest($1::text[]) AS name', [relations]);
    if (found.rows[0]?.present === relations.length) return;
    // IF NOT EXISTS alone races (duplicate pg_type rows) when two processes start together.
    await this.transaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [SCHEMA_LOCK_KEY]);
      for (const kind of KINDS) for (const ddl of tableDdl(kind)) await client.query(ddl);
    });
  }

  private async transaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    // A checked-out client has no pool listener: a connection lost between two queries would
    // otherwise be an unhandled 'error' event.
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let healthy = false;
    try {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        healthy = true;
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      client.off('error', ignore);
      // After a failure the connection's state is unknown: discard it rather than reuse it.
      client.release(!healthy);
    }
  }
}
