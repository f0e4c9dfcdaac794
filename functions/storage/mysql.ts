/**
 * MySQL / MariaDB backend: one row per call in `call_metadata` / `call_transcription`, the
 * document in a JSON column (on MariaDB, LONGTEXT checked by JSON_VALID). Tables are created on
 * first use.
 *
 * Which rows a write applied is decided inside its transaction: the guarded upsert stamps the
 * rows it changes with this write's id, and a read of that id under the same row locks tells
 * them apart from rows a newer (or equal) sequence kept. Exact even with concurrent writers.
 *
 * JSON text cannot carry unpaired UTF-16 surrogates (JSON_VALID rejects their escapes, the
 * UTF-8 encoder replaces them), so a document holding one is stored with those characters
 * escaped reversibly and `document_escaped` set; read() undoes it. NUL is fine here.
 */
import { randomUUID } from 'node:crypto';
import { createPool, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { redactUrl } from '../shared/redact.ts';
import { COLLECTION, newestPerCall, spreadOutcomes, type StorageBackend, type StoredArtifact, type WriteOutcome } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { textEscaper } from './text-escape.ts';
import { classifyDriverError, LocationError, StorageError } from './errors.ts';

const BACKEND = 'mysql';
const KINDS: readonly ArtifactKind[] = ['metadata', 'transcription'];
/** Seven placeholders a row; a prepared statement allows 65 535. */
const MAX_ROWS_PER_STATEMENT = 1_000;
/** Room for the statement's fixed part and per-row framing inside max_allowed_packet. */
const PACKET_HEADROOM_BYTES = 64 * 1024;
const ROW_OVERHEAD_BYTES = 256;
const STATEMENT_TIMEOUT_MS = 30_000;
/** DATETIME's range; the document keeps the exact time whatever the column can show. */
const MAX_DATETIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const TEXT = textEscaper('\\p{Cs}');

interface StoredRow {
  callId: string;
  roomName: string;
  startTime: string;
  seq: string;
  document: string;
  escaped: boolean;
  bytes: number;
}

function storedRow(record: ArtifactRecord): StoredRow {
  const escaped = TEXT.needs(record.roomName) || TEXT.needsAny(record.document);
  const roomName = escaped ? TEXT.escape(record.roomName) : record.roomName;
  const document = JSON.stringify(escaped ? TEXT.mapStrings(record.document, TEXT.escape) : record.document);
  const startMs = Math.min(Math.max(record.startedAtMs, 0), MAX_DATETIME_MS);
  return {
    callId: record.callId,
    roomName,
    // UTC wall time, as text, so neither driver nor session time zone shifts it.
    startTime: new Date(startMs).toISOString().replace('T', ' ').replace('Z', ''),
    // As text: the driver would send a number as DOUBLE; the server converts text to BIGINT exactly.
    seq: String(record.seq),
    document,
    escaped,
    bytes: Buffer.byteLength(document) + Buffer.byteLength(roomName) + ROW_OVERHEAD_BYTES,
  };
}

/** Groups rows so each statement stays under the row and packet limits. */
function statementGroups(rows: readonly StoredRow[], packetBudget: number): StoredRow[][] {
  const groups: StoredRow[][] = [];
  let current: StoredRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (row.bytes > packetBudget) {
      // Not retryable: this document can never fit the server's max_allowed_packet.
      throw new StorageError(`${BACKEND}: document larger than the server's max_allowed_packet`, { backend: BACKEND, retryable: false });
    }
    if (current.length > 0 && (current.length >= MAX_ROWS_PER_STATEMENT || bytes + row.bytes > packetBudget)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row);
    bytes += row.bytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

function outcomeKey(kind: ArtifactKind, callId: string): string {
  return `${kind}\u0000${callId}`;
}

function tableDdl(kind: ArtifactKind): string {
  const table = COLLECTION[kind];
  // call_id is ASCII with a binary collation: ids differing only in case are different calls.
  return `CREATE TABLE IF NOT EXISTS ${table} (
    call_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    room_name TEXT NOT NULL,
    start_time DATETIME(3) NOT NULL COMMENT 'UTC',
    seq BIGINT NOT NULL,
    document JSON NOT NULL,
    document_escaped BOOLEAN NOT NULL DEFAULT FALSE,
    write_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    updated_at DATETIME(3) NOT NULL COMMENT 'UTC',
    PRIMARY KEY (call_id),
    KEY ${table}_start_time_idx (start_time),
    KEY ${table}_room_name_idx (room_name(191), start_time)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;
}

/**
 * One guarded multi-row upsert. Every assignment keeps the stored value unless the incoming
 * sequence is strictly newer; MySQL applies assignments left to right, so `seq` goes last
 * (the guards before it must still see the stored sequence).
 */
function upsertStatement(kind: ArtifactKind, rows: readonly StoredRow[], writeId: string): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  for (const row of rows) values.push(row.callId, row.roomName, row.startTime, row.seq, row.document, row.escaped, writeId);
  const newer = 'VALUES(seq) > seq';
  return {
    sql: `INSERT INTO ${COLLECTION[kind]} (call_id, room_name, start_time, seq, document, document_escaped, write_id, updated_at)
      VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3))').join(', ')}
      ON DUPLICATE KEY UPDATE
        room_name = IF(${newer}, VALUES(room_name), room_name),
        start_time = IF(${newer}, VALUES(start_time), start_time),
        document = IF(${newer}, VALUES(document), document),
        document_escaped = IF(${newer}, VALUES(document_escaped), document_escaped),
        write_id = IF(${newer}, VALUES(write_id), write_id),
        updated_at = IF(${newer}, VALUES(updated_at), updated_at),
        seq = IF(${newer}, VALUES(seq), seq)`,
    values,
  };
}

/** The rows of `rows` this write's upsert inserted or updated. */
function appliedStatement(kind: ArtifactKind, rows: readonly StoredRow[], writeId: string): { sql: string; values: unknown[] } {
  return {
    sql: `SELECT call_id FROM ${COLLECTION[kind]} WHERE write_id = ? AND call_id IN (${rows.map(() => '?').join(', ')})`,
    values: [writeId, ...rows.map((row) => row.callId)],
  };
}

/**
 * Whether an upsert's header alone tells which rows were applied. Without FOUND_ROWS an
 * inserted row counts 1, an updated row 2 and an unchanged (stale) row 0; the info string's
 * "Duplicates" counts updated rows (or, on some servers, all duplicates). Either way
 * affected - duplicates === n only when every row was applied, and 0 affected means none was.
 * A single row needs no info string: any affected count means it was applied.
 */
function appliedFromHeader(header: ResultSetHeader, n: number): 'all' | 'none' | undefined {
  if (header.affectedRows === 0) return 'none';
  // One row: 1 (inserted) or 2 (updated) both mean applied. The server sends no info string then.
  if (n === 1) return 'all';
  const duplicates = /Duplicates:\s*(\d+)/.exec(header.info ?? '')?.[1];
  if (duplicates === undefined) return undefined;
  return header.affectedRows - Number(duplicates) === n ? 'all' : undefined;
}

/** `mysql+pymysql://` (the Python form operators may already use) means the same server. */
function driverUrl(location: string): string {
  return location.replace(/^mysql\+pymysql:\/\//i, 'mysql://');
}

interface ServerLimits {
  packetBudget: number;
}

export class MysqlBackend implements StorageBackend {
  readonly name = BACKEND;
  private readonly url: string;
  private readonly shownLocation: string;
  private pool: Pool | undefined;
  private schemaReady: Promise<ServerLimits> | undefined;

  constructor(location: string) {
    if (!/^mysql(\+pymysql)?:\/\//i.test(location)) throw new LocationError(BACKEND, 'location is not a mysql:// or mysql+pymysql:// URL');
    let parsed: URL;
    try {
      parsed = new URL(driverUrl(location));
    } catch {
      // No cause attached: Node's URL error carries the input, password included.
      throw new LocationError(BACKEND, 'location is not a valid URL');
    }
    if (parsed.pathname.length <= 1) throw new LocationError(BACKEND, 'location names no database');
    this.url = parsed.toString();
    this.shownLocation = redactUrl(location);
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    if (records.length === 0) return [];
    const { winners, winnerIndex } = newestPerCall(records);
    const writeId = randomUUID();
    const applied = new Set<string>();
    try {
      const pool = this.getPool();
      const { packetBudget } = await this.ensureSchema(pool);
      const statements = KINDS.flatMap((kind) => {
        // Sorted so concurrent writers lock rows in the same order and cannot deadlock each other.
        const rows = winners
          .filter((record) => record.kind === kind)
          .map(storedRow)
          .sort((a, b) => (a.callId < b.callId ? -1 : a.callId > b.callId ? 1 : 0));
        return statementGroups(rows, packetBudget).map((group) => ({ kind, group }));
      });
      const [only] = statements;
      if (statements.length === 1 && only) {
        // The usual batch: one autocommit statement, one round trip.
        const [header] = await pool.execute<ResultSetHeader>({ ...upsertStatement(only.kind, only.group, writeId), timeout: STATEMENT_TIMEOUT_MS });
        const known = appliedFromHeader(header, only.group.length);
        if (known === 'all') for (const row of only.group) applied.add(outcomeKey(only.kind, row.callId));
        else if (known === undefined) {
          // A mix of applied and stale rows: ask which rows carry this write's id. A newer write
          // landing in between would make a row look stale, which is also the truth by then.
          const [rows] = await pool.execute<RowDataPacket[]>({ ...appliedStatement(only.kind, only.group, writeId), timeout: STATEMENT_TIMEOUT_MS });
          for (const row of rows) applied.add(outcomeKey(only.kind, String(row.call_id)));
        }
      } else {
        await this.transaction(pool, async (connection) => {
          for (const { kind, group } of statements) {
            await connection.execute({ ...upsertStatement(kind, group, writeId), timeout: STATEMENT_TIMEOUT_MS });
            // Our upsert holds every row of the group locked until commit, so this sees exactly its effect.
            const [rows] = await connection.execute<RowDataPacket[]>({ ...appliedStatement(kind, group, writeId), timeout: STATEMENT_TIMEOUT_MS });
            for (const row of rows) applied.add(outcomeKey(kind, String(row.call_id)));
          }
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
      const [rows] = await pool.execute<RowDataPacket[]>({
        sql: `SELECT seq, document, document_escaped FROM ${COLLECTION[kind]} WHERE call_id = ?`,
        values: [callId],
        timeout: STATEMENT_TIMEOUT_MS,
      });
      const row = rows[0];
      if (!row) return undefined;
      const raw: unknown = row.document;
      // MariaDB's JSON is LONGTEXT (a string); MySQL's JSON comes as a string with jsonStrings.
      const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
      const document: unknown = JSON.parse(text);
      return {
        seq: Number(row.seq),
        document: Number(row.document_escaped) === 1 ? TEXT.mapStrings(document, TEXT.unescape) : document,
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
      const pool = createPool({
        uri: this.url,
        connectionLimit: 4,
        maxIdle: 2,
        idleTimeout: 30_000,
        // Fail fast while the server is down, so the record goes back to the queue promptly.
        connectTimeout: 5_000,
        enableKeepAlive: true,
        charset: 'utf8mb4',
        timezone: 'Z',
        jsonStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        // Each batch size is its own prepared statement; keep the per-connection cache bounded.
        maxPreparedStatements: 64,
        // Unchanged rows must count 0 affected rows (not 1) for appliedFromHeader to hold.
        flags: ['-FOUND_ROWS'],
      });
      // A pooled connection whose server went away emits 'error' (more than once, possibly);
      // unhandled, that would crash the process. The pool drops the connection by itself.
      pool.pool.on('connection', (connection) => {
        connection.on('error', () => undefined);
      });
      this.pool = pool;
    }
    return this.pool;
  }

  private ensureSchema(pool: Pool): Promise<ServerLimits> {
    this.schemaReady ??= this.createSchema(pool).catch((error: unknown) => {
      // Let the next call try again (the server may just have been unreachable).
      this.schemaReady = undefined;
      throw error;
    });
    return this.schemaReady;
  }

  private async createSchema(pool: Pool): Promise<ServerLimits> {
    const tables = KINDS.map((kind) => COLLECTION[kind]);
    const [found] = await pool.execute<RowDataPacket[]>({
      sql: `SELECT COUNT(*) AS present, @@max_allowed_packet AS max_packet FROM information_schema.tables
            WHERE table_schema = DATABASE() AND table_name IN (?, ?)`,
      values: tables,
      timeout: STATEMENT_TIMEOUT_MS,
    });
    // Tables already there (the usual case): no DDL, so no CREATE privilege needed.
    // CREATE TABLE IF NOT EXISTS is safe when two processes start together.
    if (Number(found[0]?.present) !== tables.length) {
      for (const kind of KINDS) await pool.query({ sql: tableDdl(kind), timeout: STATEMENT_TIMEOUT_MS });
    }
    const maxPacket = Number(found[0]?.max_packet);
    return { packetBudget: (Number.isFinite(maxPacket) && maxPacket > 0 ? maxPacket : 4 * 1024 * 1024) - PACKET_HEADROOM_BYTES };
  }

  private async transaction(pool: Pool, work: (connection: PoolConnection) => Promise<void>): Promise<void> {
    const connection = await pool.getConnection();
    let healthy = false;
    try {
      await connection.beginTransaction();
      try {
        await work(connection);
        await connection.commit();
        healthy = true;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      }
    } finally {
      // After a failure the connection's state is unknown: discard it rather than reuse it.
      if (healthy) connection.release();
      else connection.destroy();
    }
  }
}
