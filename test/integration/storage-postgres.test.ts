/**
 * PostgreSQL backend against the real server. Everything runs in a schema of its own
 * (selected through the URL's `options=-c search_path=...`), so the tables are really created
 * on first use and nothing clashes with other test files.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { PostgresBackend } from '../../functions/storage/postgres.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const TZ = 'Asia/Kolkata';
const SCHEMA = `calldata_it_${randomUUID().replaceAll('-', '')}`;
const schemas = [SCHEMA];

function withSchema(url: string, schema: string): string {
  const withOptions = new URL(url);
  withOptions.searchParams.set('options', `-c search_path=${schema}`);
  return withOptions.toString();
}

function viaPort(location: string, port: number): string {
  const url = new URL(location);
  url.port = String(port);
  return url.toString();
}

async function admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: await requireServer('postgres') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function createSchema(schema: string): Promise<void> {
  // The name is generated above from a UUID, never from input.
  await admin((client) => client.query(`CREATE SCHEMA ${schema}`));
}

beforeAll(async () => {
  await createSchema(SCHEMA);
});

afterAll(async () => {
  await admin(async (client) => {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });
});

describeBackendConformance({
  name: 'postgres',
  location: async () => withSchema(await requireServer('postgres'), SCHEMA),
  create: (location) => new PostgresBackend(location),
  serverPort: SERVERS.postgres.port,
  viaPort,
});

describe('postgres backend specifics', () => {
  let backend: PostgresBackend;

  beforeAll(async () => {
    backend = new PostgresBackend(withSchema(await requireServer('postgres'), SCHEMA));
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('creates both tables on first use with call_id as primary key and a jsonb document', async () => {
    // Prepare: an empty schema and a backend pointed at it
    const schema = `calldata_it_${randomUUID().replaceAll('-', '')}`;
    schemas.push(schema);
    await createSchema(schema);
    const fresh = new PostgresBackend(withSchema(await requireServer('postgres'), schema));
    try {
      // Act
      const outcomes = await fresh.write([metadataRecord(buildSnapshot({}), TZ)]);
      // Assess
      expect(outcomes[0]?.applied).toBe(true);
      const columns = await admin((client) =>
        client.query<{ table_name: string; column_name: string; data_type: string }>(
          `SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = $1 AND column_name IN ('call_id', 'document') ORDER BY table_name, column_name`,
          [schema],
        ),
      );
      expect(columns.rows).toEqual([
        { table_name: 'call_metadata', column_name: 'call_id', data_type: 'text' },
        { table_name: 'call_metadata', column_name: 'document', data_type: 'jsonb' },
        { table_name: 'call_transcription', column_name: 'call_id', data_type: 'text' },
        { table_name: 'call_transcription', column_name: 'document', data_type: 'jsonb' },
      ]);
      const keys = await admin((client) =>
        client.query<{ table_name: string; column_name: string }>(
          `SELECT k.table_name, k.column_name FROM information_schema.table_constraints c
           JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema
           WHERE c.table_schema = $1 AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.table_name`,
          [schema],
        ),
      );
      expect(keys.rows).toEqual([
        { table_name: 'call_metadata', column_name: 'call_id' },
        { table_name: 'call_transcription', column_name: 'call_id' },
      ]);
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
    const stored = await admin((client) =>
      client.query<{ room_name: string; doc_room: string }>(
        `SELECT room_name, document->>'room_name' AS doc_room FROM ${SCHEMA}.call_metadata WHERE call_id = $1`,
        [snapshot.callId],
      ),
    );
    expect(stored.rows).toEqual([{ room_name: roomName, doc_room: roomName }]);
    const tables = await admin((client) =>
      client.query<{ present: number }>(`SELECT count(to_regclass(name))::int AS present FROM unnest($1::text[]) AS name`, [
        [`${SCHEMA}.call_metadata`, `${SCHEMA}.call_transcription`],
      ]),
    );
    expect(tables.rows[0]?.present).toBe(2);
  });

  it('keeps a document with NUL and unpaired surrogates queryable as jsonb and reads it back exactly', async () => {
    // Prepare: characters jsonb rejects, and the escape mark itself, which must survive too
    const roomName = 'nul\u0000byte \uE000 mark';
    const snapshot = buildSnapshot({
      roomName,
      conversation: [{ role: 'user', content: 'cut emoji \ud83d and \u0000', interrupted: false, timestampMs: Date.UTC(2026, 0, 1) }],
    });
    const record = transcriptionRecord(snapshot, TZ);
    // Act
    const [outcome] = await backend.write([record]);
    // Assess: stored as jsonb (the status is plain), read back verbatim
    expect(outcome?.applied).toBe(true);
    const stored = await admin((client) =>
      client.query<{ kind: string; escaped: boolean }>(
        `SELECT jsonb_typeof(document) AS kind, document_escaped AS escaped FROM ${SCHEMA}.call_transcription WHERE call_id = $1`,
        [snapshot.callId],
      ),
    );
    expect(stored.rows).toEqual([{ kind: 'object', escaped: true }]);
    expect((await backend.read('transcription', snapshot.callId))?.document).toEqual(record.document);
  });

  it('writes each kind of a batch with one INSERT statement', async () => {
    // Prepare: five calls, both kinds, and a spy on every statement the driver sends
    const snapshots = Array.from({ length: 5 }, () => buildSnapshot({ turns: 1 }));
    const records = snapshots.flatMap((s) => [metadataRecord(s, TZ), transcriptionRecord(s, TZ)]);
    await backend.read('metadata', 'warm-up'); // tables and connection ready, so only the write is counted
    const spy = vi.spyOn(Client.prototype, 'query');
    try {
      // Act
      const outcomes = await backend.write(records);
      // Assess
      expect(outcomes.every((o) => o.applied)).toBe(true);
      const inserts = spy.mock.calls.map(([query]) => (typeof query === 'string' ? query : (query as { text?: string }).text ?? '')).filter((text) => /^\s*INSERT/i.test(text));
      expect(inserts).toHaveLength(2);
    } finally {
      spy.mockRestore();
    }
  });

  it('reports exactly one of two concurrent writers of the same snapshot as applied', async () => {
    // Prepare: two independent backends (two Lambda containers) and ten fresh calls
    const other = new PostgresBackend(withSchema(await requireServer('postgres'), SCHEMA));
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
