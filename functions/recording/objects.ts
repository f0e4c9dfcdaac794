/**
 * The recordings' objects in the bucket: what a discard and a restore do to them. A move is a
 * copy then a delete (S3 has no rename); the recorder orders those steps around its markers so
 * that a discard and a restore running at the same time never lose the file (recorder.ts).
 */
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/config.ts';
import { s3Client } from '../shared/s3-client.ts';
import { RecordingObjectError } from './errors.ts';

export interface RecordingObjects {
  exists(bucket: string, key: string): Promise<boolean>;
  /** Copies `from` to `to` in the bucket. False when `from` does not exist. */
  copy(bucket: string, from: string, to: string): Promise<boolean>;
  /** Deletes the object (absent is fine). */
  delete(bucket: string, key: string): Promise<void>;
}

function isMissing(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return name === 'NoSuchKey' || name === 'NotFound' || status === 404;
}

/** CopySource is `bucket/key` with the key URL-encoded segment by segment. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

export class S3RecordingObjects implements RecordingObjects {
  private readonly settings: S3Settings;

  constructor(settings: S3Settings) {
    this.settings = settings;
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    try {
      await s3Client(this.settings).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (cause) {
      if (isMissing(cause)) return false;
      throw new RecordingObjectError('could not look for the recording object', cause);
    }
  }

  async copy(bucket: string, from: string, to: string): Promise<boolean> {
    try {
      await s3Client(this.settings).send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: copySource(bucket, from), MetadataDirective: 'COPY' }));
      return true;
    } catch (cause) {
      if (isMissing(cause)) return false;
      throw new RecordingObjectError('could not copy the recording object', cause);
    }
  }

  async delete(bucket: string, key: string): Promise<void> {
    try {
      await s3Client(this.settings).send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (cause) {
      if (isMissing(cause)) return;
      throw new RecordingObjectError('could not delete the recording object', cause);
    }
  }
}
