/**
 * Reading calls back for people: the list, one call's documents, a link to its recording and
 * the overview's figures. Shared by `calldata calls …`, `calldata browse` and the package's
 * `calldata/storage` entry (functions/api/storage.ts). It sits above storage and the domain and
 * below the CLI: it imports both, and nothing of the CLI.
 *
 * Where calls are read from: the primary location of the configuration (the one the persist
 * step writes first: METADATA_LOCATION when SAVE_METADATA is on, else TRANSCRIPTION_LOCATION when
 * SAVE_TRANSCRIPTION is on); with neither flag on, METADATA_LOCATION — reading never needs the
 * write flags. A transcript comes from TRANSCRIPTION_LOCATION when that is another location.
 * Every location keeps the whole record, so a list works from either.
 */
import { resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import type { CallSummary, DocumentKind, MetadataDocument, TranscriptionDocument } from '../contract/record.ts';
import { computeOverview, isCallId, metadataOf, overviewSince, recordingObject, transcriptionInOrder, type Overview } from '../domain/calls.ts';
import { recordModel } from '../domain/model.ts';
import { locationPlan } from '../domain/persist.ts';
import { summarize } from '../domain/render.ts';
import { redactUrl } from '../shared/redact.ts';
import type { CallPage, CallQuery, StorageBackend } from '../storage/backend.ts';
import { backendFor, backendKind } from '../storage/select.ts';
import { CallDataError, describeError } from '../errors.ts';

/** No call with this id in the location read. */
export class CallNotFoundError extends CallDataError {
  constructor(callId: string, where: string) {
    super(`no call ${callId} in ${where}`);
  }
}

/** The call has no recording to link to; the message says why. */
export class NoRecordingError extends CallDataError {}

export interface CallDetails {
  callId: string;
  /** Where the record is (no credentials). */
  location: string;
  summary: CallSummary | undefined;
  /** The stored metadata document, or the one rendered from the record when this location keeps none. */
  metadata: MetadataDocument | undefined;
  transcription: TranscriptionDocument | undefined;
  /** Where the transcript was read from, when it was found. */
  transcriptionLocation: string | undefined;
  /** Things the reader could not do (a transcript location unreachable), one line each. */
  notes: string[];
  /** The recording object, when the record names one. */
  recording: { bucket: string; key: string } | undefined;
}

export interface RecordingLink {
  url: string;
  bucket: string;
  key: string;
  expiresInS: number;
}

/** Presigned URLs stay valid this long. */
export const RECORDING_URL_TTL_S = 15 * 60;

/** A location as people may see it: URLs without passwords, folders as absolute paths. */
export function shownLocation(location: string): string {
  if (location === 's3') return 's3';
  return backendKind(location) === 'local' ? resolve(location) : redactUrl(location);
}

/** The location calls are listed from (see the file comment). */
export function listLocation(config: Config): string {
  // The persist step's primary location when a SAVE_* flag names one (the recordings bucket,
  // primary when only CALL_RECORDING is on, keeps records without documents: not a list to read).
  const primary = config.saveMetadata || config.saveTranscription ? locationPlan(config)[0] : undefined;
  return primary?.location ?? config.metadataLocation;
}

export class CallReader {
  readonly config: Config;
  readonly location: string;
  readonly where: string;
  private readonly model;

  constructor(config: Config) {
    this.config = config;
    this.location = listLocation(config);
    this.where = shownLocation(this.location);
    // The same model as the pipeline's (functions/wiring.ts): with CALLDATA_PRICE_TABLE, a rendered document has its estimated cost.
    this.model = recordModel(config.timezone, { priceTable: config.priceTable });
  }

  private documentsAt(location: string): DocumentKind[] {
    const kinds: DocumentKind[] = [];
    if (location === this.config.metadataLocation) kinds.push('metadata');
    if (location === this.config.transcriptionLocation) kinds.push('transcription');
    return kinds;
  }

  private backend(location: string): Promise<StorageBackend> {
    return backendFor(location, { s3: this.config.s3, documents: this.documentsAt(location), model: this.model });
  }

  /** A page of calls, newest first. */
  async list(query: CallQuery): Promise<CallPage> {
    return (await this.backend(this.location)).queryCalls(query);
  }

  async exists(callId: string): Promise<boolean> {
    if (!isCallId(callId)) return false;
    return (await (await this.backend(this.location)).read(callId)) !== undefined;
  }

  /** One call's documents; throws CallNotFoundError when the location has no such call. */
  async show(callId: string): Promise<CallDetails> {
    if (!isCallId(callId)) throw new CallNotFoundError(callId, this.where);
    const stored = await (await this.backend(this.location)).read(callId);
    const summary = stored ? summarize(stored.state) : undefined;
    // A record no agent reported (a bare room_finished) is not a call anyone placed.
    if (!stored || !summary) throw new CallNotFoundError(callId, this.where);
    const notes: string[] = [];
    const metadata = metadataOf(stored, this.config.timezone, { priceTable: this.config.priceTable });
    let transcription = stored.documents.transcription;
    let transcriptionLocation = transcription ? stored.location : undefined;
    const other = this.config.transcriptionLocation;
    if (!transcription && other !== this.location) {
      try {
        const elsewhere = await (await this.backend(other)).read(callId);
        transcription = elsewhere?.documents.transcription;
        if (transcription) transcriptionLocation = elsewhere?.location;
      } catch (error) {
        notes.push(`the transcript could not be read from ${shownLocation(other)}: ${describeError(error)}`);
      }
    }
    return {
      callId,
      location: stored.location,
      summary,
      metadata,
      transcription: transcriptionInOrder(transcription),
      transcriptionLocation,
      notes,
      recording: summary.hasRecording ? recordingObject(metadata, this.config.s3.bucket) : undefined,
    };
  }

  /** A presigned GET URL (15 minutes) for the call's recording; NoRecordingError when there is none. */
  async recordingLink(details: CallDetails): Promise<RecordingLink> {
    const status = details.metadata?.recording_status;
    if (!details.recording) {
      const why = !details.summary?.answered ? 'it was not answered' : status ? `recording status: ${status}` : 'no recording was made';
      throw new NoRecordingError(`call ${details.callId} has no recording (${why})`);
    }
    const { bucket, key } = details.recording;
    const [{ GetObjectCommand, HeadObjectCommand }, { getSignedUrl }, { s3Client }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/s3-request-presigner'),
      import('../shared/s3-client.ts'),
    ]);
    const client = s3Client(this.config.s3);
    try {
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      const code = (error as { name?: string; $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (code === 404 || (error as Error).name === 'NotFound' || (error as Error).name === 'NoSuchKey') {
        throw new NoRecordingError(`the recording of call ${details.callId} is not in the bucket (yet): s3://${bucket}/${key}${status ? ` (recording status: ${status})` : ''}`);
      }
      throw new CallDataError(`S3: could not check s3://${bucket}/${key}`, { cause: error });
    }
    const url = await getSignedUrl(
      client,
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(key.endsWith('.ogg') ? { ResponseContentType: 'audio/ogg' } : {}) }),
      { expiresIn: RECORDING_URL_TTL_S },
    );
    return { url, bucket, key, expiresInS: RECORDING_URL_TTL_S };
  }

  /** The overview's figures from at most `bound` calls of the last `days` days. */
  async overview(options: { days: number; bound: number; nowMs?: number }): Promise<Overview> {
    const nowMs = options.nowMs ?? Date.now();
    const sinceMs = overviewSince(nowMs, this.config.timezone, options.days);
    const calls: CallSummary[] = [];
    let cursor: string | undefined;
    let truncated = false;
    do {
      const page = await this.list({ sinceMs, limit: Math.min(250, options.bound - calls.length), ...(cursor ? { cursor } : {}) });
      calls.push(...page.calls);
      cursor = page.cursor;
      if (cursor && calls.length >= options.bound) truncated = true;
    } while (cursor && calls.length < options.bound);
    return computeOverview(calls, { timezone: this.config.timezone, nowMs, days: options.days, bound: options.bound, truncated });
  }
}
