/**
 * The hand-written baselines of bench/persist.ts: what a competent user would write, per
 * backend, to store each queue message's record and metadata document without this project.
 *
 * Every baseline does, per message and inside the measurement: JSON.parse the SQS body, build
 * the record (the cumulative message's facts, which is the whole call so far) and render the
 * metadata document with the project's own renderer (the user needs the same document; there is
 * no cheaper way to produce identical JSON), then ONE guarded write keyed by call id that keeps
 * the newer message (by the writer's sequence, which grows with send time). No validation, no
 * merge, no middleware, no batching: it is the cheapest correct code for a single cumulative
 * writer, so it is the bar the handler is held to. It writes the same JSON (record + metadata
 * document) into a table / collection / keys of the same shape (same columns and indexes) as the
 * backend, next to the backend's own, and uses prepared statements where the driver has them.
 *
 * Why that is fair: it produces the same stored JSON for the main workload with the fewest
 * round trips the server allows for a guarded write, pays for nothing the handler is not also
 * paying for (JSON.parse and the same renderer: about 18 µs a message in a tight loop, see
 * bench/support/handler-stages.ts), and leaves out what only the handler needs (validation of
 * untrusted input, merging writers, batching, the Lambda layers): exactly the costs measured.
 * Where the backend does more for correctness with several consumers (local lock files,
 * MongoDB version documents) the baseline does not, so the bar is, if anything, high.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { MongoClient, type Collection, type IndexSpecification } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { CallFacts } from '../../functions/contract/facts.ts';
import type { CallState, MetadataDocument } from '../../functions/contract/record.ts';
import { chooseFolder, renderMetadata } from '../../functions/domain/render.ts';

/** What the hand-written consumer derives from one message body. */
export interface RawRow {
  callId: string;
  writer: string;
  seq: number;
  folder: string;
  roomName: string | undefined;
  startedAtMs: number | undefined;
  lastFactAtMs: number;
  final: boolean;
  record: CallState;
  metadata: MetadataDocument | undefined;
}

interface WireMessage {
  callId: string;
  writer: string;
  seq: number;
  sentAtMs: number;
  facts: CallFacts;
}

/** The hand-written decode + render (timed with the write). */
export function rawRow(body: string, timezone: string): RawRow {
  const m = JSON.parse(body) as WireMessage;
  // A cumulative message holds the whole call so far: it IS the record.
  const record: CallState = { ...m.facts, callId: m.callId, writers: { [m.writer]: m.seq }, lastFactAtMs: m.sentAtMs };
  const folder = chooseFolder(record, timezone) ?? '';
  return {
    callId: m.callId,
    writer: m.writer,
    seq: m.seq,
    folder,
    roomName: record.roomName,
    startedAtMs: record.startedAtMs,
    lastFactAtMs: m.sentAtMs,
    final: record.outcome !== undefined,
    record,
    metadata: folder ? renderMetadata(record, folder, timezone) : undefined,
  };
}

export interface RawDriver {
  /** Which hand-written form this is (printed under the table). */
  readonly form: string;
  /** Creates the baseline's table / collection / keys (after the backend created its own). */
  prepare(): Promise<void>;
  /** One guarded write of one message's row. */
  write(row: RawRow): Promise<void>;
  /** The stored sequence of a call (for the post-run check), undefined when absent. */
  storedSeq(callId: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export const RAW_TABLE = 'raw_records';

/**
 * PostgreSQL: `INSERT … ON CONFLICT (call_id) DO UPDATE … WHERE stored.writer_seq <
 * EXCLUDED.writer_seq`, one named (prepared) statement, into a copy of the backend's table
 * (`LIKE call_records INCLUDING ALL`: same columns, same four indexes). Fair: one round trip, the
 * textbook guarded upsert, the same jsonb columns and index upkeep as the backend's row.
 */
export function rawPostgres(url: string, table: string): RawDriver {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const text = `INSERT INTO ${RAW_TABLE} AS stored (call_id, version, sole_writer, writer_seq, folder, room_name, start_time, last_fact_ms, final, state, metadata)
    VALUES ($1, 1, $2, $3, $4, $5, TIMESTAMPTZ 'epoch' + $6::bigint * INTERVAL '1 millisecond', $7, $8, $9::jsonb, $10::jsonb)
    ON CONFLICT (call_id) DO UPDATE SET version = stored.version + 1, sole_writer = EXCLUDED.sole_writer, writer_seq = EXCLUDED.writer_seq,
      folder = EXCLUDED.folder, room_name = EXCLUDED.room_name, start_time = EXCLUDED.start_time, last_fact_ms = EXCLUDED.last_fact_ms,
      final = EXCLUDED.final, state = EXCLUDED.state, metadata = EXCLUDED.metadata, updated_at = now()
    WHERE stored.writer_seq < EXCLUDED.writer_seq`;
  return {
    form: 'INSERT … ON CONFLICT (call_id) DO UPDATE … WHERE stored.writer_seq < EXCLUDED.writer_seq (prepared)',
    prepare: async () => {
      await pool.query(`CREATE TABLE ${RAW_TABLE} (LIKE ${table} INCLUDING ALL)`);
    },
    write: async (row) => {
      await pool.query({
        name: 'raw_upsert',
        text,
        values: [row.callId, row.writer, row.seq, row.folder, row.roomName ?? null, row.startedAtMs ?? null, row.lastFactAtMs, row.final, JSON.stringify(row.record), row.metadata ? JSON.stringify(row.metadata) : null],
      });
    },
    storedSeq: async (callId) => {
      const result = await pool.query<{ writer_seq: string }>(`SELECT writer_seq FROM ${RAW_TABLE} WHERE call_id = $1`, [callId]);
      return result.rows[0] ? Number(result.rows[0].writer_seq) : undefined;
    },
    close: () => pool.end(),
  };
}

/**
 * MariaDB / MySQL: `INSERT … ON DUPLICATE KEY UPDATE col = IF(VALUES(writer_seq) > writer_seq,
 * VALUES(col), col)` (writer_seq assigned last, since later assignments see earlier ones),
 * executed as a prepared statement, into `CREATE TABLE … LIKE call_records` (same columns and
 * indexes; write_id, which only the backend uses, gets a constant). Fair: one round trip, the
 * usual MariaDB form of a guarded upsert (no ON CONFLICT … WHERE there).
 */
export function rawMysql(url: string, table: string): RawDriver {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4, charset: 'utf8mb4', timezone: 'Z' });
  const newer = 'VALUES(writer_seq) > writer_seq';
  const columns = ['version', 'sole_writer', 'folder', 'room_name', 'start_time', 'last_fact_ms', 'final', 'state', 'metadata', 'updated_at'];
  const assignments = [...columns.map((c) => (c === 'version' ? `version = IF(${newer}, version + 1, version)` : `${c} = IF(${newer}, VALUES(${c}), ${c})`)), `writer_seq = IF(${newer}, VALUES(writer_seq), writer_seq)`];
  const sql = `INSERT INTO ${RAW_TABLE} (call_id, version, sole_writer, writer_seq, folder, room_name, start_time, last_fact_ms, final, state, metadata, write_id, updated_at)
    VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, '-', UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE ${assignments.join(', ')}`;
  return {
    form: 'INSERT … ON DUPLICATE KEY UPDATE col = IF(VALUES(writer_seq) > writer_seq, VALUES(col), col) (prepared)',
    prepare: async () => {
      await pool.query(`CREATE TABLE ${RAW_TABLE} LIKE ${table}`);
    },
    write: async (row) => {
      await pool.execute(sql, [
        row.callId,
        row.writer,
        String(row.seq),
        row.folder,
        row.roomName ?? null,
        row.startedAtMs === undefined ? null : new Date(row.startedAtMs).toISOString().replace('T', ' ').replace('Z', ''),
        String(row.lastFactAtMs),
        row.final,
        JSON.stringify(row.record),
        row.metadata ? JSON.stringify(row.metadata) : null,
      ]);
    },
    storedSeq: async (callId) => {
      const [rows] = await pool.execute<mysql.RowDataPacket[]>(`SELECT writer_seq FROM ${RAW_TABLE} WHERE call_id = ?`, [callId]);
      return rows[0] ? Number(rows[0].writer_seq) : undefined;
    },
    close: () => pool.end(),
  };
}

/**
 * Redis: one small Lua script (EVALSHA through defineCommand) per message: compare the stored
 * sequence, then HSET the same hash fields the backend keeps and maintain the same three sorted
 * sets (room, start time, open calls). One round trip, atomic; WATCH/MULTI would need three.
 * Keys are the backend's families under the `rawbench:` prefix instead of `calldata:`. Fair: the
 * same hash and index upkeep in the same single atomic round trip the backend's script takes.
 */
export function rawRedis(url: string): RawDriver {
  const client = new Redis(url, { protocol: 2 });
  client.defineCommand('rawUpsert', {
    numberOfKeys: 4,
    lua: `
local stored = redis.call('HGET', KEYS[1], 'writer_seq')
if stored and tonumber(stored) >= tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'sole_writer', ARGV[2], 'writer_seq', ARGV[3], 'folder', ARGV[4],
  'final', ARGV[5], 'last_fact_ms', ARGV[6], 'room', ARGV[7], 'start_ms', ARGV[8], 'state', ARGV[9], 'metadata', ARGV[10])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
if ARGV[5] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) end
return 1`,
  });
  const script = client as unknown as { rawUpsert(...args: string[]): Promise<number> };
  return {
    form: 'one Lua script per message (EVALSHA): compare writer_seq, HSET + 3 ZADD/ZREM',
    prepare: async () => undefined,
    write: async (row) => {
      await script.rawUpsert(
        `rawbench:call:${row.callId}`,
        'rawbench:open',
        'rawbench:time',
        `rawbench:room:${row.roomName ?? ''}`,
        row.callId,
        row.writer,
        String(row.seq),
        row.folder,
        row.final ? '1' : '0',
        String(row.lastFactAtMs),
        row.roomName ?? '',
        String(row.startedAtMs ?? 0),
        JSON.stringify(row.record),
        row.metadata ? JSON.stringify(row.metadata) : '',
      );
    },
    storedSeq: async (callId) => {
      const seq = await client.hget(`rawbench:call:${callId}`, 'writer_seq');
      return seq === null ? undefined : Number(seq);
    },
    close: async () => {
      await client.quit();
    },
  };
}

/** The document a MongoDB baseline stores: the backend's `call_records` fields (record as JSON text, metadata as a subdocument). */
interface RawDoc {
  _id: string;
  call_id: string;
  version: number;
  folder: string;
  sole_writer: string;
  writer_seq: number;
  room_name: string | null;
  start_time_ms: number | null;
  last_fact_ms: number;
  final: boolean;
  state: string;
  metadata?: MetadataDocument;
  escaped: boolean;
  updated_at: Date;
}

function rawDoc(row: RawRow, version: number): RawDoc {
  return {
    _id: row.callId,
    call_id: row.callId,
    version,
    folder: row.folder,
    sole_writer: row.writer,
    writer_seq: row.seq,
    room_name: row.roomName ?? null,
    start_time_ms: row.startedAtMs ?? null,
    last_fact_ms: row.lastFactAtMs,
    final: row.final,
    state: JSON.stringify(row.record),
    ...(row.metadata ? { metadata: row.metadata } : {}),
    escaped: false,
    updated_at: new Date(),
  };
}

export type MongoForm = 'find-then-replace-upsert' | 'find-then-insert-or-replace';

/**
 * MongoDB (here FerretDB), keyed by `_id` only, as a competent user on FerretDB writes it: it
 * pushes down only a bare `{_id}` filter (anything else scans the collection) and supports no
 * pipeline updates, so a guarded single-statement upsert is not available. Read the stored
 * sequence by `_id`, compare in the client, then write by `_id`:
 *   find-then-replace-upsert     findOne({_id}) → replaceOne({_id}, doc, {upsert: true})
 *   find-then-insert-or-replace  findOne({_id}) → insertOne(doc) when absent, else replaceOne({_id}, doc)
 * bench/persist.ts measures both and keeps the faster. Correct for one consumer at a time (the
 * handler's backend also stays correct with several); the collection gets the backend's indexes.
 */
export function rawMongo(url: string, collectionName: string, form: MongoForm): RawDriver {
  const client = new MongoClient(url, { ignoreUndefined: true });
  const collection: Collection<RawDoc> = client.db().collection<RawDoc>(collectionName);
  return {
    form: form === 'find-then-replace-upsert' ? 'findOne({_id}) → replaceOne({_id}, doc, {upsert: true})' : 'findOne({_id}) → insertOne(doc) | replaceOne({_id}, doc)',
    prepare: async () => {
      await client.connect();
      // The backend's indexes, one createIndex each (as the backend does on FerretDB).
      const indexes: IndexSpecification[] = [{ final: 1, last_fact_ms: 1 }, { start_time_ms: -1 }, { room_name: 1, start_time_ms: -1 }];
      for (const key of indexes) await collection.createIndex(key);
    },
    write: async (row) => {
      const stored = await collection.findOne({ _id: row.callId }, { projection: { writer_seq: 1, version: 1 } });
      if (stored && stored.writer_seq >= row.seq) return;
      const doc = rawDoc(row, (stored?.version ?? 0) + 1);
      if (form === 'find-then-replace-upsert' || stored) await collection.replaceOne({ _id: row.callId }, doc, { upsert: true });
      else await collection.insertOne(doc);
    },
    storedSeq: async (callId) => (await collection.findOne({ _id: callId }, { projection: { writer_seq: 1 } }))?.writer_seq,
    close: () => client.close(),
  };
}

/** The record object / file body, the backend's shape (functions/storage/s3.ts, local.ts). */
function recordBody(row: RawRow, version: number): string {
  return JSON.stringify({
    call_id: row.callId,
    version,
    folder: row.folder,
    sole_writer: row.writer,
    writer_seq: row.seq,
    final: row.final,
    last_fact_ms: row.lastFactAtMs,
    room_name: row.roomName ?? null,
    started_at_ms: row.startedAtMs ?? null,
    state: row.record,
  });
}

/** The spec's metadata document name in the call's folder, as the backends name it. */
function metadataKey(folder: string): string {
  const slash = folder.lastIndexOf('/');
  return `${folder}/call_metadata_${folder.slice(0, slash)}_${folder.slice(slash + 1)}.json`;
}

function markerBody(row: RawRow): string {
  return JSON.stringify({ call_id: row.callId, room_name: row.roomName ?? null, last_fact_ms: row.lastFactAtMs });
}

/**
 * S3: the backend's objects under `rawbench/` — the record (`_calldata-index/<id>.json`), the
 * metadata document in the call's folder, and the open-call marker. The guard is a conditional
 * PUT of the record: HEAD it (its sequence and ETag), then PUT If-None-Match: * when absent or
 * If-Match: <ETag> when ours is newer; once it landed, the document and the marker (PUT while
 * open, DELETE once final) in parallel. Three round trips in sequence per message; a user who
 * also cached ETags per container, as the backend does, would save the HEAD.
 */
export function rawS3(settings: { endpoint: string; bucket: string; credentials: { accessKeyId: string; secretAccessKey: string } }, prefix: string): RawDriver {
  const client = new S3Client({ endpoint: settings.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: settings.credentials });
  const Bucket = settings.bucket;
  const recordKey = (callId: string) => `${prefix}_calldata-index/${callId}.json`;
  return {
    form: 'HEAD record → PUT record If-None-Match: * | If-Match: <ETag> → PUT metadata document ∥ PUT/DELETE open marker',
    prepare: async () => undefined,
    write: async (row) => {
      const key = recordKey(row.callId);
      let stored: { etag: string; seq: number; version: number } | undefined;
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        stored = { etag: head.ETag ?? '', seq: Number(head.Metadata?.seq ?? -1), version: Number(head.Metadata?.version ?? 0) };
      } catch (error) {
        if (!(error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)) throw error;
      }
      if (stored && stored.seq >= row.seq) return;
      const version = (stored?.version ?? 0) + 1;
      await client.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: recordBody(row, version),
          ContentType: 'application/json; charset=utf-8',
          Metadata: { seq: String(row.seq), version: String(version) },
          ...(stored ? { IfMatch: stored.etag } : { IfNoneMatch: '*' }),
        }),
      );
      const marker = `${prefix}_calldata-open/${row.callId}`;
      await Promise.all([
        row.metadata ? client.send(new PutObjectCommand({ Bucket, Key: `${prefix}${metadataKey(row.folder)}`, Body: JSON.stringify(row.metadata, null, 2), ContentType: 'application/json; charset=utf-8' })) : undefined,
        row.final ? client.send(new DeleteObjectCommand({ Bucket, Key: marker })) : client.send(new PutObjectCommand({ Bucket, Key: marker, Body: markerBody(row) })),
      ]);
    },
    storedSeq: async (callId) => {
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket, Key: recordKey(callId) }));
        return Number(head.Metadata?.seq);
      } catch {
        return undefined;
      }
    },
    close: async () => client.destroy(),
  };
}

/**
 * Local folder: the backend's files under their own root — the record
 * (`.calldata-index/<id>.json`), the metadata document in the call's folder and the open-call
 * marker, each written atomically and durably as the backend writes them (temp file, fsync,
 * rename). The guard reads the stored record's sequence first. No lock file: this assumes one
 * consumer process (the backend also serialises several processes), so it is the cheaper bar.
 */
export function rawLocal(root: string): RawDriver {
  const recordFile = (callId: string) => join(root, '.calldata-index', `${callId}.json`);
  const atomicWrite = async (file: string, text: string) => {
    const temp = join(dirname(file), `.raw-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    await writeFile(temp, text, { encoding: 'utf8', flush: true });
    await rename(temp, file);
  };
  const stored = async (callId: string): Promise<{ seq: number; version: number } | undefined> => {
    try {
      const record = JSON.parse(await readFile(recordFile(callId), 'utf8')) as { writer_seq: number; version: number };
      return { seq: record.writer_seq, version: record.version };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };
  return {
    form: 'read record → compare seq → metadata document ∥ open marker, then record; each temp file + fsync + rename',
    prepare: async () => {
      await mkdir(join(root, '.calldata-index'), { recursive: true });
      await mkdir(join(root, '.calldata-open'), { recursive: true });
    },
    write: async (row) => {
      const current = await stored(row.callId);
      if (current && current.seq >= row.seq) return;
      const marker = join(root, '.calldata-open', row.callId);
      await Promise.all([
        (async () => {
          if (!row.metadata) return;
          const file = join(root, metadataKey(row.folder));
          if (!current) await mkdir(dirname(file), { recursive: true });
          await atomicWrite(file, JSON.stringify(row.metadata, null, 2));
        })(),
        row.final ? rm(marker, { force: true }) : atomicWrite(marker, markerBody(row)),
      ]);
      await atomicWrite(recordFile(row.callId), recordBody(row, (current?.version ?? 0) + 1));
    },
    storedSeq: async (callId) => (await stored(callId))?.seq,
    close: async () => undefined,
  };
}
