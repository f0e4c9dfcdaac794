/**
 * MySQL backend against the real server (MariaDB 10.11 on the test bench). Everything runs in a
 * database of its own, so the tables are really created on first use and nothing clashes with
 * other test files.
 */
import { randomUUID } from 'node:crypto';
import { Connection, createConnection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { MysqlBackend } from '../../functions/storage/mysql.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const TZ = 'Asia/Kolkata';
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

async function createDatabase(database: string): Promise<void> {
  // The name is generated above from a UUID, never from input.
  await admin((connection) => connection.query(`CREATE DATABASE ${database}`));
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
  create: (location) => new MysqlBackend(location),
  serverPort: SERVERS.mysql.port,
  viaPort,
});

describe('mysql backend specifics', () => {
  let backend: MysqlBackend;

  beforeAll(async () => {
    backend = new MysqlBackend(inDatabase(await requireServer('mysql'), DATABASE));
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('creates both tables on first use with call_id as primary key and a JSON document', async () => {
    // Prepare: an empty database and a backend pointed at it
    const database = `calldata_it_${randomUUID().replaceAll('-', '')}`;
    databases.push(database);
    await createDatabase(database);
    const fresh = new MysqlBackend(inDatabase(await requireServer('mysql'), database));
    try {
      // Act
      const outcomes = await fresh.write([metadataRecord(buildSnapshot({}), TZ)]);
      // Assess: MariaDB spells JSON as LONGTEXT guarded by JSON_VALID; MySQL as a json column
      expect(outcomes[0]?.applied).toBe(true);
      const [keys] = await admin((connection) =>
        connection.execute<RowDataPacket[]>(
          `SELECT table_name AS name, column_name AS col FROM information_schema.key_column_usage
           WHERE table_schema = ? AND constraint_name = 'PRIMARY' ORDER BY table_name`,
          [database],
        ),
      );
      expect(keys.map((k) => ({ ...k }))).toEqual([
        { name: 'call_metadata', col: 'call_id' },
        { name: 'call_transcription', col: 'call_id' },
      ]);
      for (const table of ['call_metadata', 'call_transcription']) {
        const [[created]] = await admin((connection) => connection.query<RowDataPacket[]>(`SHOW CREATE TABLE ${database}.${table}`));
        const ddl = String(created?.['Create Table']);
        expect(ddl).toMatch(/`document` (json|longtext)/i);
        if (/`document` longtext/i.test(ddl)) expect(ddl).toMatch(/json_valid\(`document`\)/i);
      }
    } finally {
      await fresh.close();
    }
  });

  it('leaves the tables intact and stores an SQL-injection room name verbatim', async () => {
    // Prepare
    const roomName = "room'; DROP TABLE call_metadata; --";
    const snapshot = buildSnapshot({ roomName });
    // Act
    await backend.write([metadataRecord(snapshot, TZ), transcriptionRecord(snapshot, TZ)]);
    // Assess: the row holds the name as data, in the column and in the document
    const [rows] = await admin((connection) =>
      connection.execute<RowDataPacket[]>(
        `SELECT room_name, JSON_UNQUOTE(JSON_EXTRACT(document, '$.room_name')) AS doc_room FROM ${DATABASE}.call_metadata WHERE call_id = ?`,
        [snapshot.callId],
      ),
    );
    expect(rows.map((r) => ({ ...r }))).toEqual([{ room_name: roomName, doc_room: roomName }]);
    const [tables] = await admin((connection) =>
      connection.execute<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [DATABASE]),
    );
    expect(Number(tables[0]?.n)).toBe(2);
  });

  it('keeps call ids that differ only in case as two calls', async () => {
    // Prepare
    const base = `Case-${randomUUID()}`;
    const upper = buildSnapshot({ callId: base.toUpperCase(), roomName: 'upper' });
    const lower = buildSnapshot({ callId: base.toLowerCase(), roomName: 'lower' });
    // Act
    const outcomes = await backend.write([metadataRecord(upper, TZ), metadataRecord(lower, TZ)]);
    // Assess
    expect(outcomes.map((o) => o.applied)).toEqual([true, true]);
    expect((await backend.read('metadata', upper.callId))?.document).toMatchObject({ room_name: 'upper' });
    expect((await backend.read('metadata', lower.callId))?.document).toMatchObject({ room_name: 'lower' });
  });

  it('reads back a document with unpaired surrogates and NUL exactly', async () => {
    // Prepare: characters JSON text cannot carry, and the escape mark itself
    const snapshot = buildSnapshot({
      roomName: 'nul\u0000byte \uE000 mark',
      conversation: [{ role: 'user', content: 'cut emoji \ud83d and \udc4d alone', interrupted: false, timestampMs: Date.UTC(2026, 0, 1) }],
    });
    const record = transcriptionRecord(snapshot, TZ);
    // Act
    const [outcome] = await backend.write([record]);
    // Assess
    expect(outcome?.applied).toBe(true);
    expect((await backend.read('transcription', snapshot.callId))?.document).toEqual(record.document);
  });

  it('accepts a mysql+pymysql:// location and keeps its password out of outcomes', async () => {
    // Prepare
    const location = inDatabase(await requireServer('mysql'), DATABASE).replace(/^mysql:/, 'mysql+pymysql:');
    const pymysql = new MysqlBackend(location);
    const snapshot = buildSnapshot({});
    try {
      // Act
      const [outcome] = await pymysql.write([metadataRecord(snapshot, TZ)]);
      // Assess
      expect(outcome?.applied).toBe(true);
      expect(outcome?.location).toMatch(/^mysql\+pymysql:\/\//);
      expect(outcome?.location).not.toContain(':calldata@');
      expect((await backend.read('metadata', snapshot.callId))?.seq).toBe(snapshot.seq);
    } finally {
      await pymysql.close();
    }
  });

  it('writes each kind of a batch with one INSERT statement', async () => {
    // Prepare: five calls, both kinds, and a spy on every statement the pool's connections run
    const snapshots = Array.from({ length: 5 }, () => buildSnapshot({ turns: 1 }));
    const records = snapshots.flatMap((s) => [metadataRecord(s, TZ), transcriptionRecord(s, TZ)]);
    await backend.read('metadata', 'warm-up'); // tables and connection ready, so only the write is counted
    const spy = vi.spyOn(Connection.prototype, 'execute');
    try {
      // Act
      const outcomes = await backend.write(records);
      // Assess
      expect(outcomes.every((o) => o.applied)).toBe(true);
      const inserts = spy.mock.calls.map(([query]) => (typeof query === 'string' ? query : String((query as { sql?: string }).sql))).filter((sql) => /^\s*INSERT/i.test(sql));
      expect(inserts).toHaveLength(2);
    } finally {
      spy.mockRestore();
    }
  });

  it('reports exactly one of two concurrent writers of the same snapshot as applied', async () => {
    // Prepare: two independent backends (two Lambda containers) and ten fresh calls
    const other = new MysqlBackend(inDatabase(await requireServer('mysql'), DATABASE));
    try {
      const snapshots = Array.from({ length: 10 }, () => buildSnapshot({}));
      // Act: both deliver every snapshot at the same time
      const results = await Promise.all(
        snapshots.map((s) => Promise.all([backend.write([metadataRecord(s, TZ)]), other.write([metadataRecord(s, TZ)])])),
      );
      // Assess
      for (const [first, second] of results) {
        expect([first[0]?.applied, second[0]?.applied].filter(Boolean)).toHaveLength(1);
      }
    } finally {
      await other.close();
    }
  });
});
