/**
 * S3 / MinIO backend. Per call, in the bucket:
 *
 * - `_calldata-index/<callId>.json`: the record — merged state, folder, version, sole writer and
 *   its sequence, final, last fact. It is the object every write compare-and-swaps: If-Match on
 *   its ETag, If-None-Match '*' when creating. The body carries the version, so each version has
 *   an ETag of its own (an ETag is the content's MD5; without the version an A-B-A could pass).
 * - `<folder>/call_metadata_<slug>_<timestamp>.json` and `.../call_transcription_...json`: the spec's
 *   documents, written only after the record's compare-and-swap succeeded. Each carries the
 *   record version it was rendered from (`calldata-version` metadata) and is replaced only
 *   conditionally on the ETag of an older version, so a slow writer of an older version never
 *   replaces a newer one.
 * - `_calldata-open/<callId>`: a marker while the call is open (body: last fact, room) for the
 *   sweeper, deleted once the record is final.
 * - `_calldata-time/<entry>`, `_calldata-room/<room key>/<entry>`, `_calldata-number/<number
 *   key>/<entry>`: the call index `queryCalls` lists, one small object per listed call and scope
 *   holding its summary, named so that names sort newest start first (the names are described
 *   in local.ts, "the call index"). Written after the record like the documents, conditional on
 *   the version, and only when the summary changed: a few times per call, not per snapshot.
 *
 * The fast path costs one round trip for the record: this container remembers the ETag of each
 * record it wrote or read last, and when the next message of the same sole writer arrives it
 * PUTs with If-Match on that ETag straight away (the documents follow in parallel). Anything
 * else is reported as a conflict, and the base reads, merges and compare-and-swaps.
 *
 * A write that fails after its record landed (documents or marker) throws, so the batch is
 * delivered again; that redelivery finds the record unchanged, and `merge` then brings the
 * documents and the marker up to the record's version.
 */
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Settings } from '../config/config.ts';
import type { CallState, CallSummary, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { CALL_ID_PATTERN } from '../contract/snapshot.ts';
import { s3Client } from '../shared/s3-client.ts';
import {
  MergingBackend,
  type BackendOptions,
  type CallDelta,
  type CallPage,
  type CallQuery,
  type FastResult,
  type MergeOutcome,
  type OpenCall,
  type RowWrite,
  type StoredCall,
} from './backend.ts';
import { BackendUnavailableError, classifyDriverError, LocationError, StorageError } from './errors.ts';
// The index's names and page walk are the local backend's (plain functions, no driver).
import { collectPage, entryBody, entrySummary, indexEntries, planQuery, type NameBatch, type RecordFile } from './local.ts';

const BACKEND = 's3';
const INDEX_PREFIX = '_calldata-index/';
const OPEN_PREFIX = '_calldata-open/';
/** `_calldata-<scope>/<entry name>`: the call index (scope 'time', 'room/<key>' or 'number/<key>'). */
const LIST_PREFIX = '_calldata-';
/** Object metadata (S3 lower-cases the names). */
const VERSION_META = 'calldata-version';
const FINAL_META = 'calldata-final';
const LAST_FACT_META = 'calldata-last-fact';
/** Bodies above this go through lib-storage's multipart upload (one PUT is limited to 5 GB, but large single PUTs retry badly). */
const MULTIPART_BYTES = 5 * 1024 * 1024;
/** Records and documents this container remembers (ETag and version), least recently used dropped first. */
const KNOWN_MAX = 10_000;
/** Conditional document writes before giving up (only reached while other writers keep replacing it). */
const MAX_DOCUMENT_ATTEMPTS = 6;
/** Requests in flight at once: hides latency, and stays below the SDK's 50 sockets. */
const PARALLEL = 16;
/** Index entries a query reads at once (a query runs apart from merges: more of the sockets are free). */
const QUERY_PARALLEL = 32;

/** The record object's body: the local folder's record, plus the version its index entries carry. */
interface RecordObject extends RecordFile {
  /** The record version that summary was first written at: the version its index entries carry. */
  summary_version?: number;
}

/** What this container knows about a record object: enough for the fast path's guard. */
interface KnownRecord {
  etag: string;
  version: number;
  soleWriter: string | null;
  seq: number;
  folder: string;
  /** The record's summary as JSON; undefined when it holds none (written before the index). */
  summary: string | undefined;
  summaryVersion: number;
}

/** What a write knows of the summary it replaces. */
type PreviousSummary = Pick<KnownRecord, 'summary' | 'summaryVersion'>;
/** There was no record. */
const NO_SUMMARY: PreviousSummary = { summary: 'null', summaryVersion: 0 };

/** A document object's ETag and the record version it was rendered from. */
interface KnownDocument {
  etag: string;
  version: number;
}

type Condition = { IfMatch: string } | { IfNoneMatch: '*' };

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** 412: the condition failed; 409: a concurrent conditional write to the same key won. Either way another writer got there first. */
function isConflict(error: unknown): boolean {
  const code = status(error);
  return code === 412 || code === 409;
}

/** The key is absent (a missing bucket is a configuration problem, not an absent record). */
function isMissing(error: unknown): boolean {
  return status(error) === 404 && (error as { name?: string } | undefined)?.name !== 'NoSuchBucket';
}

function classify(action: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const code = status(error);
  // Throttling and server errors pass; the queue delivers the batch again later.
  if (code !== undefined && (code >= 500 || code === 429)) return new BackendUnavailableError(BACKEND, `${BACKEND}: ${action} failed (HTTP ${code})`, error);
  return classifyDriverError(BACKEND, action, error);
}

/** Runs `work` over `items`, at most `limit` at once, results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/**
 * Like mapLimit, but every item runs to the end even when one fails, then the first failure is
 * thrown: a batch must not leave writes running after it reported its result.
 */
async function settleAll<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  let failure: { error: unknown } | undefined;
  const results = await mapLimit(items, limit, async (item) => {
    try {
      return await work(item);
    } catch (error) {
      failure ??= { error };
      return undefined as R;
    }
  });
  if (failure) throw failure.error;
  return results;
}

/** A small least-recently-used map. */
class Lru<V> {
  private readonly entries = new Map<string, V>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(key: string): V | undefined {
    return this.entries.get(key);
  }
  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** The spec's document key in a call's folder: `<slug>/<timestamp>/call_<kind>_<slug>_<timestamp>.json`. */
function documentKey(folder: string, kind: DocumentKind): string {
  const slash = folder.lastIndexOf('/');
  const slug = folder.slice(0, slash);
  const timestamp = folder.slice(slash + 1);
  return `${folder}/call_${kind}_${slug}_${timestamp}.json`;
}

export class S3Backend extends MergingBackend {
  readonly name = BACKEND;
  private readonly settings: S3Settings;
  private readonly bucket: string;
  private readonly records = new Lru<KnownRecord>(KNOWN_MAX);
  private readonly docs = new Lru<KnownDocument>(KNOWN_MAX);
  /** Index entries' ETags and versions, apart from the documents'. */
  private readonly entries = new Lru<KnownDocument>(KNOWN_MAX);

  constructor(settings: S3Settings, options: BackendOptions) {
    super(options);
    if (!settings.bucket) throw new LocationError(BACKEND, 'location "s3" needs AWS_S3_BUCKET or MINIO_BUCKET');
    this.settings = settings;
    this.bucket = settings.bucket;
  }

  private get client(): S3Client {
    // Shared per process (functions/shared/s3-client.ts): one connection pool per endpoint.
    return s3Client(this.settings);
  }

  private recordKey(callId: string): string {
    // Call ids are validated by the contract; checked again because they become keys here.
    if (!CALL_ID_PATTERN.test(callId)) throw new StorageError(`${BACKEND}: call id ${JSON.stringify(callId.slice(0, 40))} cannot name an object`, { backend: BACKEND, retryable: false });
    return `${INDEX_PREFIX}${callId}.json`;
  }

  private markerKey(callId: string): string {
    return `${OPEN_PREFIX}${callId}`;
  }

  protected locate(callId: string, folder: string): string {
    return folder ? `s3://${this.bucket}/${folder}/` : `s3://${this.bucket}/${this.recordKey(callId)}`;
  }

  /** Runs one S3 step, turning its failure into a StorageError. */
  private async guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw classify(action, error);
    }
  }

  // ---- objects ------------------------------------------------------------------------------

  /** PUTs a body (multipart when large) and returns the new ETag. */
  private async put(key: string, body: string, metadata: Record<string, string>, condition?: Condition): Promise<string> {
    const bytes = Buffer.from(body, 'utf8');
    const params = { Bucket: this.bucket, Key: key, ContentType: 'application/json; charset=utf-8', Metadata: metadata, ...condition };
    if (bytes.length > MULTIPART_BYTES) {
      // lib-storage passes the condition on to CompleteMultipartUpload, where S3 checks it.
      const result = await new Upload({ client: this.client, params: { ...params, Body: Readable.from([bytes]) } }).done();
      return result.ETag ?? '';
    }
    const result = await this.client.send(new PutObjectCommand({ ...params, Body: bytes }));
    return result.ETag ?? '';
  }

  private async head(key: string): Promise<{ etag: string; metadata: Record<string, string> } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { etag: head.ETag ?? '', metadata: head.Metadata ?? {} };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  private async getText(key: string): Promise<{ text: string; etag: string } | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { text: (await object.Body?.transformToString('utf8')) ?? '', etag: object.ETag ?? '' };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  // ---- records ------------------------------------------------------------------------------

  /** Remembers a record's ETag unless a newer version is already known. */
  private remember(callId: string, known: KnownRecord): void {
    const current = this.records.get(callId);
    if (!current || current.version <= known.version) this.records.set(callId, known);
  }

  private async getRecord(callId: string): Promise<{ record: RecordObject; etag: string } | undefined> {
    const found = await this.getText(this.recordKey(callId));
    if (!found) return undefined;
    let record: RecordObject;
    try {
      record = JSON.parse(found.text) as RecordObject;
    } catch (cause) {
      throw new StorageError(`${BACKEND}: ${this.recordKey(callId)} is not valid JSON`, { backend: BACKEND, retryable: false, cause });
    }
    // Not retryable: the object was replaced by something else; merging into it would lose it.
    if (record?.call_id !== callId || typeof record.version !== 'number' || typeof record.state !== 'object' || record.state === null) {
      throw new StorageError(`${BACKEND}: ${this.recordKey(callId)} is not a call record of ${callId}`, { backend: BACKEND, retryable: false });
    }
    this.remember(callId, { etag: found.etag, version: record.version, soleWriter: record.sole_writer, seq: record.writer_seq, folder: record.folder, ...previousSummary(record) });
    return { record, etag: found.etag };
  }

  private stored(record: RecordObject, documents: RenderedDocuments = {}): StoredCall {
    return { callId: record.call_id, version: record.version, folder: record.folder, state: record.state, documents, location: this.locate(record.call_id, record.folder) };
  }

  /**
   * PUTs the record of `row` as `version` under `condition`. False when another writer's
   * version is there (the condition failed). When it landed, writes the documents, the marker
   * and, when the summary differs from `previous` (the replaced record's), the index entries
   * before resolving.
   */
  private async writeRecord(row: RowWrite, version: number, condition: Condition, previous: PreviousSummary): Promise<boolean> {
    const summary = JSON.stringify(row.summary ?? null);
    const indexChanged = summary !== previous.summary;
    const summaryVersion = indexChanged ? version : previous.summaryVersion;
    const record: RecordObject = {
      call_id: row.callId,
      version,
      folder: row.folder,
      sole_writer: row.soleWriter,
      writer_seq: row.writerSeq,
      final: row.final,
      last_fact_ms: row.lastFactAtMs,
      room_name: row.roomName ?? null,
      started_at_ms: row.startedAtMs ?? null,
      summary: row.summary ?? null,
      summary_version: summaryVersion,
      state: row.state,
    };
    let etag: string;
    try {
      etag = await this.put(this.recordKey(row.callId), JSON.stringify(record), { [VERSION_META]: String(version), [FINAL_META]: row.final ? '1' : '0', [LAST_FACT_META]: String(row.lastFactAtMs) }, condition);
    } catch (error) {
      // Whatever happened, what this container knew about the record may be out of date now.
      this.records.delete(row.callId);
      if (isConflict(error)) return false;
      throw error;
    }
    this.remember(row.callId, { etag, version, soleWriter: row.soleWriter, seq: row.writerSeq, folder: row.folder, summary, summaryVersion });
    await Promise.all([
      ...this.documents.flatMap((kind) => {
        const document = row.documents[kind];
        return row.folder && document ? [this.putDocument(documentKey(row.folder, kind), JSON.stringify(document, null, 2), version)] : [];
      }),
      this.mark(row.callId, row.final, row.lastFactAtMs, row.roomName),
      indexChanged ? this.writeIndex(row.summary ?? null, version, previous.summary) : undefined,
    ]);
    return true;
  }

  /**
   * Writes the index entries of `summary`, taken at record `version`, then deletes those of the
   * previous summary (JSON; undefined when unknown) that it no longer has: an earlier start,
   * another room. Each entry is written like a document, conditional on the ETag of an older
   * version, so a slow writer of an older version never replaces a newer entry; one that finds
   * its entry deleted leaves it so (a newer version moved the call away from that name).
   *
   * Not covered: a writer of an older version creating an entry for the first time just after a
   * newer version deleted that very name (the start moved in between, within milliseconds). Such
   * an entry lists the call twice until the call's summary next moves it.
   */
  private async writeIndex(summary: CallSummary | null, version: number, previous: string | undefined): Promise<void> {
    const entries = indexEntries(summary);
    if (summary) await Promise.all(entries.map((entry) => this.putDocument(`${LIST_PREFIX}${entry}`, entryBody(summary, version), version, undefined, 'entry')));
    const before = previous === undefined ? [] : indexEntries(JSON.parse(previous) as CallSummary | null);
    await Promise.all(
      before
        .filter((entry) => !entries.includes(entry))
        .map(async (entry) => {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: `${LIST_PREFIX}${entry}` }));
          this.entries.delete(`${LIST_PREFIX}${entry}`);
        }),
    );
  }

  // ---- documents ----------------------------------------------------------------------------

  private async headDocument(key: string): Promise<KnownDocument | null> {
    const head = await this.head(key);
    if (!head) return null;
    const version = Number(head.metadata[VERSION_META] ?? 0);
    return { etag: head.etag, version: Number.isFinite(version) ? version : 0 };
  }

  /**
   * Writes a document rendered from record `version`, unless a document of that version or a
   * newer one is there. `known`: what is there (null: absent); undefined: what this container
   * last wrote, or absent when it never wrote it (a wrong guess costs one 412 and a HEAD).
   *
   * An ETag is the content's MD5, and the spec's documents carry no version of their own: a
   * newer version whose document reads exactly like the one our If-Match names passes it. We
   * then replace a document with ours, which differs from it only if rendering went A, B, A
   * across versions; documents render from a record that only grows, so in practice they do not.
   *
   * Index entries (`kind` 'entry') are written the same way, with a cache of their own (they
   * change a few times per call and must not push out the documents, written every snapshot);
   * an If-Match that finds no entry leaves it so: a newer version deleted it when the call
   * moved away from that name. Documents are never deleted here: for them that is an error.
   */
  private async putDocument(key: string, body: string, version: number, known?: KnownDocument | null, kind: 'document' | 'entry' = 'document'): Promise<void> {
    const cache = kind === 'entry' ? this.entries : this.docs;
    let current = known === undefined ? cache.get(key) : (known ?? undefined);
    for (let attempt = 0; attempt < MAX_DOCUMENT_ATTEMPTS; attempt++) {
      if (current && current.version >= version) return;
      try {
        const etag = await this.put(key, body, { [VERSION_META]: String(version) }, current ? { IfMatch: current.etag } : { IfNoneMatch: '*' });
        cache.set(key, { etag, version });
        return;
      } catch (error) {
        cache.delete(key);
        if (current && kind === 'entry' && isMissing(error)) return;
        if (!isConflict(error)) throw error;
        current = (await this.headDocument(key)) ?? undefined;
      }
    }
    throw new BackendUnavailableError(BACKEND, `${BACKEND}: ${key} kept changing under concurrent writers; try again`);
  }

  /** Keeps the open-call marker in step with the record: present while open, gone once final. */
  private async mark(callId: string, final: boolean, lastFactAtMs: number, roomName: string | undefined): Promise<void> {
    const Key = this.markerKey(callId);
    if (final) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
      return;
    }
    // Unconditional: a racing writer may leave an older last fact or resurrect the marker of a
    // final call; openCalls checks each candidate against its record, so neither misleads it.
    await this.put(Key, JSON.stringify({ call_id: callId, room_name: roomName ?? null, last_fact_ms: lastFactAtMs }), { [LAST_FACT_META]: String(lastFactAtMs) });
  }

  /**
   * Brings the documents, marker and index entries of a stored record up to its version. Needed
   * after a write whose record landed but whose documents did not: its redelivery changes
   * nothing, so nothing else would ever write them.
   */
  private async settle(callId: string): Promise<void> {
    const found = await this.getRecord(callId);
    if (!found) return;
    const { record } = found;
    // A record from before the index: its entries are those of its state's summary, at its version.
    const summary = record.summary !== undefined ? record.summary : (this.model.summarize(record.state) ?? null);
    const summaryVersion = record.summary_version ?? record.version;
    await Promise.all([
      ...indexEntries(summary).map(async (entry) => {
        const key = `${LIST_PREFIX}${entry}`;
        const current = await this.headDocument(key);
        if (summary && !(current && current.version >= summaryVersion)) await this.putDocument(key, entryBody(summary, summaryVersion), summaryVersion, current, 'entry');
      }),
      ...this.documents.map(async (kind) => {
        if (!record.folder) return;
        const key = documentKey(record.folder, kind);
        const current = await this.headDocument(key);
        if (current && current.version >= record.version) return;
        // Rendered only when behind: a long transcript costs a few milliseconds to render.
        const document = this.model.render(record.state, record.folder, [kind])[kind];
        if (document) await this.putDocument(key, JSON.stringify(document, null, 2), record.version, current);
      }),
      this.mark(callId, record.final, record.last_fact_ms, record.room_name ?? undefined),
    ]);
  }

  // ---- MergingBackend -----------------------------------------------------------------------

  override async merge(deltas: readonly CallDelta[]): Promise<MergeOutcome[]> {
    const outcomes = await super.merge(deltas);
    const unchanged = [...new Set(outcomes.filter((outcome) => !outcome.changed).map((outcome) => outcome.callId))];
    if (unchanged.length > 0) await this.guard('repair documents', () => settleAll(unchanged, PARALLEL, (callId) => this.settle(callId)));
    return outcomes;
  }

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    return this.guard('write', () =>
      settleAll(rows, PARALLEL, async (row): Promise<FastResult> => {
        const known = this.records.get(row.callId);
        // Only a record this container knows to be this writer's alone, older and in the same
        // folder may be replaced unseen; the If-Match makes sure it still is.
        if (!known || row.soleWriter === null || known.soleWriter !== row.soleWriter || known.seq >= row.writerSeq || known.folder !== row.folder) return 'conflict';
        return (await this.writeRecord(row, known.version + 1, { IfMatch: known.etag }, known)) ? 'applied' : 'conflict';
      }),
    );
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    return this.guard('write', () =>
      settleAll(rows, PARALLEL, async ({ row, expected }): Promise<boolean> => {
        if (expected === undefined) return this.writeRecord(row, 1, { IfNoneMatch: '*' }, NO_SUMMARY);
        let known: KnownRecord | undefined = this.records.get(row.callId);
        if (known?.version !== expected) {
          // The read that saw `expected` was forgotten (another merge of this call in the
          // meantime): read what is there now (the summary it holds included).
          const found = await this.getRecord(row.callId);
          if (!found || found.record.version !== expected) return false;
          known = { etag: found.etag, version: expected, soleWriter: found.record.sole_writer, seq: found.record.writer_seq, folder: found.record.folder, ...previousSummary(found.record) };
        }
        return this.writeRecord(row, expected + 1, { IfMatch: known.etag }, known);
      }),
    );
  }

  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    return this.guard('read', async () => {
      const found = await mapLimit(callIds, PARALLEL, (callId) => this.getRecord(callId));
      const rows = new Map<string, StoredCall>();
      // The merge needs state, version and folder only; read() fetches the documents themselves.
      for (const entry of found) if (entry) rows.set(entry.record.call_id, this.stored(entry.record));
      return rows;
    });
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    return this.guard('read', async () => {
      const found = await this.getRecord(callId);
      if (!found) return undefined;
      const { record } = found;
      const documents: RenderedDocuments = {};
      if (record.folder) {
        await Promise.all(
          this.documents.map(async (kind) => {
            const object = await this.getText(documentKey(record.folder, kind));
            if (object) Object.assign(documents, { [kind]: JSON.parse(object.text) as unknown });
          }),
        );
      }
      return this.stored(record, documents);
    });
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    return this.guard('list open calls', async () => {
      const callIds: string[] = [];
      let token: string | undefined;
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: OPEN_PREFIX, ...(token ? { ContinuationToken: token } : {}) }));
        for (const object of page.Contents ?? []) {
          const callId = object.Key?.slice(OPEN_PREFIX.length) ?? '';
          if (CALL_ID_PATTERN.test(callId)) callIds.push(callId);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);

      const markers = await mapLimit(callIds, PARALLEL, (callId) => this.readMarker(callId));
      // A marker's last fact is that of some version of the record, so never newer than the
      // record's: a marker at or after the bound rules its call out without a look at the record.
      const candidates = markers.filter((m): m is OpenCall => m !== undefined && m.lastFactAtMs < quietSinceMs).sort(byLastFact);
      const open: OpenCall[] = [];
      for (let i = 0; i < candidates.length && open.length < limit; i += PARALLEL) {
        const confirmed = await Promise.all(candidates.slice(i, i + PARALLEL).map((candidate) => this.confirmOpen(candidate, quietSinceMs)));
        for (const call of confirmed) if (call && open.length < limit) open.push(call);
      }
      return open.sort(byLastFact);
    });
  }

  private async readMarker(callId: string): Promise<OpenCall | undefined> {
    const found = await this.getText(this.markerKey(callId));
    if (!found) return undefined;
    let body: { room_name?: unknown; last_fact_ms?: unknown };
    try {
      body = JSON.parse(found.text) as typeof body;
    } catch {
      // Unreadable: let the record decide (its last fact is checked next).
      return { callId, lastFactAtMs: Number.NEGATIVE_INFINITY };
    }
    return {
      callId,
      ...(typeof body.room_name === 'string' ? { roomName: body.room_name } : {}),
      lastFactAtMs: typeof body.last_fact_ms === 'number' ? body.last_fact_ms : Number.NEGATIVE_INFINITY,
    };
  }

  /** The candidate as its record has it now: undefined when final (its marker is then removed) or no longer quiet. */
  private async confirmOpen(candidate: OpenCall, quietSinceMs: number): Promise<OpenCall | undefined> {
    const head = await this.head(this.recordKey(candidate.callId));
    if (!head) return undefined;
    if (head.metadata[FINAL_META] === '1') {
      // A marker left behind by a writer that lost a race with the final write.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.markerKey(candidate.callId) }));
      return undefined;
    }
    const lastFactAtMs = Number(head.metadata[LAST_FACT_META]);
    if (!Number.isFinite(lastFactAtMs) || lastFactAtMs >= quietSinceMs) return undefined;
    return { ...candidate, lastFactAtMs };
  }

  /**
   * A page of calls from the index: ListObjectsV2 on the scope's prefix from StartAfter (the
   * cursor's name or the window's end, whichever is later) down to the window's start, the
   * entries' summaries fetched in parallel and filtered.
   *
   * Scales with what the index narrows: the time window (a key range) and the room or number (a
   * prefix of its own); without other filters a page is one LIST (limit + 1 keys) and `limit`
   * GETs. Direction, answered and status are filtered after reading: a rare one reads many
   * entries (1 000 per LIST) per page.
   */
  override async queryCalls(query: CallQuery): Promise<CallPage> {
    const plan = planQuery(query);
    return this.guard('list calls', async () => {
      const prefix = `${LIST_PREFIX}${plan.scope}/`;
      let startAfter = plan.startAfter === undefined ? undefined : `${prefix}${plan.startAfter}`;
      const next = async (want: number): Promise<NameBatch> => {
        // An exact plan takes every entry, so one more than it needs tells whether more follow.
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: plan.exact ? Math.min(1000, want + 1) : 1000, ...(startAfter === undefined ? {} : { StartAfter: startAfter }) }),
        );
        const names: string[] = [];
        for (const { Key: key = '' } of page.Contents ?? []) {
          startAfter = key;
          const name = key.slice(prefix.length);
          if (plan.lastStartPart !== undefined && name.slice(0, 13) > plan.lastStartPart) return { names, last: true };
          names.push(name);
        }
        return { names, last: !page.IsTruncated || names.length === 0 };
      };
      const read = (names: string[]) =>
        mapLimit(names, QUERY_PARALLEL, async (name) => {
          const found = await this.getText(`${prefix}${name}`);
          return found ? entrySummary(found.text, name) : undefined; // gone meanwhile: the call moved
        });
      return collectPage(plan, next, read, QUERY_PARALLEL);
    });
  }

  async close(): Promise<void> {
    // The client is shared per process (functions/shared/s3-client.ts) and outlives one backend.
  }
}

function previousSummary(record: RecordObject): PreviousSummary {
  return { summary: record.summary === undefined ? undefined : JSON.stringify(record.summary), summaryVersion: record.summary_version ?? record.version };
}

function byLastFact(a: OpenCall, b: OpenCall): number {
  return a.lastFactAtMs - b.lastFactAtMs || (a.callId < b.callId ? -1 : a.callId > b.callId ? 1 : 0);
}
