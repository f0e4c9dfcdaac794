/**
 * MongoDB (and wire-compatible servers such as FerretDB) backend: one collection per artifact
 * kind, one document per call, guarded by `seq` so an older snapshot never replaces a newer one.
 *
 * Stored shape: `{ _id: call id, call_id, room_name, start_time_ms, seq, document, write_token }`.
 * The call id as `_id` makes the server itself guarantee one document per call (the unique
 * `call_id` index is kept for queries by that name). The spec document is nested verbatim under
 * `document`; untrusted strings (room names with `$`, `.`, NUL) are only ever values, never keys
 * or operators, so they cannot inject anything.
 */
import { randomUUID } from 'node:crypto';
import {
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerSelectionError,
  type AnyBulkWriteOperation,
  type Collection,
} from 'mongodb';
import { redactUrl } from '../shared/redact.ts';
import { COLLECTION, newestPerCall, spreadOutcomes, type StorageBackend, type StoredArtifact, type WriteOutcome } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { BackendUnavailableError, classifyDriverError, LocationError, StorageError } from './errors.ts';

const BACKEND = 'mongodb';
/** Short, so a write while the server is down fails fast and the queue keeps the record. */
const TIMEOUT_MS = 5_000;
const DEFAULT_DATABASE = 'calldata';
const DUPLICATE_KEY = 11000;
/** Write rounds per batch before giving up (only reached when other writers keep racing on the same calls). */
const MAX_ROUNDS = 5;

/** One stored call document. */
export interface CallDocument {
  _id: string;
  call_id: string;
  room_name: string;
  start_time_ms: number;
  seq: number;
  document: unknown;
  /** Random per write: lets a batch tell afterwards which of its own writes landed. */
  write_token: string;
}

/** The database named by the URL path, or 'calldata' when the URL names none. */
export function databaseName(location: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?#]*(?:\/([^?#]*))?/i.exec(location);
  if (!match) throw new LocationError(BACKEND, 'mongodb: location must start with mongodb:// or mongodb+srv://');
  let name: string;
  try {
    name = decodeURIComponent(match[1] ?? '');
  } catch (cause) {
    throw new LocationError(BACKEND, 'mongodb: the database name in the location is not valid percent-encoding', cause);
  }
  if (/[/\\. "$\u0000]/.test(name)) throw new LocationError(BACKEND, 'mongodb: the database name in the location has characters MongoDB forbids');
  return name || DEFAULT_DATABASE;
}

/** True when every failure in a bulk write is a duplicate key (an existing document), and nothing else went wrong. */
function isDuplicateKeyOnly(error: unknown): error is MongoBulkWriteError {
  if (!(error instanceof MongoBulkWriteError) || error.err) return false; // error.err: a write concern error, outcome unknown
  const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  return writeErrors.length > 0 && writeErrors.every((w) => w?.code === DUPLICATE_KEY);
}

/** The batch indexes of the inserts that failed, when the report accounts for every insert exactly once. */
function failedInserts(error: MongoBulkWriteError, batchSize: number): Set<number> | undefined {
  const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  const indexes = new Set(writeErrors.map((w) => w.index));
  if (indexes.size !== writeErrors.length || error.result.insertedCount + indexes.size !== batchSize) return undefined;
  if ([...indexes].some((i) => !Number.isInteger(i) || i < 0 || i >= batchSize)) return undefined;
  return indexes;
}

function classify(action: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  // Connection-level trouble (a cleared pool is a MongoNetworkError too) is worth retrying;
  // classifyDriverError would miss the pool-cleared case and the server's "retry this" labels.
  const transient =
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    (error instanceof MongoError && (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('TransientTransactionError')));
  if (transient) return new BackendUnavailableError(BACKEND, `${BACKEND}: ${action} failed: server unavailable`, error);
  return classifyDriverError(BACKEND, action, error);
}

/** Where one record of a batch stands while it is being written. */
type Step = 'insert' | 'update' | 'applied' | 'stale';

export class MongoBackend implements StorageBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly database: string;
  private readonly redacted: string;
  private client: MongoClient | undefined;
  /** Per kind: the collection once its indexes exist (dropped on failure so the next write tries again). */
  private readonly collections = new Map<ArtifactKind, Promise<Collection<CallDocument>>>();

  constructor(location: string) {
    this.location = location;
    this.database = databaseName(location);
    this.redacted = redactUrl(location);
  }

  private getClient(): MongoClient {
    if (!this.client) {
      try {
        this.client = new MongoClient(this.location, {
          serverSelectionTimeoutMS: TIMEOUT_MS,
          connectTimeoutMS: TIMEOUT_MS,
          appName: 'calldata',
        });
      } catch (cause) {
        throw new LocationError(BACKEND, `mongodb: cannot use location ${this.redacted}`, cause);
      }
    }
    return this.client;
  }

  private collection(kind: ArtifactKind): Promise<Collection<CallDocument>> {
    let ready = this.collections.get(kind);
    if (!ready) {
      const collection = this.getClient().db(this.database).collection<CallDocument>(COLLECTION[kind]);
      // One createIndex per index: FerretDB 1.24 drops the connection (a server panic) when one
      // createIndexes command names two indexes that already exist.
      ready = collection
        .createIndex({ call_id: 1 }, { unique: true })
        .then(() => collection.createIndex({ room_name: 1, start_time_ms: 1 }))
        .then(() => collection);
      this.collections.set(kind, ready);
      // A server that was down must not leave a failed promise cached for the life of the process.
      ready.catch(() => this.collections.delete(kind));
    }
    return ready;
  }

  locationOf(kind: ArtifactKind, callId: string): string {
    return `${this.redacted} collection ${COLLECTION[kind]} call_id=${callId}`;
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    if (records.length === 0) return [];
    const { winners, winnerIndex } = newestPerCall(records);
    const applied = new Array<boolean>(winners.length).fill(false);
    const byKind = new Map<ArtifactKind, number[]>();
    winners.forEach((record, i) => byKind.set(record.kind, [...(byKind.get(record.kind) ?? []), i]));
    try {
      await Promise.all(
        [...byKind].map(async ([kind, indexes]) => {
          const results = await this.writeKind(
            kind,
            indexes.map((i) => winners[i] as ArtifactRecord),
          );
          indexes.forEach((winner, j) => (applied[winner] = results[j] === true));
        }),
      );
    } catch (error) {
      throw classify('write', error);
    }
    const outcomes = winners.map((record, i) => ({ location: this.locationOf(record.kind, record.callId), applied: applied[i] === true }));
    return spreadOutcomes(records, winnerIndex, outcomes);
  }

  /**
   * Writes records with distinct call ids: first one unordered insert of all of them (a new call
   * costs one round trip), then one unordered guarded update (`seq < ours`, no upsert) of those
   * whose call already existed. Inserts are tried first because guarded updates are the costly
   * operation on FerretDB (each one scans the collection, and batching them does not help),
   * while inserts batch well everywhere.
   *
   * Which records were applied comes from the insert's write errors (their indexes are exact on
   * MongoDB and FerretDB) and the update's matched count. When that does not settle it (some of
   * the updates matched, or a report that does not add up), the batch reads back its own write
   * tokens: token found → applied; stored seq ≥ ours → stale; otherwise the record is tried again.
   */
  private async writeKind(kind: ArtifactKind, records: readonly ArtifactRecord[]): Promise<boolean[]> {
    const collection = await this.collection(kind);
    const tokens = records.map(() => randomUUID());
    const steps: Step[] = records.map(() => 'insert');
    const fields = (i: number): CallDocument => {
      const record = records[i] as ArtifactRecord;
      return {
        _id: record.callId,
        call_id: record.callId,
        room_name: record.roomName,
        start_time_ms: record.startedAtMs,
        seq: record.seq,
        document: record.document,
        write_token: tokens[i] as string,
      };
    };
    const waiting = (step: Step) => steps.flatMap((s, i) => (s === step ? [i] : []));

    for (let round = 0; waiting('insert').length + waiting('update').length > 0; round++) {
      if (round === MAX_ROUNDS) throw new BackendUnavailableError(BACKEND, `${BACKEND}: write kept racing with concurrent writers of the same calls`);
      const unsettled: number[] = [];

      const inserts = waiting('insert');
      if (inserts.length > 0) {
        try {
          await collection.bulkWrite(
            inserts.map((i) => ({ insertOne: { document: fields(i) } })),
            { ordered: false },
          );
          for (const i of inserts) steps[i] = 'applied';
        } catch (error) {
          if (!isDuplicateKeyOnly(error)) throw error;
          const failed = failedInserts(error, inserts.length);
          if (failed) inserts.forEach((i, j) => (steps[i] = failed.has(j) ? 'update' : 'applied'));
          else unsettled.push(...inserts);
        }
      }

      const updates = waiting('update');
      if (updates.length > 0) {
        const operations: AnyBulkWriteOperation<CallDocument>[] = updates.map((i) => {
          const { _id, ...set } = fields(i);
          return { updateOne: { filter: { _id, seq: { $lt: set.seq } }, update: { $set: set } } };
        });
        const result = await collection.bulkWrite(operations, { ordered: false });
        if (result.matchedCount === updates.length) for (const i of updates) steps[i] = 'applied';
        else if (result.matchedCount === 0) for (const i of updates) steps[i] = 'stale';
        else unsettled.push(...updates);
      }

      if (unsettled.length > 0) {
        const stored = await collection
          .find({ _id: { $in: unsettled.map((i) => (records[i] as ArtifactRecord).callId) } }, { projection: { seq: 1, write_token: 1 } })
          .toArray();
        const byId = new Map(stored.map((doc) => [doc._id, doc]));
        for (const i of unsettled) {
          const record = records[i] as ArtifactRecord;
          const doc = byId.get(record.callId);
          if (doc?.write_token === tokens[i]) steps[i] = 'applied';
          else if (!doc) steps[i] = 'insert';
          else if (Number(doc.seq) >= record.seq) steps[i] = 'stale';
          else steps[i] = 'update';
        }
      }
    }
    return steps.map((step) => step === 'applied');
  }

  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    try {
      const collection = await this.collection(kind);
      const doc = await collection.findOne({ _id: callId }, { projection: { _id: 0, seq: 1, document: 1 } });
      if (!doc) return undefined;
      return { seq: Number(doc.seq), document: doc.document, location: this.locationOf(kind, callId) };
    } catch (error) {
      throw classify('read', error);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.collections.clear();
    await client?.close();
  }
}
