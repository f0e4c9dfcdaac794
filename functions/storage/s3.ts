/**
 * S3 / MinIO backend: `s3://<bucket>/<room>/<timestamp>/call_<kind>_<room>_<timestamp>.json`,
 * in the recording's folder when the call has one. Writes are compare-and-swap on the
 * object's ETag (S3 conditional writes), so concurrent Lambdas can never let an older
 * snapshot replace a newer one.
 */
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Settings } from '../config/config.ts';
import { s3Client } from '../shared/aws.ts';
import type { StorageBackend, StoredArtifact, WriteOutcome } from './backend.ts';
import { newestPerCall, spreadOutcomes } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { LocationError, StorageError, classifyDriverError } from './errors.ts';

const SEQ_META = 'calldata-seq';
const INDEX_PREFIX = '_calldata-index';
const MAX_CAS_ATTEMPTS = 6;

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

export class S3Backend implements StorageBackend {
  readonly name = 's3';
  private readonly settings: S3Settings;
  private readonly bucket: string;

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

  private async put(key: string, body: string, seq: number, condition: { IfMatch: string } | { IfNoneMatch: '*' }): Promise<void> {
    await new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: Readable.from([Buffer.from(body, 'utf8')]),
        ContentType: 'application/json; charset=utf-8',
        Metadata: { [SEQ_META]: String(seq) },
        ...condition,
      },
    }).done();
  }

  private async writeOne(record: ArtifactRecord): Promise<WriteOutcome> {
    const key = this.key(record);
    const location = `s3://${this.bucket}/${key}`;
    const body = JSON.stringify(record.document, null, 2);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const existing = await this.head(key);
      if (existing && existing.seq >= record.seq) return { location, applied: false };
      try {
        await this.put(key, body, record.seq, existing ? { IfMatch: existing.etag } : { IfNoneMatch: '*' });
        await this.put(`${INDEX_PREFIX}/${record.kind}/${record.callId}`, key, record.seq, { IfNoneMatch: '*' }).catch((error: unknown) => {
          // The index names the same key for every version of a call: already present is fine.
          if (status(error) !== 412) throw error;
        });
        return { location, applied: true };
      } catch (error) {
        // Someone else wrote between our read and our write: read again and decide again.
        if (status(error) === 412 || status(error) === 409) continue;
        throw error;
      }
    }
    throw new StorageError(`s3: ${key} kept changing under concurrent writes`, { backend: this.name, retryable: true });
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
    // The client is shared per process (functions/shared/aws.ts) and outlives one backend.
  }
}
