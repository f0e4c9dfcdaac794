/**
 * PostgreSQL backend against the real server. Everything runs in a schema of its own
 * (selected through the URL's `options=-c search_path=...`), so the table is really created
 * on first use and nothing clashes with other test files.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deltasOf } from '../../functions/domain/persist.ts';
import { PostgresBackend } from '../../functions/storage/postgres.ts';
import { BOTH, describeBackendConformance, workerMessage } from '../support/backend-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';

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
  create: (location, options) => new PostgresBackend(location, options),
  serverPort: SERVERS.postgres.port,
  viaPort,
});

describe('postgres backend specifics', () => {
  let backend: PostgresBackend;

  beforeAll(async () => {
    backend = new PostgresBackend(withSchema(await requireServer('postgres'), SCHEMA), BOTH);
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('creates call_records on first use with call_id as primary key and jsonb documents', async () => {
    // Prepare: an empty schema and a backend pointed at it
    const schema = `calldata_it_${randomUUID().replaceAll('-', '')}`;
    schemas.push(schema);
    await createSchema(schema);
    const fresh = new PostgresBackend(withSchema(await requireServer('postgres'), schema), BOTH);
    try {
      // Act
      const [outcome] = await fresh.merge(deltasOf([workerMessage(`RM_${randomUUID().slice(0, 8)}`, 1)]));
      // Assess
      expect(outcome?.changed).toBe(true);
      const columns = await admin((client) =>
        client.query<{ column_name: string; data_type: string }>(
          `SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = $1 AND table_name = 'call_records' AND column_name IN ('call_id', 'state', 'metadata', 'transcription') ORDER BY column_name`,
          [schema],
        ),
      );
      expect(columns.rows).toEqual([
        { column_name: 'call_id', data_type: 'text' },
        { column_name: 'metadata', data_type: 'jsonb' },
        { column_name: 'state', data_type: 'jsonb' },
        { column_name: 'transcription', data_type: 'jsonb' },
      ]);
    } finally {
      await fresh.close();
    }
  });

  it('leaves the table intact and stores an SQL-injection room name verbatim', async () => {
    // Prepare
    const roomName = "room'; DROP TABLE call_records; --";
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    // Act
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName })]));
    // Assess: the row holds the name as data, in the column and in the document
    const stored = await admin((client) =>
      client.query<{ room_name: string; doc_room: string }>(`SELECT room_name, metadata->>'room_name' AS doc_room FROM ${SCHEMA}.call_records WHERE call_id = $1`, [callId]),
    );
    expect(stored.rows).toEqual([{ room_name: roomName, doc_room: roomName }]);
  });

  it('keeps a record with NUL and unpaired surrogates queryable as jsonb and reads it back exactly', async () => {
    // Prepare: characters jsonb rejects, and the escape mark itself, which must survive too
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const message = workerMessage(callId, 1, {
      roomName: 'nul\u0000byte \uE000 mark',
      items: [{ id: 'x', role: 'user', content: 'cut emoji \ud83d and \u0000', interrupted: false, timestampMs: Date.UTC(2026, 0, 1) }],
    });
    // Act
    await backend.merge(deltasOf([message]));
    // Assess
    const stored = await admin((client) =>
      client.query<{ kind: string; escaped: boolean }>(`SELECT jsonb_typeof(transcription) AS kind, escaped FROM ${SCHEMA}.call_records WHERE call_id = $1`, [callId]),
    );
    expect(stored.rows).toEqual([{ kind: 'object', escaped: true }]);
    const read = await backend.read(callId);
    expect(read?.state.roomName).toBe('nul\u0000byte \uE000 mark');
    expect(read?.documents.transcription?.conversation[0]?.content).toBe('cut emoji \ud83d and \u0000');
  });

  it('one writer per call: a batch of updates of stored calls is one statement, one round trip', async () => {
    // Prepare: ten stored calls, then their next snapshots; a spy on every statement sent
    const ids = Array.from({ length: 10 }, () => `RM_${randomUUID().slice(0, 12)}`);
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
    const spy = vi.spyOn(Client.prototype, 'query');
    try {
      // Act
      const outcomes = await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
      // Assess
      expect(outcomes.every((o) => o.changed)).toBe(true);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });
});
