/**
 * S3 / MinIO backend: `s3://<bucket>/<room>/<timestamp>/call_<kind>_<room>_<timestamp>.json`,
 * in the recording's folder when the call has one. Writes are compare-and-swap on the
 * object's ETag (S3 conditional writes), so concurrent Lambdas can never let an older
 * snapshot replace a newer one.
 */
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Settings } from '../config/config.ts';
import { s3Client } from '../shared/s3-client.ts';
import type { StorageBackend, StoredArtifact, WriteOutcome } from './backend.ts';
import { newestPerCall, spreadOutcomes } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { LocationError, StorageError, classifyDriverError } from './errors.ts';

const SEQ_META = 'calldata-seq';
const INDEX_PREFIX = '_calldata-index';
const MAX_CAS_ATTEMPTS = 6;
/** Bodies above this go through lib-storage's streaming multipart upload. */
const MULTIPART_BYTES = 5 * 1024 * 1024;
/** Versions this container wrote last, so the next snapshot of a call needs no HEAD first. */
const KNOWN_VERSIONS_MAX = 10_000;

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

export class S3Backend implements StorageBackend {
  readonly name = 's3';
  private readonly settings: S3Settings;
  private readonly bucket: string;
  private readonly known = new Map<string, { etag: string; seq: number }>();

  constructor(settings: S3Settings) {
    if (!settings.bucket) throw new LocationError('s3', 'location "s3" needs AWS_S3_BUCKET or MINIO_BUCKET');
    this.settings = settings;
    this.bucket = settings.bucket;
  }

  private get client() {
    return s3Client(this.settings);
  }

  private key(record: ArtifactRecord): string {
    const file = record.kind === 'metadata' ? record.paths.metadataFile : record.paths.transcriptionFile;
    return `${record.paths.folder}/${file}`;
  }

  private async head(key: string): Promise<{ etag: string; seq: number } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { etag: head.ETag ?? '', seq: Number(head.Metadata?.[SEQ_META] ?? -1) };
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  private async put(key: string, body: string, seq: number, condition: { IfMatch: string } | { IfNoneMatch: '*' }): Promise<string> {
    const bytes = Buffer.from(body, 'utf8');
    const params = { Bucket: this.bucket, Key: key, ContentType: 'application/json; charset=utf-8', Metadata: { [SEQ_META]: String(seq) }, ...condition };
    if (bytes.length > MULTIPART_BYTES) {
      const result = await new Upload({ client: this.client, params: { ...params, Body: Readable.from([bytes]) } }).done();
      return result.ETag ?? '';
    }
    const result = await this.client.send(new PutObjectCommand({ ...params, Body: bytes }));
    return result.ETag ?? '';
  }

  private remember(key: string, version: { etag: string; seq: number }): void {
    this.known.delete(key);
    this.known.set(key, version);
    if (this.known.size > KNOWN_VERSIONS_MAX) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
  }

  /**
   * Compare-and-swap. The first attempt trusts what this container knows (the version it
   * wrote last, or "absent" for a key it never saw): one round trip in the common case.
   * A 412 means someone else wrote: HEAD and decide again.
   */
  private async writeOne(record: ArtifactRecord): Promise<WriteOutcome> {
    const key = this.key(record);
    const location = `s3://${this.bucket}/${key}`;
    const body = JSON.stringify(record.document, null, 2);
    let current: { etag: string; seq: number } | undefined = this.known.get(key);
    let verified = false;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      if (current && current.seq >= record.seq) {
        if (verified) return { location, applied: false };
        current = await this.head(key);
        verified = true;
        continue;
      }
      try {
        const creating = current === undefined;
        const [etag] = await Promise.all([
          this.put(key, body, record.seq, current ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
          // The index names the same key for every version of a call: written with the first one.
          creating ? this.writeIndex(record, key) : undefined,
        ]);
        this.remember(key, { etag, seq: record.seq });
        return { location, applied: true };
      } catch (error) {
        // Someone else wrote between our read and our write: read again and decide again.
        if (status(error) !== 412 && status(error) !== 409) throw error;
        current = await this.head(key);
        verified = true;
      }
    }
    throw new StorageError(`s3: ${key} kept changing under concurrent writes`, { backend: this.name, retryable: true });
  }

  private async writeIndex(record: ArtifactRecord, key: string): Promise<void> {
    await this.put(`${INDEX_PREFIX}/${record.kind}/${record.callId}`, key, record.seq, { IfNoneMatch: '*' }).catch((error: unknown) => {
      if (status(error) !== 412 && status(error) !== 409) throw error;
    });
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    const { winners, winnerIndex } = newestPerCall(records);
    try {
      const outcomes = await Promise.all(winners.map((record) => this.writeOne(record)));
      return spreadOutcomes(records, winnerIndex, outcomes);
    } catch (error) {
      throw this.classify('write', error);
    }
  }

  private classify(action: string, error: unknown): StorageError {
    const code = status(error);
    if (code !== undefined && (code >= 500 || code === 429)) return new StorageError(`s3: ${action} failed`, { backend: this.name, retryable: true, cause: error });
    return classifyDriverError(this.name, action, error);
  }

  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    try {
      const index = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: `${INDEX_PREFIX}/${kind}/${callId}` }));
      const key = (await index.Body?.transformToString('utf8')) ?? '';
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const document: unknown = JSON.parse((await object.Body?.transformToString('utf8')) ?? 'null');
      return { seq: Number(object.Metadata?.[SEQ_META] ?? -1), document, location: `s3://${this.bucket}/${key}` };
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw this.classify('read', error);
    }
  }

  async close(): Promise<void> {
    // The client is shared per process (functions/shared/s3-client.ts) and outlives one backend.
  }
}
