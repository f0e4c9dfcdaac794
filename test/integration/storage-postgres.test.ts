/**
 * PostgreSQL backend against the real server. Everything runs in a schema of its own
 * (selected through the URL's `options=-c search_path=...`), so the table is really created
 * on first use and nothing clashes with other test files.
 */
import { randomUUID } from 'node:crypto';
import { Client, type QueryConfig } from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deltasOf } from '../../functions/domain/persist.ts';
import type { FactMessage } from '../../functions/contract/facts.ts';
import { InvalidQueryError } from '../../functions/storage/errors.ts';
import { PostgresBackend } from '../../functions/storage/postgres.ts';
import { BOTH, describeBackendConformance, workerMessage } from '../support/backend-conformance.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
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

/** A new, empty schema (dropped after the file) and its location. */
async function freshSchema(): Promise<string> {
  const schema = `calldata_it_${randomUUID().replaceAll('-', '')}`;
  schemas.push(schema);
  await createSchema(schema);
  return withSchema(await requireServer('postgres'), schema);
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

describeQueryConformance({
  name: 'postgres',
  create: async (options) => new PostgresBackend(await freshSchema(), options),
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

describe('postgres call listing', () => {
  /** A room name as long as the contract allows: more bytes than a btree entry may hold. */
  const LONG_ROOM = 'x'.repeat(4_096);
  let location: string;
  let backend: PostgresBackend;

  /** Call i of 3 000: one in ten in LONG_ROOM, the rest in 300 rooms of 9 or 10 calls; a start every 37 s. */
  function listedCall(i: number): FactMessage {
    const message = workerMessage(`RM_plan${String(i).padStart(5, '0')}`, 1, { roomName: i % 10 === 0 ? LONG_ROOM : `room-${i % 300}` });
    return { ...message, facts: { ...message.facts, startedAtMs: Date.UTC(2026, 0, 1) + i * 37_000 } };
  }

  /** The statements the backend sends while `work` runs. */
  async function statements(work: () => Promise<unknown>): Promise<QueryConfig[]> {
    const spy = vi.spyOn(Client.prototype, 'query');
    try {
      await work();
      return spy.mock.calls.map(([config, values]) => (typeof config === 'string' ? { text: config, values: values as unknown[] } : (config as QueryConfig)));
    } finally {
      spy.mockRestore();
    }
  }

  /** The plan of a statement the backend sent, run in its schema. */
  async function plan(statement: QueryConfig): Promise<string> {
    const client = new Client({ connectionString: location });
    await client.connect();
    try {
      const result = await client.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${statement.text}`, values: statement.values });
      return result.rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    location = await freshSchema();
    backend = new PostgresBackend(location, BOTH);
    const messages = Array.from({ length: 3_000 }, (_, i) => listedCall(i));
    for (let i = 0; i < messages.length; i += 500) await backend.merge(deltasOf(messages.slice(i, i + 500)));
    const client = new Client({ connectionString: location });
    await client.connect();
    await client.query('ANALYZE call_records').finally(() => client.end());
  }, 120_000);
  afterAll(async () => {
    await backend?.close();
  });

  it('a page is one statement, and the newest page and a room page are index scans, never a Seq Scan', async () => {
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
      let page: Awaited<ReturnType<PostgresBackend['queryCalls']>> | undefined;
      const sent = await statements(async () => {
        page = await backend.queryCalls(query);
      });
      // Assess
      expect(sent).toHaveLength(1);
      expect(page?.calls).toHaveLength(query.limit);
      const [statement] = sent as [QueryConfig];
      const shown = await plan(statement);
      expect(shown, shown).not.toMatch(/Seq Scan/);
      expect(shown, shown).toMatch(/Index (Only )?Scan (Backward )?(using|on) call_records_/);
    }
  });

  it('matches a room name exactly, 4 096 characters and all, and finds every call of it across pages', async () => {
    // Act
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await backend.queryCalls({ limit: 70, room: LONG_ROOM, cursor });
      ids.push(...page.calls.map((call) => call.callId));
      for (const call of page.calls) expect(call.roomName).toBe(LONG_ROOM);
      cursor = page.cursor;
    } while (cursor);
    // Assess
    expect(ids).toEqual(Array.from({ length: 300 }, (_, k) => `RM_plan${String(2_990 - 10 * k).padStart(5, '0')}`));
    expect((await backend.queryCalls({ limit: 10, room: `${LONG_ROOM} ` })).calls).toEqual([]);
    expect((await backend.queryCalls({ limit: 10, room: 'x'.repeat(4_095) })).calls).toEqual([]);
  });

  it('finds a call by a room name and numbers that had to be stored escaped', async () => {
    // Prepare: NUL and an unpaired surrogate cannot be stored as text; the row is escaped
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const roomName = 'nul\u0000 and \ud83d cut \uE000 mark';
    const message = workerMessage(callId, 1, { roomName });
    message.facts.userNumber = { value: '+1\u0000555', atMs: message.facts.startedAtMs ?? 0 };
    await backend.merge(deltasOf([message]));
    // Act
    const byRoom = await backend.queryCalls({ limit: 10, room: roomName });
    const byNumber = await backend.queryCalls({ limit: 10, number: '+1\u0000555' });
    // Assess
    expect(byRoom.calls.map((call) => [call.callId, call.roomName, call.userNumber])).toEqual([[callId, roomName, '+1\u0000555']]);
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

  it('lists calls of a table made by an earlier version once they are written again', async () => {
    // Prepare: the table as the previous version created it, with one call in it
    const old = await freshSchema();
    const client = new Client({ connectionString: old });
    await client.connect();
    try {
      await client.query(`CREATE TABLE call_records (
        call_id text PRIMARY KEY, version bigint NOT NULL, sole_writer text, writer_seq bigint NOT NULL, folder text NOT NULL,
        room_name text, start_time timestamptz, last_fact_ms bigint NOT NULL, final boolean NOT NULL, state jsonb NOT NULL,
        metadata jsonb, transcription jsonb, escaped boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now())`);
      await client.query('CREATE INDEX call_records_start_time_idx ON call_records (start_time)');
      await client.query('CREATE INDEX call_records_room_name_idx ON call_records USING hash (room_name)');
      await client.query('CREATE INDEX call_records_open_idx ON call_records (last_fact_ms) WHERE NOT final');
      await client.query(`INSERT INTO call_records (call_id, version, writer_seq, folder, last_fact_ms, final, state) VALUES ('RM_before', 1, 0, '', 0, false, '{}')`);
    } finally {
      await client.end();
    }
    const upgraded = new PostgresBackend(old, BOTH);
    try {
      // Act
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      await upgraded.merge(deltasOf([workerMessage(callId, 1)]));
      // Assess: the old row is still there (unlisted), the new one listed
      expect((await upgraded.queryCalls({ limit: 10 })).calls.map((call) => call.callId)).toEqual([callId]);
      const rows = await admin((c) => c.query<{ call_id: string; listed: boolean }>(`SELECT call_id, listed FROM ${new URL(old).searchParams.get('options')?.split('=')[1]}.call_records ORDER BY listed`));
      expect(rows.rows).toEqual([
        { call_id: 'RM_before', listed: false },
        { call_id: callId, listed: true },
      ]);
    } finally {
      await upgraded.close();
    }
  });
});
