import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { StorageError } from '../../functions/storage/errors.ts';
import { databaseName, MongoBackend } from '../../functions/storage/mongodb.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { requireServer, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const TZ = 'Asia/Kolkata';

/**
 * This run's own database on the shared server, dropped afterwards: runs never see each other's
 * documents, and FerretDB (which scans a collection for most filters) never slows down over runs.
 */
const RUN_DATABASE = `calldata_test_${randomUUID().slice(0, 8)}`;

async function runLocation(): Promise<string> {
  const url = new URL(await requireServer('mongodb'));
  url.pathname = `/${RUN_DATABASE}`;
  return url.toString();
}

afterAll(async () => {
  const client = new MongoClient(await runLocation(), { serverSelectionTimeoutMS: 5_000 });
  try {
    await client.db().dropDatabase();
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
  create: (location) => new MongoBackend(location),
  serverPort: SERVERS.mongodb.port,
  viaPort,
});

describe('mongodb backend specifics', () => {
  let location: string;
  let backend: MongoBackend;
  let inspector: MongoClient;

  beforeAll(async () => {
    location = await runLocation();
    backend = new MongoBackend(location);
    inspector = new MongoClient(location, { serverSelectionTimeoutMS: 5_000 });
  });
  afterAll(async () => {
    await backend?.close();
    await inspector?.close();
  });

  it('creates a unique index on call_id and a room/start-time index on first use', async () => {
    // Prepare
    const snapshot = buildSnapshot({ turns: 1 });
    // Act
    await backend.write([metadataRecord(snapshot, TZ), transcriptionRecord(snapshot, TZ)]);
    // Assess
    for (const name of ['call_metadata', 'call_transcription']) {
      const indexes = await inspector.db(databaseName(location)).collection(name).indexes();
      const callId = indexes.find((index) => JSON.stringify(index.key) === JSON.stringify({ call_id: 1 }));
      expect(callId?.unique).toBe(true);
      expect(indexes.some((index) => JSON.stringify(index.key) === JSON.stringify({ room_name: 1, start_time_ms: 1 }))).toBe(true);
    }
  });

  it('keeps the spec document nested verbatim beside its key fields, keyed by call id', async () => {
    // Prepare
    const snapshot = buildSnapshot({ kind: 'ended', turns: 2 });
    const record = metadataRecord(snapshot, TZ);
    // Act
    await backend.write([record]);
    // Assess
    const stored = await inspector
      .db(databaseName(location))
      .collection('call_metadata')
      .findOne({ call_id: snapshot.callId }, { projection: { write_token: 0 } });
    expect(stored).toEqual({
      _id: snapshot.callId,
      call_id: snapshot.callId,
      room_name: snapshot.call.roomName,
      start_time_ms: snapshot.call.startedAtMs,
      seq: snapshot.seq,
      document: record.document,
    });
  });

  it('stores a NoSQL-injection room name verbatim and matches no other call with it', async () => {
    // Prepare: an ordinary call and one whose room name looks like a query operator
    const hostileRoom = '{"$gt": ""}';
    const ordinary = buildSnapshot({ roomName: `plain-${randomUUID()}` });
    const hostile = buildSnapshot({ roomName: hostileRoom });
    // Act
    const outcomes = await backend.write([metadataRecord(ordinary, TZ), metadataRecord(hostile, TZ)]);
    // Assess: the hostile name is a plain string value; querying by it finds only hostile calls
    expect(outcomes.map((o) => o.applied)).toEqual([true, true]);
    const collection = inspector.db(databaseName(location)).collection('call_metadata');
    const matches = await collection.find({ room_name: hostileRoom }, { projection: { _id: 0, call_id: 1, room_name: 1 } }).toArray();
    expect(matches.map((m) => m.call_id)).toContain(hostile.callId);
    expect(matches.map((m) => m.call_id)).not.toContain(ordinary.callId);
    expect(matches.every((m) => m.room_name === hostileRoom)).toBe(true);
    expect((await backend.read('metadata', hostile.callId))?.document).toMatchObject({ room_name: hostileRoom });
  });

  it('reports stale records in a mixed batch as not applied and still writes the fresh ones', async () => {
    // Prepare: three calls already stored at seq 100; the batch mixes stale, fresh and new records
    const ids = [0, 1, 2, 3, 4].map((n) => `mixed-${n}-${randomUUID()}`);
    await backend.write(ids.slice(0, 3).map((callId) => metadataRecord(buildSnapshot({ callId, seq: 100 }), TZ)));
    const batch = [
      metadataRecord(buildSnapshot({ callId: ids[0], seq: 200 }), TZ), // fresh
      metadataRecord(buildSnapshot({ callId: ids[1], seq: 50 }), TZ), // stale
      metadataRecord(buildSnapshot({ callId: ids[3], seq: 1 }), TZ), // new
      metadataRecord(buildSnapshot({ callId: ids[2], seq: 100 }), TZ), // redelivered (equal)
      metadataRecord(buildSnapshot({ callId: ids[4], seq: 1 }), TZ), // new, after the stale ones
    ];
    // Act
    const outcomes = await backend.write(batch);
    // Assess
    expect(outcomes.map((o) => o.applied)).toEqual([true, false, true, false, true]);
    const seqs = await Promise.all(ids.map(async (id) => (await backend.read('metadata', id))?.seq));
    expect(seqs).toEqual([200, 100, 100, 1, 1]);
  });

  it('lets exactly the newest of concurrent first writes of one call win', async () => {
    // Prepare: two backends racing to insert the same new call
    const other = new MongoBackend(location);
    const callId = `race-${randomUUID()}`;
    try {
      // Act
      const [low, high] = await Promise.all([
        backend.write([metadataRecord(buildSnapshot({ callId, seq: 10 }), TZ)]),
        other.write([metadataRecord(buildSnapshot({ callId, seq: 20 }), TZ)]),
      ]);
      // Assess: the newer one is applied whichever insert came first
      expect(high[0]?.applied).toBe(true);
      expect(low[0]?.applied).toBeTypeOf('boolean');
      expect((await backend.read('metadata', callId))?.seq).toBe(20);
    } finally {
      await other.close();
    }
  });

  it('reads nothing for a call that was never written', async () => {
    // Act
    const stored = await backend.read('metadata', `missing-${randomUUID()}`);
    // Assess
    expect(stored).toBeUndefined();
  });

  it('uses the database named in the location, or calldata when none is named', () => {
    expect(databaseName('mongodb://u:p@h:1/archive?authSource=admin')).toBe('archive');
    expect(databaseName('mongodb+srv://cluster.example.net/?retryWrites=true')).toBe('calldata');
    expect(databaseName('mongodb://h1:1,h2:2')).toBe('calldata');
  });

  it('rejects a location whose database name MongoDB cannot use, without retrying', () => {
    let failure: unknown;
    try {
      new MongoBackend('mongodb://h:1/bad.name');
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as StorageError).retryable).toBe(false);
  });
});
