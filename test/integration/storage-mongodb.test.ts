/**
 * MongoDB backend against the real server (FerretDB 1.24 on SQLite here). Everything runs in a
 * database of its own, dropped afterwards: runs never see each other's documents, and FerretDB
 * (which scans a collection for most filters) never slows down over runs.
 */
import { randomUUID } from 'node:crypto';
import { MongoClient, type CommandStartedEvent, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import { mergeAll, sameState, stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { isRetryable } from '../../functions/errors.ts';
import { RECORDS } from '../../functions/storage/backend.ts';
import { StorageError } from '../../functions/storage/errors.ts';
import { databaseName, MongoBackend, VERSIONS, versionId, type RecordDocument, type VersionDocument } from '../../functions/storage/mongodb.ts';
import { BOTH, describeBackendConformance, workerMessage } from '../support/backend-conformance.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';

const RUN_DATABASE = `calldata_test_${randomUUID().slice(0, 8)}`;
const databases = [RUN_DATABASE];

async function locationOf(database: string): Promise<string> {
  const url = new URL(await requireServer('mongodb'));
  url.pathname = `/${database}`;
  return url.toString();
}

const runLocation = () => locationOf(RUN_DATABASE);

afterAll(async () => {
  const client = new MongoClient(await runLocation(), { serverSelectionTimeoutMS: 5_000 });
  try {
    for (const database of databases) await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
});

/** The same URL through another loopback port; directConnection so the driver never follows the server's own address. */
function viaPort(location: string, port: number): string {
  const url = new URL(location);
  url.port = String(port);
  url.searchParams.set('directConnection', 'true');
  return url.toString();
}

describeBackendConformance({
  name: 'mongodb',
  location: runLocation,
  create: (location, options) => new MongoBackend(location, options),
  serverPort: SERVERS.mongodb.port,
  viaPort,
  // FerretDB is slower than the SQL servers per write; 150 cases still cover every party mix.
  propertyRuns: 150,
});

describeQueryConformance({
  name: 'mongodb',
  create: async (options) => {
    const database = `calldata_query_${randomUUID().slice(0, 8)}`;
    databases.push(database);
    return new MongoBackend(await locationOf(database), options);
  },
  // FerretDB scans and sorts in memory for every page: fewer calls keep the suite quick.
  calls: 1_500,
});

/** A backend whose driver reports every command it sends. */
class MonitoredBackend extends MongoBackend {
  readonly commands: CommandStartedEvent[] = [];
  constructor(location: string) {
    const url = new URL(location);
    url.searchParams.set('monitorCommands', 'true');
    super(url.toString(), BOTH);
    this.client().on('commandStarted', (event) => this.commands.push(event));
  }
}

/** Every filter a command carries (find, update, delete, findAndModify, count, aggregate $match). */
function filtersOf(event: CommandStartedEvent): Document[] {
  const command = event.command;
  switch (event.commandName) {
    case 'find':
    case 'count':
      return [command.filter ?? command.query ?? {}];
    case 'update':
      return (command.updates as { q: Document }[]).map((u) => u.q);
    case 'delete':
      return (command.deletes as { q: Document }[]).map((d) => d.q);
    case 'findAndModify':
      return [command.query ?? {}];
    case 'aggregate':
      return (command.pipeline as Document[]).map((stage) => stage.$match ?? {});
    default:
      return [];
  }
}

const isBareId = (filter: Document) => Object.keys(filter).length === 1 && typeof filter._id === 'string';

/** A non-cumulative message from a party of its own (as the webhook sends them). */
function webhookMessage(callId: string, atMs: number, writer = `webhook:EV_${randomUUID().slice(0, 8)}`): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: 'webhook',
    callId,
    writer,
    seq: 1,
    cumulative: false,
    sentAtMs: atMs,
    facts: { ended: { atMs, source: 'participant_left', reason: 'sip participant left' } },
  };
}

describe('mongodb backend specifics', () => {
  let location: string;
  let backend: MongoBackend;
  let inspector: MongoClient;
  const records = () => inspector.db(RUN_DATABASE).collection<RecordDocument>(RECORDS);
  const versions = () => inspector.db(RUN_DATABASE).collection<VersionDocument>(VERSIONS);

  beforeAll(async () => {
    location = await runLocation();
    backend = new MongoBackend(location, BOTH);
    inspector = new MongoClient(location, { serverSelectionTimeoutMS: 5_000 });
  });
  afterAll(async () => {
    await backend?.close();
    await inspector?.close();
  });

  it('creates call_records with the sweeper and listing indexes on first use', async () => {
    // Prepare: an empty database and a backend pointed at it
    const database = `calldata_test_${randomUUID().slice(0, 8)}`;
    databases.push(database);
    const fresh = new MongoBackend(await locationOf(database), BOTH);
    try {
      // Act
      const [outcome] = await fresh.merge(deltasOf([workerMessage(`RM_${randomUUID().slice(0, 8)}`, 1)]));
      // Assess
      expect(outcome?.changed).toBe(true);
      const keys = (await inspector.db(database).collection(RECORDS).indexes()).map((index) => index.key);
      expect(keys).toEqual(expect.arrayContaining([{ _id: 1 }, { final: 1, last_fact_ms: 1 }, { start_time_ms: -1 }, { room_name: 1, start_time_ms: -1 }]));
    } finally {
      await fresh.close();
    }
  });

  it('keeps one document per call in call_records: the documents as subdocuments beside the indexed fields', async () => {
    // Prepare
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const message = workerMessage(callId, 2, { final: true });
    // Act
    await backend.merge(deltasOf([message]));
    // Assess: what an operator's query sees
    const stored = await records().findOne({ _id: callId });
    expect(stored).toMatchObject({
      call_id: callId,
      version: 1,
      room_name: 'sip-room-1',
      start_time_ms: message.facts.startedAtMs,
      last_fact_ms: message.sentAtMs,
      final: true,
      escaped: false,
      metadata: { call_id: callId, room_name: 'sip-room-1', status: 'completed' },
      transcription: { call_id: callId },
    });
    expect(sameState(JSON.parse(stored?.state ?? '{}'), stateOf(message))).toBe(true);
    expect(await records().countDocuments({ 'metadata.status': 'completed', _id: callId })).toBe(1);
  });

  it('stores operator-injection room names verbatim and a query by one matches only its own call', async () => {
    // Prepare: names that look like query operators, paths and terminators
    const names = ['{"$gt": ""}', '$where', '$gt', 'a.b.c', '.leading.dot', 'nul\u0000byte'];
    const calls = names.map((roomName) => ({ roomName, callId: `RM_${randomUUID().slice(0, 12)}` }));
    // Act
    await backend.merge(deltasOf(calls.map(({ callId, roomName }) => workerMessage(callId, 1, { roomName }))));
    // Assess: each name is a plain value, in the field and in the document, and reads back exactly
    for (const { callId, roomName } of calls) {
      const matches = await records()
        .find({ room_name: roomName }, { projection: { _id: 1 } })
        .toArray();
      expect(matches.map((m) => m._id)).toContain(callId);
      expect(matches.map((m) => m._id).filter((id) => calls.some((c) => c.callId === id))).toEqual([callId]);
      expect((await records().findOne({ _id: callId }))?.metadata).toMatchObject({ room_name: roomName });
      const read = await backend.read(callId);
      expect(read?.state.roomName).toBe(roomName);
      expect(read?.documents.metadata?.room_name).toBe(roomName);
    }
  });

  it('keeps ids no BSON key could hold (dots, a leading $) and unpaired surrogates exactly', async () => {
    // Prepare: egress ids and writers become map keys of the record; text cut mid-emoji
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const worker = workerMessage(callId, 1, {
      roomName: 'cut \ud83d room \uE000 mark',
      items: [{ id: 'x.y', role: 'user', content: 'cut emoji \ud83d and \u0000', interrupted: false, timestampMs: Date.UTC(2026, 0, 1) }],
    });
    const egress: FactMessage = {
      v: MESSAGE_VERSION,
      kind: 'recording',
      callId,
      writer: 'recording:EG_a.b',
      seq: 1,
      cumulative: false,
      sentAtMs: worker.sentAtMs,
      facts: { recording: { egress: { '$gt.x': { status: 'active', atMs: worker.sentAtMs } } } },
    };
    // Act
    await backend.merge(deltasOf([worker, egress]));
    // Assess
    const read = await backend.read(callId);
    expect(sameState(read?.state ?? stateOf(worker), mergeAll([worker, egress].map(stateOf)))).toBe(true);
    expect(read?.documents.metadata?.room_name).toBe('cut \ud83d room \uE000 mark');
    expect(read?.documents.transcription?.conversation[0]?.content).toBe('cut emoji \ud83d and \u0000');
    expect((await records().findOne({ _id: callId }))?.escaped).toBe(true);
  });

  it('one writer: a batch of updates of stored calls is two round trips of three commands, each filtering by a bare _id', async () => {
    // Prepare: ten stored calls, then their next snapshots; the driver reports every command
    const monitored = new MonitoredBackend(location);
    const ids = Array.from({ length: 10 }, () => `RM_${randomUUID().slice(0, 12)}`);
    try {
      await monitored.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
      monitored.commands.length = 0;
      // Act
      const outcomes = await monitored.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
      // Assess: the version inserts, then call_records and the superseded versions in parallel
      expect(outcomes.every((o) => o.changed)).toBe(true);
      expect(monitored.commands.map((c) => `${c.commandName} ${c.command[c.commandName]}`).sort()).toEqual([`insert ${VERSIONS}`, `update ${RECORDS}`, `update ${VERSIONS}`]);
      expect(monitored.commands.flatMap(filtersOf).filter((f) => !isBareId(f))).toEqual([]);
      for (const id of ids) expect((await records().findOne({ _id: id }))?.version).toBe(2);
    } finally {
      await monitored.close();
    }
  });

  it('a batch of new calls is written with two inserts and nothing else', async () => {
    // Prepare: ten calls nobody stored yet; the driver reports every command
    const monitored = new MonitoredBackend(location);
    const ids = Array.from({ length: 10 }, () => `RM_${randomUUID().slice(0, 12)}`);
    try {
      await monitored.merge(deltasOf([workerMessage(`RM_${randomUUID().slice(0, 12)}`, 1)]));
      monitored.commands.length = 0;
      // Act
      const outcomes = await monitored.merge(deltasOf(ids.map((id) => workerMessage(id, 1))));
      // Assess: FerretDB looks up even a bare `_id` by scanning, so a new call takes no lookup at all
      expect(outcomes.every((o) => o.changed)).toBe(true);
      expect(monitored.commands.map((c) => `${c.commandName} ${c.command[c.commandName]}`).sort()).toEqual([`insert ${RECORDS}`, `insert ${VERSIONS}`]);
      for (const id of ids) expect((await records().findOne({ _id: id }))?.version).toBe(1);
    } finally {
      await monitored.close();
    }
  });

  it('another writer, on an instance that knows nothing yet: reads and writes still filter by a bare _id only', async () => {
    // Prepare: calls stored by the worker; a fresh instance (the webhook's) adds its facts
    const ids = Array.from({ length: 5 }, () => `RM_${randomUUID().slice(0, 12)}`);
    await backend.merge(deltasOf(ids.map((id) => workerMessage(id, 2))));
    const monitored = new MonitoredBackend(location);
    try {
      // Act
      const outcomes = await monitored.merge(deltasOf(ids.map((id) => webhookMessage(id, Date.UTC(2026, 10, 23, 19, 20)))));
      // Assess
      expect(outcomes.every((o) => o.changed)).toBe(true);
      const filters = monitored.commands.flatMap(filtersOf);
      expect(filters.length).toBeGreaterThan(0);
      expect(filters.filter((f) => !isBareId(f))).toEqual([]);
      expect(monitored.commands.some((c) => c.commandName === 'aggregate')).toBe(false);
    } finally {
      await monitored.close();
    }
  });

  it('two instances racing on the same calls store the merge of every fact', async () => {
    // Prepare: per call, two workers' jobs (one per instance) and webhook events, all at once
    const other = new MongoBackend(location, BOTH);
    const ids = Array.from({ length: 8 }, () => `RM_${randomUUID().slice(0, 12)}`);
    const plan = ids.map((callId) => ({
      callId,
      first: [1, 2, 3].map((seq) => workerMessage(callId, seq, { writer: 'job:AJ_first' })),
      second: [1, 2, 3].map((seq) => workerMessage(callId, seq, { writer: 'job:AJ_second', final: seq === 3 })),
      hooks: [0, 1].map((n) => webhookMessage(callId, Date.UTC(2026, 10, 23, 19, 20, n))),
    }));
    try {
      // Act: a retryable failure (a version another writer has not published yet, on a busy
      // server) is given back to the queue in production; here the message is merged again.
      const delivered = async (into: MongoBackend, message: FactMessage): Promise<void> => {
        for (let attempt = 1; ; attempt++) {
          try {
            await into.merge(deltasOf([message]));
            return;
          } catch (error) {
            if (!isRetryable(error) || attempt === 5) throw error;
          }
        }
      };
      await Promise.all(
        plan.flatMap(({ first, second, hooks }) => [
          ...first.map((m) => delivered(backend, m)),
          ...second.map((m) => delivered(other, m)),
          ...hooks.map((m, i) => delivered(i % 2 === 0 ? backend : other, m)),
        ]),
      );
      // Assess
      for (const { callId, first, second, hooks } of plan) {
        const expected = mergeAll([...first, ...second, ...hooks].map(stateOf));
        for (const reader of [backend, other]) expect(sameState((await reader.read(callId))?.state ?? stateOf(hooks[0] as FactMessage), expected)).toBe(true);
        const published = await records().findOne({ _id: callId });
        expect(sameState(JSON.parse(published?.state ?? '{}'), expected), 'call_records holds the newest version').toBe(true);
      }
    } finally {
      await other.close();
    }
  });

  it('publishes a version whose writer died after creating it, and builds on it', async () => {
    // Prepare: a stored call, then version 2 created long ago by a writer that never published it
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const first = workerMessage(callId, 1);
    await backend.merge(deltasOf([first]));
    const folder = (await backend.read(callId))?.folder ?? '';
    const lost = webhookMessage(callId, Date.UTC(2026, 10, 23, 19, 21));
    await versions().insertOne({
      _id: versionId(callId, 2),
      call_id: callId,
      version: 2,
      at: Date.now() - 120_000,
      token: randomUUID(),
      folder,
      state: JSON.stringify(mergeAll([first, lost].map(stateOf))),
    });
    const later = webhookMessage(callId, Date.UTC(2026, 10, 23, 19, 22));
    const cold = new MongoBackend(location, BOTH);
    try {
      // Act: another instance, which still sees version 1 in call_records, adds a fact
      const [outcome] = await cold.merge(deltasOf([later]));
      // Assess: nothing the dead writer stored is lost, and version 2 was superseded properly
      expect(outcome?.changed).toBe(true);
      const published = await records().findOne({ _id: callId });
      expect(published?.version).toBe(3);
      expect(sameState(JSON.parse(published?.state ?? '{}'), mergeAll([first, lost, later].map(stateOf)))).toBe(true);
      expect(await versions().findOne({ _id: versionId(callId, 2) })).toMatchObject({ superseded: true });
      expect((await versions().findOne({ _id: versionId(callId, 2) }))?.state).toBeUndefined();
    } finally {
      await cold.close();
    }
  });

  it('waits for a version another writer has not published yet: reads see it, writes fail retryably until it is', async () => {
    // Prepare: version 2 created just now by a writer still on its way to publishing it
    const callId = `RM_${randomUUID().slice(0, 12)}`;
    const first = workerMessage(callId, 1);
    await backend.merge(deltasOf([first]));
    const folder = (await backend.read(callId))?.folder ?? '';
    const pending = webhookMessage(callId, Date.UTC(2026, 10, 23, 19, 21));
    await versions().insertOne({
      _id: versionId(callId, 2),
      call_id: callId,
      version: 2,
      at: Date.now(),
      token: randomUUID(),
      folder,
      state: JSON.stringify(mergeAll([first, pending].map(stateOf))),
    });
    // Act
    const read = await backend.read(callId);
    const error = await backend.merge(deltasOf([webhookMessage(callId, Date.UTC(2026, 10, 23, 19, 22))])).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Assess: the newest record is what reads return; building on it before it is published could
    // let the other writer's publication overwrite ours, so the write waits, then asks for a retry
    expect(read?.version).toBe(2);
    expect(sameState(read?.state ?? stateOf(first), mergeAll([first, pending].map(stateOf)))).toBe(true);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).retryable).toBe(true);
    expect((await records().findOne({ _id: callId }))?.version).toBe(1);
  });

  it('uses the database named in the location, or calldata when none is named', () => {
    expect(databaseName('mongodb://u:p@h:1/archive?authSource=admin')).toBe('archive');
    expect(databaseName('mongodb+srv://cluster.example.net/?retryWrites=true')).toBe('calldata');
    expect(databaseName('mongodb://h1:1,h2:2')).toBe('calldata');
  });

  it('rejects a location MongoDB cannot use, without retrying and without showing its password', () => {
    for (const bad of ['mongodb://h:1/bad.name', 'mongodb://user:s3cret@h:1/db?unknownOption=%zz&w=nope']) {
      let failure: unknown;
      try {
        new MongoBackend(bad, BOTH);
      } catch (error) {
        failure = error;
      }
      expect(failure).toBeInstanceOf(StorageError);
      expect((failure as StorageError).retryable).toBe(false);
      expect(String((failure as Error).message)).not.toContain('s3cret');
    }
  });
});
