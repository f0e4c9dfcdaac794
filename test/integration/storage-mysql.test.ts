/**
 * MySQL backend against the real server (MariaDB 10.11 on the test bench). Everything runs in a
 * database of its own, so the table is really created on first use and nothing clashes with
 * other test files.
 */
import { randomUUID } from 'node:crypto';
import { Connection as CoreConnection } from 'mysql2';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import { stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { InvalidQueryError, StorageError } from '../../functions/storage/errors.ts';
import { MysqlBackend } from '../../functions/storage/mysql.ts';
import { BOTH, describeBackendConformance, MODEL, workerMessage } from '../support/backend-conformance.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { longConversation } from '../support/snapshots.ts';

const DATABASE = `calldata_it_${randomUUID().replaceAll('-', '')}`;
const databases = [DATABASE];

function inDatabase(url: string, database: string): string {
  const moved = new URL(url);
  moved.pathname = `/${database}`;
  return moved.toString();
}

function viaPort(location: string, port: number): string {
  const url = new URL(location);
  url.port = String(port);
  return url.toString();
}

async function admin<T>(work: (connection: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> {
  const connection = await createConnection({ uri: await requireServer('mysql'), charset: 'utf8mb4', jsonStrings: true });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

/** Plain objects of a query's rows (the driver's rows carry a prototype toEqual would compare). */
async function rowsOf(sql: string, values: string[] = []): Promise<Record<string, unknown>[]> {
  const [rows] = await admin((connection) => connection.execute<RowDataPacket[]>(sql, values));
  return rows.map((row) => ({ ...row }));
}

async function createDatabase(database: string): Promise<void> {
  // The name is generated above from a UUID, never from input.
  await admin((connection) => connection.query(`CREATE DATABASE ${database}`));
}

const newCallId = () => `RM_${randomUUID().slice(0, 12)}`;

/** A new, empty database (dropped after the file) and its location. */
async function freshDatabase(): Promise<string> {
  const database = `calldata_it_${randomUUID().replaceAll('-', '')}`;
  databases.push(database);
  await createDatabase(database);
  return inDatabase(await requireServer('mysql'), database);
}

beforeAll(async () => {
  await createDatabase(DATABASE);
});

afterAll(async () => {
  await admin(async (connection) => {
    for (const database of databases) await connection.query(`DROP DATABASE IF EXISTS ${database}`);
  });
});

describeBackendConformance({
  name: 'mysql',
  location: async () => inDatabase(await requireServer('mysql'), DATABASE),
  create: (location, options) => new MysqlBackend(location, options),
  serverPort: SERVERS.mysql.port,
  viaPort,
});

describeQueryConformance({
  name: 'mysql',
  create: async (options) => new MysqlBackend(await freshDatabase(), options),
});

describe('mysql backend specifics', () => {
  let backend: MysqlBackend;

  beforeAll(async () => {
    backend = new MysqlBackend(inDatabase(await requireServer('mysql'), DATABASE), BOTH);
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('creates call_records on first use with call_id as primary key, JSON documents and the sweeper index', async () => {
    // Prepare: an empty database and a backend pointed at it
    const database = `calldata_it_${randomUUID().replaceAll('-', '')}`;
    databases.push(database);
    await createDatabase(database);
    const fresh = new MysqlBackend(inDatabase(await requireServer('mysql'), database), BOTH);
    try {
      // Act
      const [outcome] = await fresh.merge(deltasOf([workerMessage(newCallId(), 1)]));
      // Assess: MariaDB spells JSON as LONGTEXT guarded by JSON_VALID; MySQL as a json column
      expect(outcome?.changed).toBe(true);
      expect(
        await rowsOf(
          `SELECT column_name AS col FROM information_schema.key_column_usage
           WHERE table_schema = ? AND table_name = 'call_records' AND constraint_name = 'PRIMARY'`,
          [database],
        ),
      ).toEqual([{ col: 'call_id' }]);
      const [created] = await admin((connection) => connection.query<RowDataPacket[]>(`SHOW CREATE TABLE ${database}.call_records`));
      const ddl = String(created[0]?.['Create Table']);
      expect(ddl).toMatch(/`call_id` varchar\(128\) CHARACTER SET ascii COLLATE ascii_bin NOT NULL/i);
      for (const column of ['state', 'metadata', 'transcription']) {
        expect(ddl).toMatch(new RegExp(`\`${column}\` (json|longtext)`, 'i'));
        if (new RegExp(`\`${column}\` longtext`, 'i').test(ddl)) expect(ddl).toMatch(new RegExp(`json_valid\\(\`${column}\`\\)`, 'i'));
      }
      expect(ddl).toMatch(/KEY `call_records_open_idx` \(`final`,`last_fact_ms`\)/);
      expect(ddl).toMatch(/KEY `call_records_room_name_idx` \(`room_name`\(191\),`start_time`\)/);
    } finally {
      await fresh.close();
    }
  });

  it('leaves the table intact and stores an SQL-injection room name verbatim', async () => {
    // Prepare
    const roomName = "room'; DROP TABLE call_records; --";
    const callId = newCallId();
    // Act
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName })]));
    // Assess: the row holds the name as data, in the column and in the document
    expect(
      await rowsOf(`SELECT room_name, JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.room_name')) AS doc_room FROM ${DATABASE}.call_records WHERE call_id = ?`, [callId]),
    ).toEqual([{ room_name: roomName, doc_room: roomName }]);
    expect(await rowsOf('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [DATABASE])).toEqual([{ n: 1 }]);
  });

  it('stores a record with unpaired surrogates escaped (valid JSON, escaped set) and reads it back exactly', async () => {
    // Prepare: characters JSON text cannot carry, NUL (which it can), and the escape mark itself
    const callId = newCallId();
    const message = workerMessage(callId, 1, {
      roomName: 'cut \udc4d room \uE000 mark',
      items: [{ id: 'x', role: 'user', content: 'cut emoji \ud83d and \u0000 NUL', interrupted: false, timestampMs: Date.UTC(2026, 0, 1) }],
    });
    // Act
    await backend.merge(deltasOf([message]));
    // Assess
    expect(
      await rowsOf(`SELECT \`escaped\` AS is_escaped, JSON_VALID(state) AS state_ok, JSON_VALID(transcription) AS doc_ok FROM ${DATABASE}.call_records WHERE call_id = ?`, [callId]),
    ).toEqual([{ is_escaped: 1, state_ok: 1, doc_ok: 1 }]);
    const read = await backend.read(callId);
    expect(read?.state.roomName).toBe('cut \udc4d room \uE000 mark');
    expect(read?.documents.metadata?.room_name).toBe('cut \udc4d room \uE000 mark');
    expect(read?.documents.transcription?.conversation[0]?.content).toBe('cut emoji \ud83d and \u0000 NUL');
    expect((await backend.openCalls(Number.MAX_SAFE_INTEGER, 100_000)).find((open) => open.callId === callId)?.roomName).toBe('cut \udc4d room \uE000 mark');
  });

  it('keeps call ids that differ only in case as two calls', async () => {
    // Prepare
    const base = `RM_Case${randomUUID().slice(0, 8)}`;
    const upper = workerMessage(base.toUpperCase(), 1, { roomName: 'upper' });
    const lower = workerMessage(base.toLowerCase(), 1, { roomName: 'lower' });
    // Act
    const outcomes = await backend.merge(deltasOf([upper, lower]));
    // Assess
    expect(outcomes.map((o) => o.changed)).toEqual([true, true]);
    expect((await backend.read(upper.callId))?.state.roomName).toBe('upper');
    expect((await backend.read(lower.callId))?.state.roomName).toBe('lower');
  });

  it('accepts a mysql+pymysql:// location and keeps its password out of outcomes', async () => {
    // Prepare
    const location = inDatabase(await requireServer('mysql'), DATABASE).replace(/^mysql:/, 'mysql+pymysql:');
    const pymysql = new MysqlBackend(location, BOTH);
    const message = workerMessage(newCallId(), 2);
    try {
      // Act
      const [outcome] = await pymysql.merge(deltasOf([message]));
      // Assess
      expect(outcome?.changed).toBe(true);
      expect(outcome?.location).toMatch(/^mysql\+pymysql:\/\//);
      expect(outcome?.location).not.toContain(':calldata@');
      expect((await backend.read(message.callId))?.state.writers).toEqual({ 'job:AJ_worker': 2 });
    } finally {
      await pymysql.close();
    }
  });

  it('stores only the documents its location lists', async () => {
    // Prepare
    const metadataOnly = new MysqlBackend(inDatabase(await requireServer('mysql'), DATABASE), { documents: ['metadata'], model: MODEL });
    const callId = newCallId();
    try {
      // Act
      await metadataOnly.merge(deltasOf([workerMessage(callId, 2)]));
      // Assess
      expect(await rowsOf(`SELECT metadata IS NOT NULL AS has_metadata, transcription IS NULL AS no_transcription FROM ${DATABASE}.call_records WHERE call_id = ?`, [callId])).toEqual([
        { has_metadata: 1, no_transcription: 1 },
      ]);
    } finally {
      await metadataOnly.close();
    }
  });

  it('one writer per call: a batch of updates of stored calls is one statement, one round trip', async () => {
    // Prepare: ten stored calls, then their next snapshots; a spy on every statement any connection runs
    const ids = Array.from({ length: 10 }, newCallId);
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
    const execute = vi.spyOn(CoreConnection.prototype, 'execute');
    const query = vi.spyOn(CoreConnection.prototype, 'query');
    try {
      // Act
      const outcomes = await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
      // Assess
      expect(outcomes.every((o) => o.changed)).toBe(true);
      expect(execute.mock.calls.length + query.mock.calls.length).toBe(1);
    } finally {
      execute.mockRestore();
      query.mockRestore();
    }
    for (const id of ids) expect((await backend.read(id))?.state.writers).toEqual({ 'job:AJ_worker': 2 });
  });

  it('a batch mixing new calls, newer snapshots and stale redeliveries reports exactly which changed', async () => {
    // Prepare: calls stored at seq 3; the batch brings seq 2 (stale) for some, seq 4 for others, and new calls
    const stale = Array.from({ length: 3 }, newCallId);
    const newer = Array.from({ length: 3 }, newCallId);
    const fresh = Array.from({ length: 3 }, newCallId);
    await backend.merge(deltasOf([...stale, ...newer].map((id) => workerMessage(id, 3))));
    const batch = [...stale.map((id) => workerMessage(id, 2)), ...newer.map((id) => workerMessage(id, 4)), ...fresh.map((id) => workerMessage(id, 1))];
    // Act
    const outcomes = await backend.merge(deltasOf(batch));
    // Assess
    expect(outcomes.map((o) => [o.callId, o.changed])).toEqual([...stale.map((id) => [id, false]), ...newer.map((id) => [id, true]), ...fresh.map((id) => [id, true])]);
    for (const id of stale) expect((await backend.read(id))?.state.writers).toEqual({ 'job:AJ_worker': 3 });
    for (const id of newer) expect((await backend.read(id))?.state.writers).toEqual({ 'job:AJ_worker': 4 });
  });

  it('a batch larger than one statement is written in one transaction and reported exactly', async () => {
    // Prepare: 1 200 calls (more rows than one statement takes), every other one already stored at a newer seq
    const ids = Array.from({ length: 1_200 }, (_, i) => `RM_bulk${i.toString().padStart(4, '0')}_${randomUUID().slice(0, 8)}`);
    const storedAhead = ids.filter((_, i) => i % 2 === 0);
    await backend.merge(deltasOf(storedAhead.map((id) => workerMessage(id, 3))));
    // Act
    const outcomes = await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
    // Assess
    expect(outcomes.map((o) => o.changed)).toEqual(ids.map((_, i) => i % 2 !== 0));
    expect(await rowsOf(`SELECT COUNT(*) AS n FROM ${DATABASE}.call_records WHERE call_id LIKE 'RM\\_bulk%' AND writer_seq = 2`)).toEqual([{ n: 600 }]);
  });

  it('of two backends delivering the same snapshots at once, exactly one reports each change', async () => {
    // Prepare: two independent backends (two Lambda containers) and ten fresh calls
    const other = new MysqlBackend(inDatabase(await requireServer('mysql'), DATABASE), BOTH);
    const messages = Array.from({ length: 10 }, () => workerMessage(newCallId(), 2));
    try {
      // Act: both deliver every snapshot at the same time
      const results = await Promise.all(messages.map((m) => Promise.all([backend.merge(deltasOf([m])), other.merge(deltasOf([m]))])));
      // Assess
      for (const [first, second] of results) expect([first[0]?.changed, second[0]?.changed].filter(Boolean)).toHaveLength(1);
      for (const m of messages) expect((await backend.read(m.callId))?.state).toEqual(stateOf(m));
    } finally {
      await other.close();
    }
  });

  it('refuses a record larger than max_allowed_packet with a non-retryable error and writes nothing', async () => {
    // Prepare: a transcript whose record (state and documents together) cannot fit one packet
    const [limits] = await rowsOf('SELECT @@max_allowed_packet AS bytes');
    const callId = newCallId();
    const items = longConversation(60 * 60 * 1000, Math.ceil(Number(limits?.bytes) / 2) + 1024 * 1024).map((item, i) => ({ ...item, id: `big-${i}` }));
    // Act
    const error = await backend.merge(deltasOf([workerMessage(callId, 2, { items })])).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Assess
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as StorageError).message).toMatch(/max_allowed_packet/);
    expect(await backend.read(callId)).toBeUndefined();
  });
});

describe('mysql call listing', () => {
  /** A room name as long as the contract allows: longer than the room index's prefix. */
  const LONG_ROOM = 'x'.repeat(4_096);
  let location: string;
  let backend: MysqlBackend;

  /** Call i of 3 000: one in ten in LONG_ROOM, the rest in 300 rooms of 9 or 10 calls; a start every 37 s. */
  function listedCall(i: number): FactMessage {
    const message = workerMessage(`RM_plan${String(i).padStart(5, '0')}`, 1, { roomName: i % 10 === 0 ? LONG_ROOM : `room-${i % 300}` });
    return { ...message, facts: { ...message.facts, startedAtMs: Date.UTC(2026, 0, 1) + i * 37_000 } };
  }

  /** The statements (SQL and parameters) any connection runs while `work` runs. */
  async function statements(work: () => Promise<unknown>): Promise<{ sql: string; values: unknown[] }[]> {
    const execute = vi.spyOn(CoreConnection.prototype, 'execute');
    const query = vi.spyOn(CoreConnection.prototype, 'query');
    try {
      await work();
      return [...execute.mock.calls, ...query.mock.calls].map((args: unknown[]) => {
        const [first, second] = args as [string | { sql: string; values?: unknown[] }, unknown];
        return typeof first === 'string' ? { sql: first, values: Array.isArray(second) ? second : [] } : { sql: first.sql, values: first.values ?? (Array.isArray(second) ? second : []) };
      });
    } finally {
      execute.mockRestore();
      query.mockRestore();
    }
  }

  beforeAll(async () => {
    location = await freshDatabase();
    backend = new MysqlBackend(location, BOTH);
    const messages = Array.from({ length: 3_000 }, (_, i) => listedCall(i));
    for (let i = 0; i < messages.length; i += 500) await backend.merge(deltasOf(messages.slice(i, i + 500)));
    await admin((connection) => connection.query(`ANALYZE TABLE ${new URL(location).pathname.slice(1)}.call_records`));
  }, 120_000);
  afterAll(async () => {
    await backend?.close();
  });

  it('a page is one statement, and EXPLAIN shows the newest page and a room page read through an index', async () => {
    // Prepare: the pool already connected; a cursor after the first page of a room
    const first = await backend.queryCalls({ limit: 5, room: 'room-7' });
    const queries = [
      { limit: 100 },
      { limit: 100, cursor: (await backend.queryCalls({ limit: 100 })).cursor },
      { limit: 100, room: LONG_ROOM },
      { limit: 5, room: 'room-7', cursor: first.cursor },
      { limit: 50, number: '+14155550100', sinceMs: Date.UTC(2026, 0, 1, 12) },
    ];
    for (const query of queries) {
      // Act
      let page: Awaited<ReturnType<MysqlBackend['queryCalls']>> | undefined;
      const sent = await statements(async () => {
        page = await backend.queryCalls(query);
      });
      // Assess
      expect(sent).toHaveLength(1);
      expect(page?.calls).toHaveLength(query.limit);
      if (query.number !== undefined) continue; // EXPLAIN of a UNION shows its branches unoptimised
      const [statement] = sent as [{ sql: string; values: unknown[] }];
      const [plan] = await admin(async (connection) => {
        await connection.query(`USE ${new URL(location).pathname.slice(1)}`);
        return connection.execute<RowDataPacket[]>(`EXPLAIN ${statement.sql}`, statement.values as Parameters<typeof connection.execute>[1]);
      });
      const shown = JSON.stringify(plan);
      expect(plan, shown).toHaveLength(1);
      expect(plan[0]?.key, shown).toMatch(/^call_records_/);
      expect(plan[0]?.type, shown).not.toBe('ALL');
      expect(String(plan[0]?.Extra), shown).not.toMatch(/filesort/);
    }
  });

  it('matches a room name exactly, 4 096 characters and trailing spaces included, across pages', async () => {
    // Act
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await backend.queryCalls({ limit: 70, room: LONG_ROOM, cursor });
      ids.push(...page.calls.map((call) => call.callId));
      for (const call of page.calls) expect(call.roomName).toBe(LONG_ROOM);
      cursor = page.cursor;
    } while (cursor);
    // Assess: utf8mb4_bin alone would call 'x…x ' equal to 'x…x'
    expect(ids).toEqual(Array.from({ length: 300 }, (_, k) => `RM_plan${String(2_990 - 10 * k).padStart(5, '0')}`));
    expect((await backend.queryCalls({ limit: 10, room: `${LONG_ROOM} ` })).calls).toEqual([]);
    expect((await backend.queryCalls({ limit: 10, room: 'x'.repeat(4_095) })).calls).toEqual([]);
    expect((await backend.queryCalls({ limit: 10, number: '+14155550100 ', sinceMs: Date.UTC(2026, 0, 1, 12) })).calls).toEqual([]);
  });

  it('finds a call by a room name and number that had to be stored escaped', async () => {
    // Prepare: an unpaired surrogate cannot be stored as UTF-8 text; the row is escaped
    const callId = newCallId();
    const roomName = 'cut \udc4d room \uE000 mark';
    const message = workerMessage(callId, 1, { roomName });
    message.facts.userNumber = { value: '+1\ud83d555', atMs: message.facts.startedAtMs ?? 0 };
    await backend.merge(deltasOf([message]));
    // Act
    const byRoom = await backend.queryCalls({ limit: 10, room: roomName });
    const byNumber = await backend.queryCalls({ limit: 10, number: '+1\ud83d555' });
    // Assess
    expect(byRoom.calls.map((call) => [call.callId, call.roomName, call.userNumber])).toEqual([[callId, roomName, '+1\ud83d555']]);
    expect(byNumber.calls.map((call) => call.callId)).toEqual([callId]);
  });

  it('refuses a limit outside 1-1000 and a cursor it did not make, without a round trip', async () => {
    for (const limit of [0, -1, 1_001, 2.5, Number.NaN]) {
      const sent = await statements(async () => {
        await expect(backend.queryCalls({ limit })).rejects.toBeInstanceOf(InvalidQueryError);
      });
      expect(sent).toEqual([]);
    }
    await expect(backend.queryCalls({ limit: 10, cursor: 'not a cursor' })).rejects.toBeInstanceOf(InvalidQueryError);
  });

  it('adds the listing columns and indexes to a table made by an earlier version, and lists its calls once written again', async () => {
    // Prepare: the table as the previous version created it, with one call in it
    const old = await freshDatabase();
    const database = new URL(old).pathname.slice(1);
    await admin(async (connection) => {
      await connection.query(`CREATE TABLE ${database}.call_records (
        call_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, version BIGINT NOT NULL,
        sole_writer VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NULL, writer_seq BIGINT NOT NULL, folder TEXT NOT NULL,
        room_name TEXT NULL, start_time DATETIME(3) NULL, last_fact_ms BIGINT NOT NULL, final BOOLEAN NOT NULL, state JSON NOT NULL,
        metadata JSON NULL, transcription JSON NULL, \`escaped\` BOOLEAN NOT NULL DEFAULT FALSE,
        write_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, updated_at DATETIME(3) NOT NULL,
        PRIMARY KEY (call_id), KEY call_records_start_time_idx (start_time), KEY call_records_room_name_idx (room_name(191), start_time),
        KEY call_records_open_idx (final, last_fact_ms)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
      await connection.query(`INSERT INTO ${database}.call_records (call_id, version, writer_seq, folder, last_fact_ms, final, state, write_id, updated_at)
        VALUES ('RM_before', 1, 0, '', 0, FALSE, '{}', 'x', UTC_TIMESTAMP(3))`);
    });
    const upgraded = new MysqlBackend(old, BOTH);
    try {
      // Act
      const callId = newCallId();
      await upgraded.merge(deltasOf([workerMessage(callId, 1)]));
      // Assess: the old row is still there (unlisted), the new one listed; every listing index exists
      expect((await upgraded.queryCalls({ limit: 10 })).calls.map((call) => call.callId)).toEqual([callId]);
      expect(await rowsOf(`SELECT call_id, listed FROM ${database}.call_records ORDER BY listed`)).toEqual([
        { call_id: 'RM_before', listed: 0 },
        { call_id: callId, listed: 1 },
      ]);
      const indexes = await rowsOf(`SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'call_records'`, [database]);
      expect(indexes.map((row) => String(row.name)).sort()).toEqual([
        'PRIMARY',
        'call_records_agent_number_idx',
        'call_records_listed_idx',
        'call_records_open_idx',
        'call_records_room_listed_idx',
        'call_records_room_name_idx',
        'call_records_start_time_idx',
        'call_records_user_number_idx',
      ]);
      // A second backend finds the schema complete: one cheap check, no DDL
      const again = new MysqlBackend(old, BOTH);
      try {
        const sent = await statements(() => again.queryCalls({ limit: 1 }));
        expect(sent.map((s) => s.sql).filter((sql) => /ALTER|CREATE/i.test(sql))).toEqual([]);
      } finally {
        await again.close();
      }
    } finally {
      await upgraded.close();
    }
  });
});
