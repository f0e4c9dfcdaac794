/**
 * The hand-written baselines of bench/query.ts: the same rows read straight through the driver,
 * the way a competent user who knows the store's layout would write it, with no paging cursor,
 * no validation and no filter re-check — the bar the backend's `queryCalls` and `read` are held to.
 *
 * A page is the newest `limit` calls (optionally of one room, or with one number as the caller's
 * or the agent's), summaries decoded as the driver hands them over (JSON.parse where the store
 * holds text); a read is one call's record and its documents, decoded.
 *
 * Where there are two obvious ways to write a query (SQL: the plain form, and the form that names
 * the expressions the indexes are built on), both are measured and the faster one is the bar.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { RECORDS } from '../../functions/storage/backend.ts';

export interface PageFilter {
  room?: string;
  number?: string;
}

/** One hand-written way to read a page: resolves the call ids in page order. */
export interface RawPageForm {
  label: string;
  page(filter: PageFilter, limit: number): Promise<string[]>;
}

export interface RawRead {
  callId: string;
  /** Which documents came back (metadata, transcription). */
  documents: string[];
}

export interface RawDriver {
  /** One or more forms; the fastest is the bar. */
  forms: RawPageForm[];
  read(callId: string): Promise<RawRead | undefined>;
  /** What `read` does, printed under the table. */
  readForm: string;
  close(): Promise<void>;
}

const KINDS = ['metadata', 'transcription'] as const;

// ---- SQL -----------------------------------------------------------------------------------

/** The summary columns (backend.ts CallSummary), as a user would select them. */
const PG_COLUMNS = 'call_id, room_name, start_time, direction, user_number, agent_number, answered, status, duration_ms, has_recording';

/**
 * PostgreSQL, plain parameterized queries (node-pg's default: unnamed, planned per execution,
 * as the backend's are) through a pool of 4, like the backend's:
 *
 *   plain          WHERE listed [AND room_name = $1 | AND (user_number = $1 OR agent_number = $1)]
 *                  ORDER BY start_time DESC, call_id DESC LIMIT n
 *   index-aware    the same, written against the indexes as declared: call_id COLLATE "C", the
 *                  room as md5(room_name) = md5($1) AND room_name = $1, the number as a UNION ALL
 *                  of the caller's and the agent's ordered branches
 */
export function rawPostgres(url: string): RawDriver {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const order = (collate: string) => `ORDER BY start_time DESC, call_id${collate} DESC`;
  const plain: RawPageForm = {
    label: 'plain',
    page: async ({ room, number }, limit) => {
      const where = room !== undefined ? 'AND room_name = $1' : number !== undefined ? 'AND (user_number = $1 OR agent_number = $1)' : '';
      const values = room ?? number;
      const result = await pool.query<{ call_id: string }>(`SELECT ${PG_COLUMNS} FROM ${RECORDS} WHERE listed ${where} ${order('')} LIMIT ${limit}`, values === undefined ? [] : [values]);
      return result.rows.map((row) => row.call_id);
    },
  };
  const columnsC = PG_COLUMNS.replace('call_id,', 'call_id COLLATE "C" AS call_id,');
  const indexAware: RawPageForm = {
    label: 'index-aware',
    page: async ({ room, number }, limit) => {
      let text: string;
      if (room !== undefined) text = `SELECT ${columnsC} FROM ${RECORDS} WHERE listed AND md5(room_name) = md5($1) AND room_name = $1 ${order(' COLLATE "C"')} LIMIT ${limit}`;
      else if (number !== undefined) {
        const branch = (where: string) => `(SELECT ${columnsC} FROM ${RECORDS} WHERE listed AND ${where} ${order(' COLLATE "C"')} LIMIT ${limit})`;
        text = `${branch('user_number = $1')} UNION ALL ${branch('agent_number = $1 AND user_number IS DISTINCT FROM $1')} ORDER BY start_time DESC, call_id DESC LIMIT ${limit}`;
      } else text = `SELECT ${columnsC} FROM ${RECORDS} WHERE listed ${order(' COLLATE "C"')} LIMIT ${limit}`;
      const result = await pool.query<{ call_id: string }>(text, room !== undefined ? [room] : number !== undefined ? [number] : []);
      return result.rows.map((row) => row.call_id);
    },
  };
  return {
    forms: [plain, indexAware],
    readForm: 'SELECT call_id, version, folder, state, metadata, transcription, escaped FROM call_records WHERE call_id = $1',
    read: async (callId) => {
      const result = await pool.query<{ call_id: string; metadata: unknown; transcription: unknown }>(
        `SELECT call_id, version, folder, state, metadata, transcription, escaped FROM ${RECORDS} WHERE call_id = $1`,
        [callId],
      );
      const row = result.rows[0];
      return row ? { callId: row.call_id, documents: (['metadata', 'transcription'] as const).filter((kind) => row[kind] !== null) } : undefined;
    },
    close: () => pool.end(),
  };
}

/** The summary columns of the MySQL / MariaDB table (start as start_ms there). */
const MYSQL_COLUMNS = 'call_id, room_name, start_ms, direction, user_number, agent_number, answered, status, duration_ms, has_recording';

/**
 * MySQL / MariaDB, prepared statements (`execute`, as the backend's) through a pool of 4:
 *
 *   plain          WHERE listed [AND room_name = ? | AND (user_number = ? OR agent_number = ?)]
 *                  ORDER BY start_ms DESC, call_id DESC LIMIT n
 *   index-aware    listed = TRUE (the listing index's first column), the number as a UNION ALL of
 *                  the caller's and the agent's ordered branches
 */
export function rawMysql(url: string): RawDriver {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4, charset: 'utf8mb4', timezone: 'Z' });
  const order = 'ORDER BY start_ms DESC, call_id DESC';
  const run = async (sql: string, values: string[]) => {
    const [rows] = await pool.execute<mysql.RowDataPacket[]>(sql, values);
    return rows.map((row) => String(row.call_id));
  };
  const plain: RawPageForm = {
    label: 'plain',
    page: ({ room, number }, limit) => {
      if (room !== undefined) return run(`SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed AND room_name = ? ${order} LIMIT ${limit}`, [room]);
      if (number !== undefined) return run(`SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed AND (user_number = ? OR agent_number = ?) ${order} LIMIT ${limit}`, [number, number]);
      return run(`SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed ${order} LIMIT ${limit}`, []);
    },
  };
  const indexAware: RawPageForm = {
    label: 'index-aware',
    page: ({ room, number }, limit) => {
      if (room !== undefined) return run(`SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed = TRUE AND room_name = ? ${order} LIMIT ${limit}`, [room]);
      if (number !== undefined) {
        const branch = (where: string) => `(SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed = TRUE AND ${where} ${order} LIMIT ${limit})`;
        return run(`${branch('user_number = ?')} UNION ALL ${branch('agent_number = ? AND NOT (user_number <=> ?)')} ${order} LIMIT ${limit}`, [number, number, number]);
      }
      return run(`SELECT ${MYSQL_COLUMNS} FROM ${RECORDS} WHERE listed = TRUE ${order} LIMIT ${limit}`, []);
    },
  };
  const json = (value: unknown) => (typeof value === 'string' ? (JSON.parse(value) as unknown) : value);
  return {
    forms: [plain, indexAware],
    readForm: 'SELECT call_id, version, folder, state, metadata, transcription, `escaped` FROM call_records WHERE call_id = ? (prepared), JSON.parse',
    read: async (callId) => {
      const [rows] = await pool.execute<mysql.RowDataPacket[]>(`SELECT call_id, version, folder, state, metadata, transcription, \`escaped\` FROM ${RECORDS} WHERE call_id = ?`, [callId]);
      const row = rows[0];
      if (!row) return undefined;
      json(row.state);
      const documents = { metadata: json(row.metadata), transcription: json(row.transcription) };
      return { callId: String(row.call_id), documents: KINDS.filter((kind) => documents[kind] !== null && documents[kind] !== undefined) };
    },
    close: () => pool.end(),
  };
}

// ---- MongoDB -----------------------------------------------------------------------------

/**
 * MongoDB: one find on call_records with the listing filter (listed, and room_name, or the
 * number as user_number or agent_number), sort { start_time_ms: -1, _id: -1 }, limit n,
 * projecting the summary — the indexes the backend declares serve it on MongoDB (FerretDB scans).
 * A read is findOne({ _id }) with the record (JSON text) parsed.
 */
export function rawMongo(url: string): RawDriver {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000, socketTimeoutMS: 120_000 });
  const records = client.db().collection<{ _id: string; summary?: { callId: string }; state: string; metadata?: unknown; transcription?: unknown }>(RECORDS);
  return {
    forms: [
      {
        label: 'find + sort + limit',
        page: async ({ room, number }, limit) => {
          const filter = room !== undefined ? { listed: true, room_name: room } : number !== undefined ? { listed: true, $or: [{ user_number: number }, { agent_number: number }] } : { listed: true };
          const docs = await records.find(filter, { projection: { summary: 1 } }).sort({ start_time_ms: -1, _id: -1 }).limit(limit).toArray();
          return docs.map((doc) => doc.summary?.callId ?? '');
        },
      },
    ],
    readForm: 'findOne({ _id }), JSON.parse of the record',
    read: async (callId) => {
      const doc = await records.findOne({ _id: callId });
      if (!doc) return undefined;
      const state = JSON.parse(doc.state) as { callId: string };
      return { callId: state.callId, documents: KINDS.filter((kind) => doc[kind] !== undefined && doc[kind] !== null) };
    },
    close: () => client.close(),
  };
}

// ---- Redis ---------------------------------------------------------------------------------

/**
 * Redis: ZREVRANGEBYSCORE on the scope's sorted set (calldata:time, calldata:room:<room>,
 * calldata:number:<number>) LIMIT 0 n, then one pipeline of HGET <call hash> summary, each
 * JSON.parse'd. A read is one HMGET of the record and both documents, JSON.parse'd.
 */
export function rawRedis(url: string): RawDriver {
  const client = new Redis(url, { protocol: 2 });
  return {
    forms: [
      {
        label: 'ZREVRANGEBYSCORE + pipelined HGET',
        page: async ({ room, number }, limit) => {
          const key = room !== undefined ? `calldata:room:${room}` : number !== undefined ? `calldata:number:${number}` : 'calldata:time';
          const ids = await client.zrevrangebyscore(key, '+inf', '-inf', 'LIMIT', 0, limit);
          const pipeline = client.pipeline();
          for (const id of ids) pipeline.hget(`calldata:call:${id}`, 'summary');
          const replies = (await pipeline.exec()) ?? [];
          return replies.map(([error, text]) => {
            if (error) throw error;
            return (JSON.parse(text as string) as { callId: string }).callId;
          });
        },
      },
    ],
    readForm: 'HMGET calldata:call:<id> version folder state metadata transcription, JSON.parse',
    read: async (callId) => {
      const [version, , state, metadata, transcription] = (await client.hmget(`calldata:call:${callId}`, 'version', 'folder', 'state', 'metadata', 'transcription')) as (string | null)[];
      if (version == null || state == null) return undefined;
      const parsed = JSON.parse(state) as { callId: string };
      const documents = { metadata: metadata == null ? undefined : (JSON.parse(metadata) as unknown), transcription: transcription == null ? undefined : (JSON.parse(transcription) as unknown) };
      return { callId: parsed.callId, documents: (['metadata', 'transcription'] as const).filter((kind) => documents[kind] !== undefined) };
    },
    close: async () => {
      await client.quit();
    },
  };
}

// ---- S3 and the local folder: the call index's layout (described in functions/storage/local.ts) ----

/** A room or number as the index names its folder: a slug and 16 hex digits of its SHA-256. */
function valueKey(value: string): string {
  return `${value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32)}~${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16)}`;
}

function scopeOf({ room, number }: PageFilter): string {
  return room !== undefined ? `room/${valueKey(room)}` : number !== undefined ? `number/${valueKey(number)}` : 'time';
}

/** `<folder>/call_<kind>_<slug>_<timestamp>.json` */
function documentName(folder: string, kind: string): string {
  const slash = folder.lastIndexOf('/');
  return `${folder}/call_${kind}_${folder.slice(0, slash)}_${folder.slice(slash + 1)}.json`;
}

/**
 * S3: one ListObjectsV2 of the scope's prefix (`_calldata-time/`, `_calldata-room/<key>/`,
 * `_calldata-number/<key>/`; the names sort newest first) with MaxKeys n, then every entry
 * GET in parallel at once and JSON.parse'd. A read GETs the record, then both documents in
 * parallel. Its own client (the SDK's defaults: up to 50 sockets).
 */
export function rawS3(options: { endpoint: string; bucket: string; credentials: { accessKeyId: string; secretAccessKey: string } }): RawDriver {
  const client = new S3Client({ endpoint: options.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: options.credentials });
  const Bucket = options.bucket;
  const getText = async (Key: string): Promise<string | undefined> => {
    try {
      const object = await client.send(new GetObjectCommand({ Bucket, Key }));
      return await object.Body?.transformToString('utf8');
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  };
  return {
    forms: [
      {
        label: 'ListObjectsV2 + parallel GETs',
        page: async (filter, limit) => {
          const prefix = `_calldata-${scopeOf(filter)}/`;
          const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: limit }));
          const texts = await Promise.all((listed.Contents ?? []).map((object) => getText(object.Key as string)));
          return texts.map((text) => (JSON.parse(text as string) as { summary: { callId: string } }).summary.callId);
        },
      },
    ],
    readForm: 'GET _calldata-index/<id>.json, then GET both documents in parallel, JSON.parse',
    read: async (callId) => {
      const text = await getText(`_calldata-index/${callId}.json`);
      if (text === undefined) return undefined;
      const record = JSON.parse(text) as { call_id: string; folder: string };
      const documents = await Promise.all(
        KINDS.map(async (kind) => {
          const body = await getText(documentName(record.folder, kind));
          if (body === undefined) return undefined;
          JSON.parse(body);
          return kind;
        }),
      );
      return { callId: record.call_id, documents: documents.filter((kind): kind is (typeof KINDS)[number] => kind !== undefined) };
    },
    close: async () => {
      client.destroy();
    },
  };
}

/**
 * Local folder: readdir of the scope's folder (`.calldata-time/`, `.calldata-room/<key>/`, …)
 * for its shard folders, then the shards in name order (newest first), each readdir'd and
 * sorted, until n names; every entry readFile'd in parallel and JSON.parse'd. A read reads the
 * record, then both documents in parallel.
 */
export function rawLocal(root: string): RawDriver {
  const text = (path: string) =>
    readFile(path, 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    });
  return {
    forms: [
      {
        label: 'readdir + parallel readFile',
        page: async (filter, limit) => {
          const scope = join(root, `.calldata-${scopeOf(filter)}`);
          const shards = (await readdir(scope)).sort();
          const paths: string[] = [];
          for (const shard of shards) {
            for (const name of (await readdir(join(scope, shard))).sort()) {
              if (name.startsWith('.')) continue; // a temp file being renamed into place
              paths.push(join(scope, shard, name));
              if (paths.length === limit) break;
            }
            if (paths.length === limit) break;
          }
          const texts = await Promise.all(paths.map((path) => readFile(path, 'utf8')));
          return texts.map((t) => (JSON.parse(t) as { summary: { callId: string } }).summary.callId);
        },
      },
    ],
    readForm: 'readFile .calldata-index/<id>.json, then both documents in parallel, JSON.parse',
    read: async (callId) => {
      const record = await text(join(root, '.calldata-index', `${callId}.json`));
      if (record === undefined) return undefined;
      const parsed = JSON.parse(record) as { call_id: string; folder: string };
      const documents = await Promise.all(
        KINDS.map(async (kind) => {
          const body = await text(join(root, documentName(parsed.folder, kind)));
          if (body === undefined) return undefined;
          JSON.parse(body);
          return kind;
        }),
      );
      return { callId: parsed.call_id, documents: documents.filter((kind): kind is (typeof KINDS)[number] => kind !== undefined) };
    },
    close: async () => undefined,
  };
}
