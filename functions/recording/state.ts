/**
 * Per-call recording state, kept as small JSON objects in the recordings bucket under
 * `<prefix>/<callId>/`. Each fact has its own object and is written by one party only:
 *
 *   call.json     the recording key, written when the call is first seen
 *   egress.json   the egress id, written by the start once LiveKit accepted it
 *   discard.json  written by the discard of an unanswered call
 *   result.json   the egress outcome (from egress_ended, from polling, or a start failure)
 *
 * Separate objects mean no read-modify-write races: the start writes egress.json and then
 * reads discard.json, the discard writes discard.json and then reads egress.json, so with
 * S3's read-after-write consistency at least one of them sees the other and stops the egress.
 * The state is independent of the metadata location, so a recording of an unanswered call
 * is discarded even when SAVE_METADATA=false.
 */
import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/config.ts';
import { CALL_ID_PATTERN } from '../contract/snapshot.ts';
import { s3Client } from '../shared/s3-client.ts';
import { RecordingStateError } from './errors.ts';
import type { RecordingStatus } from './status.ts';

export interface CallFact {
  key: string;
  bucket: string;
  roomName: string;
  seenAtMs: number;
}

export interface EgressFact {
  egressId: string;
  key: string;
  bucket: string;
  startedAtMs: number;
}

export interface DiscardFact {
  key: string;
  bucket: string;
  reason: string;
  atMs: number;
}

export interface ResultFact {
  status: RecordingStatus;
  egressId?: string;
  error?: string;
  sizeBytes?: number;
  durationMs?: number;
  atMs: number;
}

export interface RecordingFacts {
  call?: CallFact;
  egress?: EgressFact;
  discard?: DiscardFact;
  result?: ResultFact;
}

type FactName = keyof RecordingFacts;

export interface RecordingStateStore {
  load(callId: string): Promise<RecordingFacts>;
  put<K extends FactName>(callId: string, name: K, fact: NonNullable<RecordingFacts[K]>): Promise<void>;
}

export class S3RecordingStateStore implements RecordingStateStore {
  private readonly settings: S3Settings;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(settings: S3Settings, prefix: string) {
    if (!settings.bucket) throw new RecordingStateError('no recordings bucket is set (AWS_S3_BUCKET or MINIO_BUCKET)');
    this.settings = settings;
    this.bucket = settings.bucket;
    this.prefix = prefix;
  }

  private key(callId: string, name: FactName): string {
    if (!CALL_ID_PATTERN.test(callId)) throw new RecordingStateError('call id is not usable as a key');
    return `${this.prefix}/${callId}/${name}.json`;
  }

  private async get(callId: string, name: FactName): Promise<unknown> {
    try {
      const response = await s3Client(this.settings).send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(callId, name) }));
      const text = await response.Body?.transformToString('utf8');
      return text ? (JSON.parse(text) as unknown) : undefined;
    } catch (cause) {
      if (cause instanceof NoSuchKey || (cause as { name?: string }).name === 'NoSuchKey') return undefined;
      if (cause instanceof SyntaxError) return undefined;
      throw new RecordingStateError(`could not read recording state ${name}`, cause);
    }
  }

  async load(callId: string): Promise<RecordingFacts> {
    const names: FactName[] = ['call', 'egress', 'discard', 'result'];
    const values = await Promise.all(names.map((name) => this.get(callId, name)));
    const facts: RecordingFacts = {};
    names.forEach((name, i) => {
      const value = values[i];
      if (value && typeof value === 'object') (facts as Record<string, unknown>)[name] = value;
    });
    return facts;
  }

  async put<K extends FactName>(callId: string, name: K, fact: NonNullable<RecordingFacts[K]>): Promise<void> {
    try {
      await s3Client(this.settings).send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.key(callId, name), Body: JSON.stringify(fact), ContentType: 'application/json' }),
      );
    } catch (cause) {
      throw new RecordingStateError(`could not write recording state ${name}`, cause);
    }
  }

  /** Test helper and cleanup: removes all facts of a call. */
  async clear(callId: string): Promise<void> {
    await Promise.all(
      (['call', 'egress', 'discard', 'result'] as const).map((name) =>
        s3Client(this.settings).send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(callId, name) })),
      ),
    );
  }
}

/** In-memory store for the embedded default's unit tests and single-process use. */
export class MemoryRecordingStateStore implements RecordingStateStore {
  readonly facts = new Map<string, RecordingFacts>();
  async load(callId: string): Promise<RecordingFacts> {
    return structuredClone(this.facts.get(callId) ?? {});
  }
  async put<K extends FactName>(callId: string, name: K, fact: NonNullable<RecordingFacts[K]>): Promise<void> {
    const current = this.facts.get(callId) ?? {};
    current[name] = structuredClone(fact);
    this.facts.set(callId, current);
  }
}
