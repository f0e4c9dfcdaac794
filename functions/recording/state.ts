/**
 * The per-call marker objects of the recording function, small JSON objects in the recordings
 * bucket under `<prefix>/<callId>/` (what each one means: functions/domain/recorder.ts):
 *
 *   start.json         the start claim, created only when absent (S3 conditional write) and
 *                      taken over only when older than the start lease
 *   egress.json        the egress LiveKit accepted
 *   discard.json       a discard was asked
 *   restore.json       an answer was seen after a discard
 *   moves/<token>.json a discard's move in flight
 *
 * They are not the call's record (the record is the merge of facts, kept by the persist step);
 * they exist only so that commands running at the same time see each other: the start writes
 * egress.json and then reads discard.json, the discard writes discard.json and then reads
 * egress.json, so with S3's read-after-write consistency at least one of them sees the other.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/config.ts';
import { CALL_ID_PATTERN } from '../contract/facts.ts';
import type { CallMarkers } from '../domain/recorder.ts';
import { s3Client } from '../shared/s3-client.ts';
import { RecordingStateError } from './errors.ts';

export type EgressMarker = NonNullable<CallMarkers['egress']> & { status: string };
export type ClaimMarker = NonNullable<CallMarkers['claim']>;
export type DiscardMarker = NonNullable<CallMarkers['discard']>;
export type RestoreMarker = NonNullable<CallMarkers['restore']>;

export interface StoredMarkers extends CallMarkers {
  egress?: EgressMarker;
}

export interface RecordingStateStore {
  load(callId: string): Promise<StoredMarkers>;
  hasRestore(callId: string): Promise<boolean>;
  /** Creates the start claim, or takes over one older than `leaseMs`. True when the caller now holds it. */
  claimStart(callId: string, claim: ClaimMarker, leaseMs: number): Promise<boolean>;
  /** Gives a claim up (a failed start), when it is still the caller's. */
  releaseStart(callId: string, token: string): Promise<void>;
  putEgress(callId: string, egress: EgressMarker): Promise<void>;
  putDiscard(callId: string, discard: DiscardMarker): Promise<void>;
  putRestore(callId: string, restore: RestoreMarker): Promise<void>;
  beginMove(callId: string, token: string): Promise<void>;
  endMove(callId: string, token: string): Promise<void>;
  movesInFlight(callId: string): Promise<number>;
}

type Name = 'start' | 'egress' | 'discard' | 'restore';

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isMissing(error: unknown): boolean {
  return error instanceof NoSuchKey || (error as { name?: string })?.name === 'NoSuchKey' || (error as { name?: string })?.name === 'NotFound' || statusOf(error) === 404;
}

/** 412 (the condition failed) or 409 (a concurrent conditional write won). */
function lostCondition(error: unknown): boolean {
  const status = statusOf(error);
  return status === 412 || status === 409 || /PreconditionFailed|ConditionalRequestConflict/.test((error as { name?: string })?.name ?? '');
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

  private folder(callId: string): string {
    if (!CALL_ID_PATTERN.test(callId)) throw new RecordingStateError('call id is not usable as a key');
    return `${this.prefix}/${callId}`;
  }

  private key(callId: string, name: Name): string {
    return `${this.folder(callId)}/${name}.json`;
  }

  private async get(callId: string, name: Name): Promise<{ value: unknown; etag?: string } | undefined> {
    try {
      const response = await s3Client(this.settings).send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(callId, name) }));
      const text = await response.Body?.transformToString('utf8');
      try {
        return { value: text ? (JSON.parse(text) as unknown) : undefined, etag: response.ETag };
      } catch {
        return { value: undefined, etag: response.ETag };
      }
    } catch (cause) {
      if (isMissing(cause)) return undefined;
      throw new RecordingStateError(`could not read recording state ${name}`, cause);
    }
  }

  private async put(key: string, value: unknown, condition: { IfNoneMatch?: string; IfMatch?: string } = {}): Promise<boolean> {
    try {
      await s3Client(this.settings).send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: JSON.stringify(value), ContentType: 'application/json', ...condition }));
      return true;
    } catch (cause) {
      if ((condition.IfMatch || condition.IfNoneMatch) && lostCondition(cause)) return false;
      throw new RecordingStateError(`could not write recording state ${key.slice(key.lastIndexOf('/') + 1)}`, cause);
    }
  }

  private async remove(key: string): Promise<void> {
    try {
      await s3Client(this.settings).send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (cause) {
      if (isMissing(cause)) return;
      throw new RecordingStateError('could not delete recording state', cause);
    }
  }

  async load(callId: string): Promise<StoredMarkers> {
    const names: Name[] = ['start', 'egress', 'discard', 'restore'];
    const values = await Promise.all(names.map((name) => this.get(callId, name)));
    const markers: Record<string, unknown> = {};
    names.forEach((name, i) => {
      const value = values[i]?.value;
      if (value && typeof value === 'object') markers[name === 'start' ? 'claim' : name] = value;
    });
    return markers as StoredMarkers;
  }

  async hasRestore(callId: string): Promise<boolean> {
    return (await this.get(callId, 'restore')) !== undefined;
  }

  async claimStart(callId: string, claim: ClaimMarker, leaseMs: number): Promise<boolean> {
    const key = this.key(callId, 'start');
    if (await this.put(key, claim, { IfNoneMatch: '*' })) return true;
    const current = await this.get(callId, 'start');
    if (!current) return this.put(key, claim, { IfNoneMatch: '*' });
    const atMs = (current.value as { atMs?: unknown } | undefined)?.atMs;
    const stale = typeof atMs !== 'number' || atMs + leaseMs <= claim.atMs;
    if (!stale || !current.etag) return false;
    return this.put(key, claim, { IfMatch: current.etag });
  }

  async releaseStart(callId: string, token: string): Promise<void> {
    const current = await this.get(callId, 'start');
    if ((current?.value as { token?: unknown } | undefined)?.token === token) await this.remove(this.key(callId, 'start'));
  }

  async putEgress(callId: string, egress: EgressMarker): Promise<void> {
    await this.put(this.key(callId, 'egress'), egress);
  }

  async putDiscard(callId: string, discard: DiscardMarker): Promise<void> {
    await this.put(this.key(callId, 'discard'), discard);
  }

  async putRestore(callId: string, restore: RestoreMarker): Promise<void> {
    await this.put(this.key(callId, 'restore'), restore);
  }

  async beginMove(callId: string, token: string): Promise<void> {
    await this.put(`${this.folder(callId)}/moves/${token}.json`, { token });
  }

  async endMove(callId: string, token: string): Promise<void> {
    await this.remove(`${this.folder(callId)}/moves/${token}.json`);
  }

  async movesInFlight(callId: string): Promise<number> {
    try {
      const response = await s3Client(this.settings).send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.folder(callId)}/moves/`, MaxKeys: 10 }));
      return response.KeyCount ?? response.Contents?.length ?? 0;
    } catch (cause) {
      throw new RecordingStateError('could not list recording moves', cause);
    }
  }

  /** Test helper and cleanup: removes every marker of a call. */
  async clear(callId: string): Promise<void> {
    await Promise.all((['start', 'egress', 'discard', 'restore'] as const).map((name) => this.remove(this.key(callId, name))));
  }
}

/** In-memory markers for unit tests; `beforeOp` lets a test interleave another command at any step. */
export class MemoryRecordingStateStore implements RecordingStateStore {
  readonly markers = new Map<string, StoredMarkers>();
  readonly moves = new Map<string, Set<string>>();
  beforeOp: ((op: string, callId: string) => Promise<void>) | undefined;

  private async op(op: string, callId: string): Promise<StoredMarkers> {
    if (this.beforeOp) await this.beforeOp(op, callId);
    let markers = this.markers.get(callId);
    if (!markers) {
      markers = {};
      this.markers.set(callId, markers);
    }
    return markers;
  }

  async load(callId: string): Promise<StoredMarkers> {
    return structuredClone(await this.op('load', callId));
  }
  async hasRestore(callId: string): Promise<boolean> {
    return (await this.op('hasRestore', callId)).restore !== undefined;
  }
  async claimStart(callId: string, claim: ClaimMarker, leaseMs: number): Promise<boolean> {
    const markers = await this.op('claimStart', callId);
    if (markers.claim && markers.claim.atMs + leaseMs > claim.atMs) return false;
    markers.claim = { ...claim };
    return true;
  }
  async releaseStart(callId: string, token: string): Promise<void> {
    const markers = await this.op('releaseStart', callId);
    if (markers.claim?.token === token) delete markers.claim;
  }
  async putEgress(callId: string, egress: EgressMarker): Promise<void> {
    (await this.op('putEgress', callId)).egress = { ...egress };
  }
  async putDiscard(callId: string, discard: DiscardMarker): Promise<void> {
    (await this.op('putDiscard', callId)).discard = { ...discard };
  }
  async putRestore(callId: string, restore: RestoreMarker): Promise<void> {
    (await this.op('putRestore', callId)).restore = { ...restore };
  }
  async beginMove(callId: string, token: string): Promise<void> {
    await this.op('beginMove', callId);
    const set = this.moves.get(callId) ?? new Set<string>();
    set.add(token);
    this.moves.set(callId, set);
  }
  async endMove(callId: string, token: string): Promise<void> {
    await this.op('endMove', callId);
    this.moves.get(callId)?.delete(token);
  }
  async movesInFlight(callId: string): Promise<number> {
    await this.op('movesInFlight', callId);
    return this.moves.get(callId)?.size ?? 0;
  }
}
