/**
 * MySQL / MariaDB backend: one row per call in `call_records` — the merged record (`state`), the
 * rendered documents (`metadata`, `transcription`, JSON columns so operators can query them), the
 * folder, a version for compare-and-swap, and the sole writer for the one-round-trip fast path.
 * On MariaDB a JSON column is LONGTEXT checked by JSON_VALID. The table is created on first use.
 *
 * Both guarded writes are one multi-row INSERT ... ON DUPLICATE KEY UPDATE per batch in which
 * every assignment is `IF(guard, VALUES(col), col)`: the fast path's guard is "same sole writer,
 * lower sequence, same folder", the compare-and-swap's is "stored version is the one the merge
 * read" (a new row carries version 1, so "insert only when absent" is the same statement).
 * The server applies assignments left to right and later ones see the new values, so the
 * columns a guard reads are assigned last.
 *
 * Which rows a statement wrote: it stamps them with a fresh write id, and unless the affected-rows
 * header settles it (all or none), a read of that id tells them apart.
 *
 * JSON text cannot carry unpaired UTF-16 surrogates (JSON_VALID rejects their escapes, the UTF-8
 * encoder replaces them in TEXT columns), so a row holding one is stored with those characters
 * escaped reversibly (see text-escape.ts) and `escaped` set; reads undo it. NUL is fine here.
 *
 * Listing: every write also stores the call's summary (its line in a list) in plain columns —
 * `listed` (an agent reported the call), start_ms, direction, numbers, answered, status,
 * duration, has_recording — so a page is one index range scan that never reads the JSON.
 * start_ms rather than start_time: DATETIME ends in year 9999, the contract's times do not.
 * The summary's text columns are VARBINARY (exact bytes: `utf8mb4_bin` pads, 'a' = 'a '), and
 * the room filter adds a byte-length check to room_name's padded comparison for the same reason.
 * Every listing index ends in (start_ms, call_id): read backwards it is the page order.
 */
import { randomUUID } from 'node:crypto';
import { createPool, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { CallState, CallSummary, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import { CALL_ID_PATTERN } from '../contract/facts.ts';
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
import { SqlBackend, type DocumentColumn, type UpsertKind } from './sql-base.ts';
import { classifyDriverError, InvalidQueryError, LocationError, StorageError } from './errors.ts';
import { textEscaper } from './text-escape.ts';

const BACKEND = 'mysql';
/** At most twenty-three placeholders a row; a prepared statement allows 65 535. */
const MAX_ROWS_PER_STATEMENT = 1_000;
/** Room for the statement's fixed part and per-parameter framing inside max_allowed_packet. */
const PACKET_HEADROOM_BYTES = 64 * 1024;
const ROW_OVERHEAD_BYTES = 256;
/** Used when the server does not say (it always does on MySQL and MariaDB). */
const DEFAULT_MAX_PACKET_BYTES = 4 * 1024 * 1024;
const STATEMENT_TIMEOUT_MS = 30_000;
/** Adding the listing columns and indexes to a large table from an earlier version takes a while, once. */
const MIGRATION_TIMEOUT_MS = 15 * 60_000;
/** DATETIME's range; the record keeps the exact time whatever the column can show. */
const MAX_DATETIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/**
 * InnoDB may pick a concurrent upsert of the same key as a deadlock victim; the server rolled the
 * statement (or transaction) back whole, so running it again is safe and usually succeeds.
 */
const DEADLOCK_ATTEMPTS = 4;

const TEXT = textEscaper('\\p{Cs}');


/**
 * The columns both upserts write, in VALUES order. `escaped` is a reserved word (FIELDS ESCAPED
 * BY), hence the quotes.
 */
const LEADING_COLUMNS = ['call_id', 'version', 'sole_writer', 'writer_seq', 'folder', 'room_name', 'start_time', 'last_fact_ms', 'final', 'state'] as const;
/** The call's summary, after the document columns. */
const SUMMARY_COLUMNS = ['listed', 'start_ms', 'direction', 'user_number', 'agent_number', 'answered', 'status', 'duration_ms', 'has_recording'] as const;
const TRAILING_COLUMNS = ['`escaped`', 'write_id', 'updated_at'] as const;

/**
 * The summary columns and the listing indexes, with their definitions: the table's CREATE names
 * them all, and a table from an earlier version gains the ones it lacks (its rows stay unlisted
 * until their next write). A number is at most 256 UTF-16 units, 7 bytes each when escaped.
 */
const LISTING_COLUMNS: readonly (readonly [string, string])[] = [
  ['listed', 'BOOLEAN NOT NULL DEFAULT FALSE'],
  ['start_ms', 'BIGINT NULL'],
  ['direction', 'VARBINARY(16) NULL'],
  ['user_number', 'VARBINARY(1792) NULL'],
  ['agent_number', 'VARBINARY(1792) NULL'],
  ['answered', 'BOOLEAN NULL'],
  ['status', 'VARBINARY(64) NULL'],
  ['duration_ms', 'BIGINT NULL'],
  ['has_recording', 'BOOLEAN NULL'],
];
const LISTING_INDEXES: readonly (readonly [string, string])[] = [
  // Newest first; a time window is a range of it.
  [`${RECORDS}_listed_idx`, '(listed, start_ms, call_id)'],
  // One room's calls in page order. A prefix (a 4 096-character name is more than a key holds):
  // equality on the prefix still reads one room's entries in (start_ms, call_id) order.
  [`${RECORDS}_room_listed_idx`, '(room_name(191), start_ms, call_id)'],
  // A number is the caller's or the agent's: one index each, one ordered branch each in the query.
  [`${RECORDS}_user_number_idx`, '(user_number(191), start_ms, call_id)'],
  [`${RECORDS}_agent_number_idx`, '(agent_number(191), start_ms, call_id)'],
];

/** call_id and the writer are ASCII with a binary collation: ids differing only in case are different. */
const DDL = `CREATE TABLE IF NOT EXISTS ${RECORDS} (
    call_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    version BIGINT NOT NULL,
    sole_writer VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NULL,
    writer_seq BIGINT NOT NULL,
    folder TEXT NOT NULL,
    room_name TEXT NULL,
    start_time DATETIME(3) NULL COMMENT 'UTC',
    last_fact_ms BIGINT NOT NULL,
    final BOOLEAN NOT NULL,
    state JSON NOT NULL,
    metadata JSON NULL,
    transcription JSON NULL,
    \`escaped\` BOOLEAN NOT NULL DEFAULT FALSE,
    write_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    updated_at DATETIME(3) NOT NULL COMMENT 'UTC',
    ${LISTING_COLUMNS.map(([name, type]) => `${name} ${type},`).join('\n    ')}
    PRIMARY KEY (call_id),
    KEY ${RECORDS}_start_time_idx (start_time),
    KEY ${RECORDS}_room_name_idx (room_name(191), start_time),
    KEY ${RECORDS}_open_idx (final, last_fact_ms),
    ${LISTING_INDEXES.map(([name, parts]) => `KEY ${name} ${parts}`).join(',\n    ')}
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;

/** Page sizes a query may ask for. */
/** Whole milliseconds; a bound outside every start time the contract allows means the same clamped. */
const MIN_BOUND_MS = -1;
const MAX_BOUND_MS = Number.MAX_SAFE_INTEGER;
/** MySQL's errors for a column or index that is already there (another process migrated first). */
const ALREADY_THERE = new Set(['ER_DUP_FIELDNAME', 'ER_DUP_KEYNAME']);

/** The columns a listed call's summary is built from. */
const SUMMARY_SELECT = `call_id, room_name, start_ms, direction, user_number, agent_number, answered, status, duration_ms, has_recording, \`escaped\``;

/** A time bound as a whole millisecond the comparison means the same with ("start >= 1.5" is "start >= 2"). */
function boundMs(value: number, what: string): string {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new InvalidQueryError(`${what} is not a number`);
  // As text: the driver would send a number as DOUBLE.
  return String(Math.min(Math.max(Math.ceil(value), MIN_BOUND_MS), MAX_BOUND_MS));
}


/** VARBINARY arrives as a Buffer; TEXT as a string. */
function textColumn(raw: unknown): string {
  return Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
}

/** A listed call's summary from its columns, equal to what the model's summarize gives. */
function summaryOf(row: RowDataPacket): CallSummary {
  const escaped = Number(row.escaped) === 1;
  const text = (raw: unknown) => (escaped ? TEXT.unescape(textColumn(raw)) : textColumn(raw));
  return {
    callId: String(row.call_id),
    roomName: text(row.room_name),
    startedAtMs: Number(row.start_ms),
    direction: text(row.direction) as CallSummary['direction'],
    ...(row.agent_number === null ? {} : { agentNumber: text(row.agent_number) }),
    ...(row.user_number === null ? {} : { userNumber: text(row.user_number) }),
    ...(row.duration_ms === null ? {} : { durationMs: Number(row.duration_ms) }),
    answered: Number(row.answered) === 1,
    status: text(row.status),
    hasRecording: Number(row.has_recording) === 1,
  };
}

/** One row's statement parameters (without the statement-wide write id), and its size on the wire. */
interface EncodedRow {
  callId: string;
  values: unknown[];
  bytes: number;
}

interface ServerLimits {
  packetBudget: number;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** UTC wall time, as text, so neither driver nor session time zone shifts it. */
function datetimeText(ms: number): string {
  return new Date(Math.min(Math.max(ms, 0), MAX_DATETIME_MS)).toISOString().replace('T', ' ').replace('Z', '');
}

function encodeRow(row: RowWrite, version: number, documents: readonly DocumentColumn[]): EncodedRow {
  const escaped = TEXT.needs(row.roomName ?? '') || TEXT.needsAny(row.state) || TEXT.needsAny(row.documents);
  const json = (value: unknown) => (value === undefined ? null : JSON.stringify(escaped ? TEXT.mapStrings(value, TEXT.escape) : value));
  const text = (value: string | undefined) => (value === undefined ? null : escaped ? TEXT.escape(value) : value);
  const summary = row.summary;
  const values: unknown[] = [
    row.callId,
    // Integers as text: the driver would send a number as DOUBLE; the server converts text to BIGINT exactly.
    String(version),
    row.soleWriter,
    String(row.writerSeq),
    row.folder,
    row.roomName === undefined ? null : escaped ? TEXT.escape(row.roomName) : row.roomName,
    row.startedAtMs === undefined ? null : datetimeText(row.startedAtMs),
    String(row.lastFactAtMs),
    row.final,
    json(row.state),
    ...documents.map((column) => json(row.documents[column])),
    // The summary (SUMMARY_COLUMNS): all null, and not listed, until an agent reported the call.
    summary !== undefined,
    summary === undefined ? null : String(summary.startedAtMs),
    text(summary?.direction),
    text(summary?.userNumber),
    text(summary?.agentNumber),
    summary?.answered ?? null,
    text(summary?.status),
    summary?.durationMs === undefined ? null : String(summary.durationMs),
    summary?.hasRecording ?? null,
    escaped,
  ];
  const bytes = values.reduce<number>((sum, value) => sum + (typeof value === 'string' ? Buffer.byteLength(value) : 8), ROW_OVERHEAD_BYTES);
  return { callId: row.callId, values, bytes };
}

/** Groups rows so each statement stays under the row and packet limits. */
function statementGroups(rows: readonly EncodedRow[], packetBudget: number): EncodedRow[][] {
  const groups: EncodedRow[][] = [];
  let current: EncodedRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (row.bytes > packetBudget) {
      // Not retryable: this record can never fit the server's max_allowed_packet.
      throw new StorageError(`${BACKEND}: record of call ${row.callId} is larger than the server's max_allowed_packet`, { backend: BACKEND, retryable: false });
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

/**
 * One guarded multi-row upsert. A guard that is false leaves every column as stored (0 affected
 * rows); a true one changes at least `version` (2 affected rows); an insert counts 1.
 */
function upsertStatement(kind: UpsertKind, documents: readonly DocumentColumn[], rows: readonly EncodedRow[], writeId: string): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  for (const row of rows) values.push(...row.values, writeId);
  const columns = [...LEADING_COLUMNS, ...documents, ...SUMMARY_COLUMNS, ...TRAILING_COLUMNS];
  const tuple = `(${columns.map((column) => (column === 'updated_at' ? 'UTC_TIMESTAMP(3)' : '?')).join(', ')})`;
  const guard =
    kind === 'fast'
      ? '(sole_writer = VALUES(sole_writer) AND writer_seq < VALUES(writer_seq) AND folder = VALUES(folder))'
      : '(version = VALUES(version) - 1)';
  const keep = (column: string) => `${column} = IF(${guard}, VALUES(${column}), ${column})`;
  // Assigned last, in this order: the columns the guard reads. Until the last of them changes
  // the guard still sees the stored row (the fast path's sole_writer and folder are equal when
  // it holds, so only writer_seq changes it; the compare-and-swap reads only version).
  const guarded: readonly string[] = kind === 'fast' ? ['sole_writer', 'folder', 'writer_seq'] : ['version'];
  const assignments = [
    ...(kind === 'fast' ? [`version = IF(${guard}, version + 1, version)`] : []),
    ...columns.filter((column) => column !== 'call_id' && column !== 'version' && !guarded.includes(column)).map(keep),
    ...guarded.map(keep),
  ];
  return {
    sql: `INSERT INTO ${RECORDS} (${columns.join(', ')}) VALUES ${rows.map(() => tuple).join(', ')} ON DUPLICATE KEY UPDATE ${assignments.join(', ')}`,
    values,
  };
}

/** The rows of `rows` the upsert stamped with `writeId` wrote. */
function appliedStatement(rows: readonly EncodedRow[], writeId: string): { sql: string; values: unknown[] } {
  return {
    sql: `SELECT call_id FROM ${RECORDS} WHERE write_id = ? AND call_id IN (${rows.map(() => '?').join(', ')})`,
    values: [writeId, ...rows.map((row) => row.callId)],
  };
}

/**
 * Whether an upsert's header alone tells which rows were applied. Without FOUND_ROWS an inserted
 * row counts 1, an updated row 2 and an unchanged (guarded-off) row 0; the info string's
 * "Duplicates" counts updated rows (or, on some servers, all duplicates). Either way
 * affected - duplicates === n only when every row was applied, and 0 affected means none was.
 */
function appliedFromHeader(header: ResultSetHeader, n: number): 'all' | 'none' | undefined {
  if (header.affectedRows === 0) return 'none';
  // One row: 1 (inserted) or 2 (updated) both mean applied. The server sends no info string then.
  if (n === 1) return 'all';
  const duplicates = /Duplicates:\s*(\d+)/.exec(header.info ?? '')?.[1];
  if (duplicates === undefined) return undefined;
  return header.affectedRows - Number(duplicates) === n ? 'all' : undefined;
}

function isDeadlock(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && (error as { code: unknown }).code === 'ER_LOCK_DEADLOCK';
}

/** `mysql+pymysql://` (the Python form operators may already use) means the same server. */
function driverUrl(location: string): string {
  return location.replace(/^mysql\+pymysql:\/\//i, 'mysql://');
}

/** MariaDB's JSON is LONGTEXT (a string); MySQL's JSON comes as a string with jsonStrings. */
function jsonColumn(raw: unknown): unknown {
  if (raw === null || raw === undefined) return null;
  return JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
}

export class MysqlBackend extends SqlBackend {
  readonly name = BACKEND;
  private readonly url: string;
  private readonly shownLocation: string;
  private pool: Pool | undefined;
  private schemaReady: Promise<ServerLimits> | undefined;

  constructor(location: string, options: BackendOptions) {
    super(options);
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

  protected locate(callId: string): string {
    return `${this.shownLocation} table ${RECORDS} call_id=${callId}`;
  }




  /** Runs the upserts of a batch and returns the call ids written. */
  protected async runUpserts(kind: UpsertKind, rows: readonly { row: RowWrite; version: number }[]): Promise<Set<string>> {
    const documents = this.documentColumns();
    // Sorted so concurrent writers lock rows in the same order and rarely deadlock each other.
    const encoded = rows.map(({ row, version }) => encodeRow(row, version, documents)).sort((a, b) => compareIds(a.callId, b.callId));
    const written = new Set<string>();
    try {
      const pool = this.getPool();
      const { packetBudget } = await this.ensureSchema(pool);
      const groups = statementGroups(encoded, packetBudget);
      const [only] = groups;
      if (groups.length === 1 && only) {
        // The usual batch: one autocommit statement, one round trip. When the header leaves it
        // open, the read of the write id comes after the commit: a row another writer replaced in
        // between reads as not written (never the reverse), and the base then finds our facts
        // already stored.
        for (const callId of await this.retryDeadlocks(() => this.applyGroup(pool, kind, documents, only))) written.add(callId);
      } else {
        // Several statements: one transaction, so the read of each write id happens under the row
        // locks the upsert took and sees exactly what it did.
        const ids = await this.retryDeadlocks(() =>
          this.transaction(pool, async (connection) => {
            const all: string[] = [];
            for (const group of groups) all.push(...(await this.applyGroup(connection, kind, documents, group)));
            return all;
          }),
        );
        for (const callId of ids) written.add(callId);
      }
    } catch (error) {
      throw classifyDriverError(BACKEND, 'write', error);
    }
    return written;
  }

  /** One upsert stamped with a fresh write id; resolves the call ids it wrote. */
  private async applyGroup(db: Pool | PoolConnection, kind: UpsertKind, documents: readonly DocumentColumn[], group: readonly EncodedRow[]): Promise<string[]> {
    const writeId = randomUUID();
    const [header] = await db.execute<ResultSetHeader>({ ...upsertStatement(kind, documents, group, writeId), timeout: STATEMENT_TIMEOUT_MS });
    const known = appliedFromHeader(header, group.length);
    if (known === 'all') return group.map((row) => row.callId);
    if (known === 'none') return [];
    const [rows] = await db.execute<RowDataPacket[]>({ ...appliedStatement(group, writeId), timeout: STATEMENT_TIMEOUT_MS });
    return rows.map((row) => String(row.call_id));
  }

  private async retryDeadlocks<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!isDeadlock(error) || attempt >= DEADLOCK_ATTEMPTS) throw error;
        // A little jitter, so the two victims of one deadlock do not meet again at once.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
      }
    }
  }

  private stored(row: RowDataPacket): StoredCall {
    const escaped = Number(row.escaped) === 1;
    const parse = (raw: unknown) => {
      const value = jsonColumn(raw);
      return escaped && value !== null ? TEXT.mapStrings(value, TEXT.unescape) : value;
    };
    const callId = String(row.call_id);
    const documents: RenderedDocuments = {};
    const metadata = parse(row.metadata);
    const transcription = parse(row.transcription);
    if (metadata !== null) documents.metadata = metadata as RenderedDocuments['metadata'];
    if (transcription !== null) documents.transcription = transcription as RenderedDocuments['transcription'];
    return {
      callId,
      // BIGINT arrives as a string (bigNumberStrings); versions stay far below Number.MAX_SAFE_INTEGER.
      version: Number(row.version),
      folder: String(row.folder),
      state: parse(row.state) as CallState,
      documents,
      location: this.locate(callId),
    };
  }

  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    const found = new Map<string, StoredCall>();
    try {
      const pool = this.getPool();
      await this.ensureSchema(pool);
      for (const group of chunks(callIds, MAX_ROWS_PER_STATEMENT)) {
        const [rows] = await pool.execute<RowDataPacket[]>({
          sql: `SELECT call_id, version, folder, state, metadata, transcription, \`escaped\` FROM ${RECORDS} WHERE call_id IN (${group.map(() => '?').join(', ')})`,
          values: group,
          timeout: STATEMENT_TIMEOUT_MS,
        });
        for (const row of rows) found.set(String(row.call_id), this.stored(row));
      }
    } catch (error) {
      throw classifyDriverError(BACKEND, 'read', error);
    }
    return found;
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    return (await this.readRows([callId])).get(callId);
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    try {
      const pool = this.getPool();
      await this.ensureSchema(pool);
      const [rows] = await pool.execute<RowDataPacket[]>({
        sql: `SELECT call_id, room_name, last_fact_ms, \`escaped\` FROM ${RECORDS} WHERE final = FALSE AND last_fact_ms < ? ORDER BY last_fact_ms LIMIT ?`,
        // Integers as text (see encodeRow); last_fact_ms is whole, so "< ceil(bound)" is "< bound".
        values: [String(Math.ceil(quietSinceMs)), String(Math.max(0, Math.floor(limit)))],
        timeout: STATEMENT_TIMEOUT_MS,
      });
      return rows.map((row) => ({
        callId: String(row.call_id),
        ...(row.room_name === null ? {} : { roomName: Number(row.escaped) === 1 ? TEXT.unescape(String(row.room_name)) : String(row.room_name) }),
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
    // Untrusted text is compared as stored: a value that needs escaping is stored escaped (its row
    // is then an escaped one), and escaping changes nothing else, so escaping the value always is exact.
    const where: string[] = ['listed = TRUE'];
    const values: unknown[] = [];
    if (query.sinceMs !== undefined) {
      where.push('start_ms >= ?');
      values.push(boundMs(query.sinceMs, 'sinceMs'));
    }
    if (query.untilMs !== undefined) {
      where.push('start_ms < ?');
      values.push(boundMs(query.untilMs, 'untilMs'));
    }
    if (query.room !== undefined) {
      const room = TEXT.escape(query.room);
      // utf8mb4_bin ignores trailing spaces: the byte length tells 'a' from 'a '.
      where.push('room_name = ? AND OCTET_LENGTH(room_name) = ?');
      values.push(room, String(Buffer.byteLength(room, 'utf8')));
    }
    if (query.direction !== undefined) {
      where.push('direction = ?');
      values.push(query.direction);
    }
    if (query.answered !== undefined) {
      where.push('answered = ?');
      values.push(query.answered);
    }
    if (query.status !== undefined) {
      where.push('status = ?');
      values.push(TEXT.escape(query.status));
    }
    if (after) {
      where.push('(start_ms < ? OR (start_ms = ? AND call_id < ?))');
      values.push(String(after.startedAtMs), String(after.startedAtMs), after.callId);
    }
    const limit = String(query.limit + 1);
    const order = 'ORDER BY start_ms DESC, call_id DESC LIMIT ?';
    let sql: string;
    let params: unknown[];
    if (query.number === undefined) {
      sql = `SELECT ${SUMMARY_SELECT} FROM ${RECORDS} WHERE ${where.join(' AND ')} ${order}`;
      params = [...values, limit];
    } else {
      const number = TEXT.escape(query.number);
      // The second branch leaves out the calls the first already has (both numbers the same).
      sql = `(SELECT ${SUMMARY_SELECT} FROM ${RECORDS} WHERE ${where.join(' AND ')} AND user_number = ? ${order})
        UNION ALL (SELECT ${SUMMARY_SELECT} FROM ${RECORDS} WHERE ${where.join(' AND ')} AND agent_number = ? AND NOT (user_number <=> ?) ${order})
        ${order}`;
      params = [...values, number, limit, ...values, number, number, limit, limit];
    }
    let rows: RowDataPacket[];
    try {
      const pool = this.getPool();
      await this.ensureSchema(pool);
      [rows] = await pool.execute<RowDataPacket[]>({ sql, values: params, timeout: STATEMENT_TIMEOUT_MS });
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

  private async createSchema(pool: Pool, attempt = 1): Promise<ServerLimits> {
    const [found] = await pool.execute<RowDataPacket[]>({
      sql: `SELECT
              (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?) AS present,
              (SELECT GROUP_CONCAT(column_name) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?
                 AND column_name IN (${LISTING_COLUMNS.map(() => '?').join(', ')})) AS listing_columns,
              (SELECT GROUP_CONCAT(DISTINCT index_name) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?
                 AND index_name IN (${LISTING_INDEXES.map(() => '?').join(', ')})) AS listing_indexes,
              @@max_allowed_packet AS max_packet, @@version AS version`,
      values: [RECORDS, RECORDS, ...LISTING_COLUMNS.map(([name]) => name), RECORDS, ...LISTING_INDEXES.map(([name]) => name)],
      timeout: STATEMENT_TIMEOUT_MS,
    });
    const info = found[0];
    const names = (raw: unknown) => new Set(raw === null || raw === undefined ? [] : textColumn(raw).split(','));
    // Table complete (the usual case): no DDL, so no locks and no CREATE or ALTER privilege needed.
    // CREATE TABLE IF NOT EXISTS (indexes included) is safe when two processes start together.
    if (Number(info?.present) !== 1) await pool.query({ sql: DDL, timeout: STATEMENT_TIMEOUT_MS });
    else {
      const columns = names(info?.listing_columns);
      const indexes = names(info?.listing_indexes);
      const missingColumns = LISTING_COLUMNS.filter(([name]) => !columns.has(name));
      const missingIndexes = LISTING_INDEXES.filter(([name]) => !indexes.has(name));
      // MariaDB takes IF NOT EXISTS (another process may be adding the same); MySQL does not, and
      // reports the duplicate instead, after which the check runs again.
      const ifNotExists = /mariadb/i.test(String(info?.version)) ? 'IF NOT EXISTS ' : '';
      try {
        // Columns first, alone: appended columns are an instant change; indexes are built online.
        if (missingColumns.length > 0) {
          await pool.query({ sql: `ALTER TABLE ${RECORDS} ${missingColumns.map(([name, type]) => `ADD COLUMN ${ifNotExists}${name} ${type}`).join(', ')}`, timeout: MIGRATION_TIMEOUT_MS });
        }
        if (missingIndexes.length > 0) {
          await pool.query({ sql: `ALTER TABLE ${RECORDS} ${missingIndexes.map(([name, parts]) => `ADD INDEX ${ifNotExists}${name} ${parts}`).join(', ')}`, timeout: MIGRATION_TIMEOUT_MS });
        }
      } catch (error) {
        const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
        if (ALREADY_THERE.has(code) && attempt < 3) return this.createSchema(pool, attempt + 1);
        throw error;
      }
    }
    const maxPacket = Number(info?.max_packet);
    return { packetBudget: (Number.isFinite(maxPacket) && maxPacket > 0 ? maxPacket : DEFAULT_MAX_PACKET_BYTES) - PACKET_HEADROOM_BYTES };
  }

  private async transaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
    const connection = await pool.getConnection();
    let healthy = false;
    try {
      await connection.beginTransaction();
      try {
        const result = await work(connection);
        await connection.commit();
        healthy = true;
        return result;
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
