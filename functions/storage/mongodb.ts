/**
 * MongoDB (and wire-compatible servers such as FerretDB) backend.
 *
 * Two collections:
 * - `call_records`: one document per call, `_id` = call id: the merged record (`state`, as JSON
 *   text), the folder, the rendered documents (`metadata`, `transcription`, subdocuments operators
 *   can query), the fields the indexes cover, and the `version` it holds. This is what operators read.
 * - `call_records_versions`: one small document per version ever written, `_id` = `<call id>#<version>`.
 *   Inserting it is the compare-and-swap: the unique `_id` lets exactly one writer create version
 *   n + 1, and versions are dense (1, 2, 3, ... never deleted), so the insert succeeds exactly when
 *   the writer's base, version n, is still the newest. It carries the new record until the next
 *   version supersedes it (then it is slimmed to its `_id`), so a writer that dies between the
 *   insert and updating `call_records` loses nothing: a later reader publishes it.
 *
 * Why this shape: FerretDB 1.24 on SQLite hands SQLite only a filter that is exactly
 * `{ _id: <string> }`; any other filter (`{_id, version}`, `$in`, ranges) is applied in Go to
 * every document of the collection. Even the bare `_id` is a table scan in SQLite (its unique
 * index is built on another expression than the one queried), so only inserts are index-backed.
 * And its updates are a read, a change in Go and a write in separate statements: a guarded
 * `updateOne({_id, version: n})` is not even atomic there (concurrent writers all "win" and
 * overwrite each other). Inserting a unique `_id` is atomic on both servers and cheap, every
 * command here filters by a bare `_id` only, and a new call is written with inserts alone.
 *
 * A batch is two round trips: one unordered insert of the version documents (its duplicate-key
 * errors, index by index, say which calls lost a race), then, in parallel, the won calls'
 * `call_records` documents (inserted for new calls, one update command for the others) and one
 * update command that slims the versions they superseded. The fast path
 * needs the version the call is at without reading it: this instance remembers the versions it
 * wrote or read (a hint only; a stale hint costs one duplicate-key error and a read). A cold
 * instance reads each call's document by `_id`, concurrently.
 *
 * `call_records` is written blindly, so two writes of one call must never be in flight together:
 * a writer creates version n + 1 only after seeing `call_records` at version n (or having written
 * it itself). A reader that finds version n + 1 created but not yet published waits for it; one
 * left unpublished for longer than ABANDONED_AFTER_MS (its writer died) is published by whoever
 * finds it. A writer that would publish later than LATE_PUBLISH_MS after its insert gives up
 * (retryably) instead, so it never overwrites what such a helper published after it.
 *
 * Untrusted strings (room names with `$`, `.`, NUL) are only ever values. The record goes in as
 * JSON text because its maps are keyed by writer and egress ids, which may contain `.` or start
 * with `$` (FerretDB refuses such keys) and BSON keys cannot hold NUL. BSON strings cannot carry
 * unpaired UTF-16 surrogates: documents holding one are stored escaped (see text-escape.ts) with
 * `escaped` set, and reads undo it.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
  type AnyBulkWriteOperation,
  type Collection,
  type IndexSpecification,
  type WriteError,
} from 'mongodb';
import type { CallState, CallSummary, RenderedDocuments } from '../contract/record.ts';
import { redactUrl } from '../shared/redact.ts';
import { checkQuery, decodeCursor, encodeCursor, MergingBackend, RECORDS, type BackendOptions, type CallPage, type CallQuery, type FastResult, type OpenCall, type RowWrite, type StoredCall } from './backend.ts';
import { BackendUnavailableError, classifyDriverError, LocationError, StorageError } from './errors.ts';
import { textEscaper } from './text-escape.ts';

const BACKEND = 'mongodb';
/** The compare-and-swap documents, one per version of each call. */
export const VERSIONS = `${RECORDS}_versions`;
/** Short, so a write while the server is down fails fast and the queue keeps the record. */
const TIMEOUT_MS = 5_000;
/** A hung server must not hold an invocation for long: the queue retries instead. */
const SOCKET_TIMEOUT_MS = 30_000;
const DEFAULT_DATABASE = 'calldata';
const DUPLICATE_KEY = 11000;
const NAMESPACE_NOT_FOUND = 26;
/** A version created this long ago and still not in `call_records` is published by whoever finds it. */
const ABANDONED_AFTER_MS = 30_000;
/** A writer this late publishing its own version leaves it to those helpers (the margin covers clock skew). */
const LATE_PUBLISH_MS = 10_000;
/** How long a read waits for another writer to publish the version it just created (long: an overloaded FerretDB takes seconds per write). */
const WAIT_FOR_PUBLISH_MS = 15_000;
/** Calls whose version this instance remembers (a few dozen bytes each). */
const HINTS = 10_000;

/** The indexes of `call_records` (FerretDB keeps them but only real MongoDB uses them). */
const INDEXES: readonly IndexSpecification[] = [
  // The sweeper: open calls, oldest last fact first.
  { final: 1, last_fact_ms: 1 },
  // Listing calls, newest first, overall and per room.
  { start_time_ms: -1 },
  { room_name: 1, start_time_ms: -1 },
  // queryCalls: listed calls newest first (ties by _id), per room and per number.
  { listed: 1, start_time_ms: -1, _id: -1 },
  { listed: 1, room_name: 1, start_time_ms: -1, _id: -1 },
  { listed: 1, user_number: 1, start_time_ms: -1 },
  { listed: 1, agent_number: 1, start_time_ms: -1 },
];

/** Unpaired surrogates (and the escape mark itself): BSON's UTF-8 would replace them. */
const TEXT = textEscaper('\\p{Cs}');

/** One call's document in `call_records`. */
export interface RecordDocument {
  _id: string;
  call_id: string;
  version: number;
  folder: string;
  sole_writer: string | null;
  writer_seq: number;
  room_name: string | null;
  start_time_ms: number | null;
  last_fact_ms: number;
  final: boolean;
  /** The call's line in a list, and the fields queries filter on; absent until an agent reported the call. */
  listed?: boolean;
  summary?: CallSummary;
  user_number?: string | null;
  agent_number?: string | null;
  direction?: string | null;
  answered?: boolean | null;
  status?: string | null;
  /** The merged record as JSON text. */
  state: string;
  metadata?: unknown;
  transcription?: unknown;
  escaped: boolean;
  updated_at: Date;
}

/** One version in `call_records_versions`; `state` and `folder` are gone once a newer version exists. */
export interface VersionDocument {
  _id: string;
  call_id: string;
  version: number;
  /** Writer's clock when created (ms): how long it may stay unpublished before others publish it. */
  at: number;
  /** Random per write: tells a writer afterwards whether this version is its own. */
  token: string;
  folder?: string;
  state?: string;
  superseded?: true;
}

/** What this instance last knew of a call: enough for the fast path's decision and its insert. */
interface Hint {
  version: number;
  folder: string;
  soleWriter: string | null;
  writerSeq: number;
}

interface Claim {
  row: RowWrite;
  version: number;
}

/** A version document that still holds its record (the newest one of its call always does). */
type LiveVersion = VersionDocument & { state: string; folder: string };

/** A call as found: its `call_records` document, and a newer version not yet published there. */
interface Found {
  record: RecordDocument | null;
  ahead?: LiveVersion;
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

/** `_id` of a version document. Call ids never contain '#' (CALL_ID_PATTERN), so ids never collide. */
export function versionId(callId: string, version: number): string {
  return `${callId}#${version}`;
}

/** The fast path's view of a stored record: its one writer (as RowWrite has it), if it has one. */
function hintOf(row: StoredCall): Hint {
  const writers = Object.entries(row.state.writers);
  const [only] = writers;
  return { version: row.version, folder: row.folder, soleWriter: writers.length === 1 && only ? only[0] : null, writerSeq: writers.length === 1 && only ? only[1] : 0 };
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

function writeErrorsOf(error: MongoBulkWriteError): readonly WriteError[] {
  const errors = error.writeErrors;
  return Array.isArray(errors) ? errors : [errors as WriteError];
}

function isDuplicateKey(error: unknown): boolean {
  if (error instanceof MongoBulkWriteError) return !error.err && writeErrorsOf(error).every((w) => w.code === DUPLICATE_KEY);
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

export class MongoBackend extends MergingBackend {
  readonly name = BACKEND;
  private readonly location: string;
  private readonly database: string;
  private readonly redacted: string;
  private mongo: MongoClient | undefined;
  private collections: Promise<{ records: Collection<RecordDocument>; versions: Collection<VersionDocument> }> | undefined;
  /** Per call, the newest version this instance saw published (insertion order = age, for eviction). */
  private readonly hints = new Map<string, Hint>();
  /** Calls whose insert just lost: their next read also looks past `call_records` for newer versions. */
  private readonly suspect = new Set<string>();

  constructor(location: string, options: BackendOptions) {
    super(options);
    this.database = databaseName(location);
    this.location = location;
    this.redacted = redactUrl(location);
    // Parses the location now (it connects on first use), so a bad one fails here, not per batch.
    this.mongo = this.createClient();
  }

  protected locate(callId: string): string {
    return `${this.redacted} collection ${RECORDS} _id=${callId}`;
  }

  /** The driver client (tests attach command monitoring to it). */
  protected client(): MongoClient {
    this.mongo ??= this.createClient();
    return this.mongo;
  }

  private createClient(): MongoClient {
    try {
      return new MongoClient(this.location, {
        serverSelectionTimeoutMS: TIMEOUT_MS,
        connectTimeoutMS: TIMEOUT_MS,
        socketTimeoutMS: SOCKET_TIMEOUT_MS,
        // A batch reads its calls concurrently on a cold instance.
        maxPoolSize: 16,
        appName: 'calldata',
        // Optional document fields are left out, never stored as null.
        ignoreUndefined: true,
      });
    } catch {
      // No cause attached: the driver's parse errors may quote the location, password included.
      throw new LocationError(BACKEND, `mongodb: cannot use location ${this.redacted}`);
    }
  }

  private ready(): Promise<{ records: Collection<RecordDocument>; versions: Collection<VersionDocument> }> {
    if (!this.collections) {
      const client = this.client();
      const db = client.db(this.database);
      const records = db.collection<RecordDocument>(RECORDS);
      const versions = db.collection<VersionDocument>(VERSIONS);
      const ready = client
        .connect()
        .then(() => this.createIndexes(records))
        .then(() => ({ records, versions }));
      this.collections = ready;
      ready.catch(() => {
        // A server that was down must not leave a failed promise cached for the life of the
        // process, nor this client: once its first connect failed, the driver has closed its
        // topology for good ("Topology is closed"), so the next attempt needs a new one.
        if (this.collections !== ready) return;
        this.collections = undefined;
        if (this.mongo === client) {
          this.mongo = undefined;
          client.close().catch(() => undefined);
        }
      });
    }
    return this.collections;
  }

  private async createIndexes(records: Collection<RecordDocument>): Promise<void> {
    // Indexes already there (the usual case): nothing created, so no createIndex privilege needed.
    let existing: string[] = [];
    try {
      existing = (await records.indexes()).map((index) => JSON.stringify(index.key));
    } catch (error) {
      if (!(error instanceof MongoServerError && error.code === NAMESPACE_NOT_FOUND)) throw error;
    }
    for (const key of INDEXES) {
      // One createIndex per index: FerretDB 1.24 drops the connection (a server panic) when one
      // createIndexes command names two indexes that already exist.
      if (!existing.includes(JSON.stringify(key))) await records.createIndex(key);
    }
  }

  // --- the two guarded writes -------------------------------------------------------------

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    const results: FastResult[] = rows.map(() => 'conflict');
    const claims: (Claim & { index: number })[] = [];
    rows.forEach((row, index) => {
      const hint = this.hints.get(row.callId);
      // Unknown here: try it as a new call; if it exists the insert fails and the read-merge-write takes it.
      if (!hint) claims.push({ row, version: 1, index });
      else if (hint.soleWriter !== row.soleWriter || hint.folder !== row.folder) results[index] = 'conflict';
      // Versions only ever gain facts, so whatever is stored now holds this writer's newer snapshot.
      else if (hint.writerSeq >= row.writerSeq) results[index] = 'duplicate';
      else claims.push({ row, version: hint.version + 1, index });
    });
    const won = await this.commit(claims);
    claims.forEach((claim, i) => {
      if (won[i]) results[claim.index] = 'applied';
      // A lost first version only says the call exists; its published document is what to read.
      else if (claim.version === 1) this.suspect.delete(claim.row.callId);
    });
    return results;
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    return this.commit(rows.map(({ row, expected }) => ({ row, version: (expected ?? 0) + 1 })));
  }

  /**
   * Creates each claimed version (one unordered insert), then publishes the ones won. A claim
   * wins exactly when its version did not exist, i.e. its base was the newest version.
   */
  private async commit(claims: readonly Claim[]): Promise<boolean[]> {
    if (claims.length === 0) return [];
    const at = Date.now();
    const documents = claims.map(({ row, version }): VersionDocument => ({
      _id: versionId(row.callId, version),
      call_id: row.callId,
      version,
      at,
      token: randomUUID(),
      folder: row.folder,
      state: JSON.stringify(row.state),
    }));
    let won: boolean[];
    try {
      const { versions } = await this.ready();
      won = await this.insertVersions(versions, documents);
    } catch (error) {
      throw classify('write', error);
    }
    claims.forEach(({ row, version }, i) => {
      if (won[i]) return;
      // Someone else wrote this call: our hint is stale, and it may have published nothing yet.
      if (this.hints.get(row.callId)?.version === version - 1) this.hints.delete(row.callId);
      this.suspect.add(row.callId);
    });
    const winners = claims.filter((_, i) => won[i]);
    if (winners.length === 0) return won;
    if (Date.now() - at > LATE_PUBLISH_MS) {
      // Stalled (a frozen process?): others may soon publish these versions for us, and a write
      // from us landing after theirs would put an older record back. The versions are stored;
      // the queue retries the batch, which then finds them published.
      throw new BackendUnavailableError(BACKEND, `${BACKEND}: write stalled before publishing; try again`);
    }
    await this.publish(winners);
    return won;
  }

  /** Inserts version documents; per document, whether this insert created it. */
  private async insertVersions(versions: Collection<VersionDocument>, documents: readonly VersionDocument[]): Promise<boolean[]> {
    try {
      await versions.insertMany(documents as VersionDocument[], { ordered: false });
      return documents.map(() => true);
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError) || !isDuplicateKey(error)) throw error;
      const failed = new Set(writeErrorsOf(error).map((w) => w.index));
      // Exact on MongoDB and FerretDB: each failed insert reported once, at its index.
      if (failed.size === writeErrorsOf(error).length && error.result.insertedCount + failed.size === documents.length) return documents.map((_, i) => !failed.has(i));
      // A report that does not add up: ask the documents themselves whose they are.
      return Promise.all(documents.map(async (doc) => (await versions.findOne({ _id: doc._id }, { projection: { token: 1 } }))?.token === doc.token));
    }
  }

  /**
   * Writes the won versions into `call_records` and, in parallel, slims the versions they
   * supersede (their record now lives in the newer version and in `call_records`).
   */
  private async publish(claims: readonly Claim[]): Promise<void> {
    const now = new Date();
    // updateMany, though a bare `_id` matches at most one document: FerretDB 1.24 keeps the cursor
    // of every updateOne statement open (a pooled SQLite connection each) until the whole command
    // ends, so ~100 matched updateOne statements in flight on one database deadlock it for good.
    // An updateMany statement reads its cursor to the end, which releases the connection at once.
    const heads: AnyBulkWriteOperation<RecordDocument>[] = claims
      .filter(({ version }) => version > 1)
      .map(({ row, version }) => ({ updateMany: { filter: { _id: row.callId }, update: { $set: this.recordFields(row, version, now) }, upsert: true } }));
    // A new call's document is inserted: FerretDB looks a missing `_id` up by scanning the whole
    // table, so an upsert would cost what an insert does not.
    const created: RecordDocument[] = claims.filter(({ version }) => version === 1).map(({ row, version }) => ({ _id: row.callId, ...this.recordFields(row, version, now) }));
    const slims: AnyBulkWriteOperation<VersionDocument>[] = claims
      .filter(({ version }) => version > 1)
      .map(({ row, version }) => ({ updateMany: { filter: { _id: versionId(row.callId, version - 1) }, update: { $unset: { state: '', folder: '' }, $set: { superseded: true } } } }));
    const { records, versions } = await this.ready().catch((error: unknown) => {
      throw classify('write', error);
    });
    const [inserted, published] = await Promise.allSettled([
      created.length > 0 ? this.insertRecords(records, created) : Promise.resolve(),
      heads.length > 0 ? this.upsertRecords(records, heads) : Promise.resolve(),
      // Only space is at stake: a version that keeps its record is still read correctly.
      slims.length > 0 ? versions.bulkWrite(slims, { ordered: false }) : Promise.resolve(),
    ]);
    for (const result of [inserted, published]) if (result?.status === 'rejected') throw classify('write', result.reason);
    for (const { row, version } of claims) this.remember(row.callId, { version, folder: row.folder, soleWriter: row.soleWriter, writerSeq: row.writerSeq });
  }

  private async insertRecords(records: Collection<RecordDocument>, documents: RecordDocument[]): Promise<void> {
    try {
      await records.insertMany(documents, { ordered: false });
    } catch (error) {
      // Already there: whoever published this first version for us (after we stalled) wrote the
      // same record, and newer versions may be on top of it by now; leave it.
      if (!isDuplicateKey(error)) throw error;
    }
  }

  private async upsertRecords(records: Collection<RecordDocument>, operations: AnyBulkWriteOperation<RecordDocument>[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await records.bulkWrite(operations, { ordered: false });
        return;
      } catch (error) {
        // Two upserts creating one new document race on FerretDB (one fails on the duplicate
        // key); the document exists now, so the same update succeeds as an update.
        if (attempt === 2 || !isDuplicateKey(error)) throw error;
      }
    }
  }

  /** The `call_records` fields of a version; only the document kinds this location stores. */
  private recordFields(row: RowWrite, version: number, now: Date): Omit<RecordDocument, '_id'> {
    const escaped = TEXT.needs(row.roomName ?? '') || TEXT.needsAny(row.documents) || TEXT.needsAny(row.summary);
    const text = (value: string) => (escaped ? TEXT.escape(value) : value);
    const summary = row.summary;
    const fields: Omit<RecordDocument, '_id'> = {
      call_id: row.callId,
      version,
      folder: row.folder,
      sole_writer: row.soleWriter,
      writer_seq: row.writerSeq,
      room_name: row.roomName === undefined ? null : text(row.roomName),
      start_time_ms: row.startedAtMs ?? null,
      last_fact_ms: row.lastFactAtMs,
      final: row.final,
      listed: summary !== undefined,
      ...(summary ? { summary: (escaped ? TEXT.mapStrings(summary, TEXT.escape) : summary) as CallSummary } : {}),
      user_number: summary?.userNumber === undefined ? null : text(summary.userNumber),
      agent_number: summary?.agentNumber === undefined ? null : text(summary.agentNumber),
      direction: summary?.direction ?? null,
      answered: summary?.answered ?? null,
      status: summary?.status === undefined ? null : text(summary.status),
      // JSON text keeps unpaired surrogates (as \u escapes) and any map key exactly.
      state: JSON.stringify(row.state),
      escaped,
      updated_at: now,
    };
    for (const kind of this.documents) {
      const document = row.documents[kind];
      if (document !== undefined) fields[kind] = escaped ? TEXT.mapStrings(document, TEXT.escape) : document;
    }
    return fields;
  }

  private remember(callId: string, hint: Hint): void {
    const current = this.hints.get(callId);
    if (current && current.version > hint.version) return;
    this.hints.delete(callId);
    this.hints.set(callId, hint);
    if (this.hints.size > HINTS) this.hints.delete(this.hints.keys().next().value as string);
  }

  // --- reads ------------------------------------------------------------------------------

  /**
   * A call's `call_records` document and, with `probe`, the newest version beyond it (read by
   * `_id`, one version after another: they are dense).
   */
  private async find(callId: string, probe: boolean): Promise<Found> {
    const { records, versions } = await this.ready();
    const record = await records.findOne({ _id: callId });
    if (!probe) return { record };
    let version = record?.version ?? 0;
    let newest: VersionDocument | null = null;
    for (;;) {
      const next = await versions.findOne({ _id: versionId(callId, version + 1) });
      if (!next) break;
      newest = next;
      version += 1;
    }
    if (!newest) return { record };
    // The newest version keeps its record: it is slimmed only after a newer one exists.
    if (newest.state === undefined || newest.folder === undefined) throw new BackendUnavailableError(BACKEND, `${BACKEND}: version ${newest._id} lost its record`);
    return { record, ahead: newest as LiveVersion };
  }

  /** The record a found call holds: the newest version, published or not. */
  private stored(callId: string, found: Found): StoredCall | undefined {
    const { record, ahead } = found;
    if (ahead) {
      const state = JSON.parse(ahead.state) as CallState;
      return {
        callId,
        version: ahead.version,
        folder: ahead.folder,
        state,
        documents: ahead.folder ? this.model.render(state, ahead.folder, this.documents) : {},
        location: this.locate(callId),
      };
    }
    if (!record) return undefined;
    const unescape = (value: unknown) => (record.escaped ? TEXT.mapStrings(value, TEXT.unescape) : value);
    const documents: RenderedDocuments = {};
    if (record.metadata !== undefined && record.metadata !== null) documents.metadata = unescape(record.metadata) as RenderedDocuments['metadata'];
    if (record.transcription !== undefined && record.transcription !== null) documents.transcription = unescape(record.transcription) as RenderedDocuments['transcription'];
    return {
      callId,
      version: Number(record.version),
      folder: record.folder,
      state: JSON.parse(record.state) as CallState,
      documents,
      location: this.locate(callId),
    };
  }

  /** Whether a version found beyond `call_records` was left unpublished by a writer that died. */
  private abandoned(found: Found): boolean {
    return found.ahead !== undefined && Date.now() - Number(found.ahead.at) > ABANDONED_AFTER_MS;
  }

  /** Publishes abandoned versions (as their writers would have). */
  private async rescue(callId: string, ahead: LiveVersion): Promise<void> {
    await this.publish([{ row: this.row(callId, JSON.parse(ahead.state) as CallState, ahead.folder), version: ahead.version }]);
  }

  /**
   * The stored rows to merge into: the published version of each call. A version created but not
   * yet published is waited for (building on it could let its publication land after ours).
   */
  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    const rows = new Map<string, StoredCall>();
    const deadline = Date.now() + WAIT_FOR_PUBLISH_MS;
    let pending = [...callIds];
    try {
      for (let pause = 10; pending.length > 0; pause = Math.min(pause * 2, 250)) {
        const waiting: string[] = [];
        await Promise.all(
          pending.map(async (callId) => {
            const found = await this.find(callId, this.suspect.delete(callId));
            if (found.ahead && this.abandoned(found)) await this.rescue(callId, found.ahead);
            else if (found.ahead) {
              waiting.push(callId);
              this.suspect.add(callId);
              return;
            }
            const row = this.stored(callId, found);
            if (!row) return;
            rows.set(callId, row);
            this.remember(callId, hintOf(row));
          }),
        );
        pending = waiting;
        if (pending.length === 0) break;
        if (Date.now() > deadline) throw new BackendUnavailableError(BACKEND, `${BACKEND}: another writer has not published its version of ${pending.length} call(s) yet; try again`);
        await sleep(pause);
      }
    } catch (error) {
      throw classify('read', error);
    }
    return rows;
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    try {
      const found = await this.find(callId, true);
      if (found.ahead && this.abandoned(found)) await this.rescue(callId, found.ahead);
      return this.stored(callId, found);
    } catch (error) {
      throw classify('read', error);
    }
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    try {
      const { records } = await this.ready();
      // A scan on FerretDB (it sorts in memory); the sweeper runs rarely. MongoDB uses {final, last_fact_ms}.
      const open = await records
        .find({ final: false, last_fact_ms: { $lt: quietSinceMs } }, { projection: { _id: 1, room_name: 1, last_fact_ms: 1, escaped: 1 } })
        .sort({ last_fact_ms: 1 })
        .limit(limit)
        .toArray();
      return open.map((doc) => ({
        callId: doc._id,
        ...(doc.room_name === null || doc.room_name === undefined ? {} : { roomName: doc.escaped ? TEXT.unescape(doc.room_name) : doc.room_name }),
        lastFactAtMs: Number(doc.last_fact_ms),
      }));
    } catch (error) {
      throw classify('list open calls', error);
    }
  }

  /**
   * A page of listed calls, newest first, as one find with sort and limit. On MongoDB the indexes
   * above serve the time window, the room and the numbers (direction, answered and status are
   * filtered within the index range); FerretDB on SQLite scans and sorts in memory for any filter
   * beyond a bare `_id`, so there a page costs a pass over the collection.
   */
  override async queryCalls(query: CallQuery): Promise<CallPage> {
    checkQuery(query);
    const cursor = decodeCursor(query.cursor);
    // Stored text is escaped when its row needed it; escaping an ordinary value changes nothing.
    const exact = (value: string) => TEXT.escape(value);
    const and: Record<string, unknown>[] = [{ listed: true }];
    if (query.sinceMs !== undefined || query.untilMs !== undefined) {
      and.push({ start_time_ms: { ...(query.sinceMs === undefined ? {} : { $gte: query.sinceMs }), ...(query.untilMs === undefined ? {} : { $lt: query.untilMs }) } });
    }
    if (query.room !== undefined) and.push({ room_name: exact(query.room) });
    if (query.number !== undefined) and.push({ $or: [{ user_number: exact(query.number) }, { agent_number: exact(query.number) }] });
    if (query.direction !== undefined) and.push({ direction: query.direction });
    if (query.answered !== undefined) and.push({ answered: query.answered });
    if (query.status !== undefined) and.push({ status: exact(query.status) });
    if (cursor) and.push({ $or: [{ start_time_ms: { $lt: cursor.startedAtMs } }, { start_time_ms: cursor.startedAtMs, _id: { $lt: cursor.callId } }] });
    try {
      const { records } = await this.ready();
      const found = await records
        .find({ $and: and }, { projection: { _id: 1, summary: 1, escaped: 1 } })
        .sort({ start_time_ms: -1, _id: -1 })
        .limit(query.limit + 1)
        .toArray();
      const calls = found
        .slice(0, query.limit)
        .flatMap((doc) => (doc.summary ? [(doc.escaped ? TEXT.mapStrings(doc.summary, TEXT.unescape) : doc.summary) as CallSummary] : []));
      const last = calls.at(-1);
      return { calls, ...(found.length > query.limit && last ? { cursor: encodeCursor(last) } : {}) };
    } catch (error) {
      throw classify('list calls', error);
    }
  }

  async close(): Promise<void> {
    const client = this.mongo;
    this.mongo = undefined;
    this.collections = undefined;
    this.hints.clear();
    this.suspect.clear();
    await client?.close();
  }
}
