/**
 * The recording function's decisions, free of LiveKit, S3 and SQS (functions/recording/ does
 * the I/O): how LiveKit's egress view becomes an egress fact, what the function reports as
 * facts, where a discarded recording waits, and what the per-call markers allow.
 *
 * The recording function never reads or writes call records. It executes the commands the
 * persist step issues (functions/domain/recording-plan.ts) and contributes what happened as
 * fact messages, each from a writer of its own (`recording:<callId>:<action>:<id>`), so that
 * a retried report merges into the record exactly once.
 *
 * Per call it keeps a few marker objects in the recordings bucket, for what commands running
 * at the same time (two Lambdas, or two background tasks) must know of each other:
 *
 *   start claim  one start at a time: a duplicate start command neither starts a second
 *                egress nor waits; a claim older than the start lease is abandoned
 *   egress       the egress LiveKit accepted (written before the start looks for a discard)
 *   discard      a discard was asked (written before the discard looks for an egress), so a
 *                start and a discard that overlap always see each other
 *   restore      an answer was seen: from then on no discard moves the recording out
 *   move         a discard's move in flight: while one exists, a restore keeps the
 *                quarantined copy (the purge removes it after DISCARD_HOLD_MS)
 */
import { createHash } from 'node:crypto';
import { MESSAGE_VERSION, WRITER_PATTERN, type CallFacts, type EgressFact, type FactMessage } from '../contract/facts.ts';
import { EGRESS_STATUSES, TERMINAL_EGRESS_STATUSES, type EgressStatus, type RecordingAction } from '../contract/vocabulary.ts';
import { DISCARD_PREFIX } from './recording-plan.ts';

// ---------------------------------------------------------------------------------------------
// LiveKit's egress, as plain structure (the SDK's EgressInfo fits it).

/** Integers LiveKit sends as int64: bigint from the SDK, number or string from JSON. */
export type Int64 = bigint | number | string;

export interface FileInfoView {
  filename?: string;
  location?: string;
  /** Bytes. */
  size?: Int64;
  /** Nanoseconds. */
  duration?: Int64;
}

export interface EgressInfoView {
  egressId?: string;
  /** The room SID: the call id. */
  roomId?: string;
  roomName?: string;
  /** LiveKit EgressStatus: STARTING 0, ACTIVE 1, ENDING 2, COMPLETE 3, FAILED 4, ABORTED 5, LIMIT_REACHED 6 (or its name). */
  status?: number | string;
  error?: string;
  /** Nanoseconds since the epoch. */
  updatedAt?: Int64;
  endedAt?: Int64;
  startedAt?: Int64;
  fileResults?: readonly FileInfoView[];
  /** Deprecated single result: `{ case: 'file', value: FileInfo }`. */
  result?: { case?: string; value?: unknown };
  /** The request the egress was started with (its file output names the key and bucket). */
  request?: { case?: string; value?: unknown };
}

function toBigInt(value: Int64 | undefined): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    if (typeof value === 'bigint') return value;
    if (typeof value === 'number') return Number.isFinite(value) ? BigInt(Math.trunc(value)) : undefined;
    if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return BigInt(value.trim());
  } catch {
    return undefined;
  }
  return undefined;
}

/** A non-negative safe integer from an int64, or undefined. */
export function safeInt(value: Int64 | undefined, divisor = 1n): number | undefined {
  const big = toBigInt(value);
  if (big === undefined || big < 0n) return undefined;
  const result = Number(big / divisor);
  return Number.isSafeInteger(result) ? result : undefined;
}

/** Nanoseconds since the epoch → milliseconds (undefined for 0 / missing). */
export function nsToMs(value: Int64 | undefined): number | undefined {
  const ms = safeInt(value, 1_000_000n);
  return ms === undefined || ms === 0 ? undefined : ms;
}

/** LiveKit's EgressStatus (number, or name with or without `EGRESS_`) in the metadata's words. */
export function egressStatusOf(status: number | string | undefined): EgressStatus | undefined {
  if (typeof status === 'number') return Number.isInteger(status) ? EGRESS_STATUSES[status] : undefined;
  if (typeof status === 'string') {
    const name = status.trim().replace(/^EGRESS_/i, '').toLowerCase();
    if (/^\d+$/.test(name)) return EGRESS_STATUSES[Number(name)];
    return (EGRESS_STATUSES as readonly string[]).includes(name) ? (name as EgressStatus) : undefined;
  }
  return undefined;
}

/** True once the egress has stopped producing and uploading: its file, if any, is final. */
export function egressOver(status: EgressStatus | undefined): boolean {
  return status !== undefined && TERMINAL_EGRESS_STATUSES.has(status);
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

function fileOf(info: EgressInfoView): FileInfoView | undefined {
  const [first] = info.fileResults ?? [];
  if (first) return first;
  return info.result?.case === 'file' ? (record(info.result.value) as FileInfoView | undefined) : undefined;
}

/** The key and bucket the egress was asked to write (room composite with a file output to S3). */
function requestedOutput(info: EgressInfoView): { key?: string; bucket?: string } {
  const request = record(info.request?.value);
  if (!request) return {};
  const outputs = Array.isArray(request.fileOutputs) ? request.fileOutputs : [];
  const legacy = record(request.output)?.case === 'file' ? record(record(request.output)?.value) : undefined;
  const file = record(outputs[0]) ?? legacy ?? record(request.file);
  if (!file) return {};
  const output = record(file.output);
  const s3 = output?.case === 's3' ? record(output.value) : record(file.s3);
  return {
    key: typeof file.filepath === 'string' && file.filepath ? file.filepath : undefined,
    bucket: typeof s3?.bucket === 'string' && s3.bucket ? s3.bucket : undefined,
  };
}

/** `s3://bucket/key` → key (LiveKit's `location`, when `filename` is missing). */
function keyOfLocation(location: string | undefined): string | undefined {
  const match = location ? /^s3:\/\/[^/]+\/(.+)$/.exec(location) : null;
  return match?.[1];
}

/**
 * The egress fact an EgressInfo states: status, the file's key, size and duration (ns → ms),
 * the error. `fallback` fills what the info does not say (the command's key and bucket, and
 * the time when the info carries none).
 */
export function egressFactOf(info: EgressInfoView, fallback: { atMs: number; key?: string; bucket?: string }): EgressFact | undefined {
  const status = egressStatusOf(info.status);
  if (!status) return undefined;
  const file = fileOf(info);
  const requested = requestedOutput(info);
  const key = file?.filename || keyOfLocation(file?.location) || requested.key || fallback.key;
  const bucket = requested.bucket ?? fallback.bucket;
  const atMs = nsToMs(info.updatedAt) ?? nsToMs(info.endedAt) ?? nsToMs(info.startedAt) ?? fallback.atMs;
  const fact: EgressFact = { status, atMs };
  if (key) fact.key = key.slice(0, 1024);
  if (bucket && bucket.length <= 63) fact.bucket = bucket;
  if (info.error) fact.error = info.error.slice(0, 2_000);
  if (file && egressOver(status)) {
    const size = safeInt(file.size);
    const durationMs = safeInt(file.duration, 1_000_000n);
    if (size !== undefined) fact.sizeBytes = size;
    if (durationMs !== undefined) fact.durationMs = durationMs;
  }
  return fact;
}

// ---------------------------------------------------------------------------------------------
// What the recording function reports.

/**
 * The writer of one report: `recording:<callId>:<action>:<id>`, where `id` is the egress id
 * (a fact that is the same however often it is reported) or a fresh uuid. Over-long call ids
 * are shortened to a hash so the writer fits WRITER_PATTERN.
 */
export function recorderWriter(callId: string, action: RecordingAction, id: string): string {
  const safeId = id.replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 64) || 'x';
  let writer = `recording:${callId}:${action}:${safeId}`;
  if (!WRITER_PATTERN.test(writer)) {
    const hash = createHash('sha256').update(callId, 'utf8').digest('hex').slice(0, 32);
    writer = `recording:${hash}:${action}:${safeId}`;
  }
  return writer;
}

/** A fact message of the recording function (never cumulative: each report is its own writer). */
export function recorderFact(callId: string, action: RecordingAction, id: string, atMs: number, facts: CallFacts): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: 'recording',
    callId,
    writer: recorderWriter(callId, action, id),
    seq: 1,
    cumulative: false,
    sentAtMs: atMs,
    facts,
  };
}

/** The egress (started, or its result) as a report. The same egress and action give the same writer. */
export function egressReport(callId: string, action: RecordingAction, egressId: string, fact: EgressFact): FactMessage {
  return recorderFact(callId, action, egressId, fact.atMs, { recording: { egress: { [egressId]: fact } } });
}

// ---------------------------------------------------------------------------------------------
// Where discarded recordings wait, and what the markers allow.

/** Where a discarded recording waits for the purge: `_calldata-discarded/<key>` in the same bucket. */
export function quarantineKey(key: string): string {
  return `${DISCARD_PREFIX}/${key.replace(/^\/+/, '')}`;
}

/** What the function knows of a call from its marker objects. */
export interface CallMarkers {
  claim?: { token: string; atMs: number };
  egress?: { egressId: string; key: string; bucket: string; startedAtMs: number };
  discard?: { key: string; bucket: string; atMs: number };
  restore?: { atMs: number };
}

/** The recording must leave the call's folder: a discard was asked and no answer was seen since. */
export function mustStayDiscarded(markers: CallMarkers): boolean {
  return markers.discard !== undefined && markers.restore === undefined;
}

export type StartDecision =
  /** An egress exists: report it again (the report may have been lost) and start nothing. */
  | 'report'
  /** The call was discarded before the start ran: start nothing. */
  | 'discarded'
  /** Claim the start, then start the egress. */
  | 'claim';

export function startDecision(markers: CallMarkers): StartDecision {
  if (markers.egress) return 'report';
  if (mustStayDiscarded(markers)) return 'discarded';
  return 'claim';
}

/**
 * How long a start may hold its claim: every attempt's timeout plus the back-offs between them,
 * and a margin. A claim older than this belongs to a start that died.
 */
export function startLeaseMs(settings: { egressAttempts: number; egressTimeoutMs: number; egressBackoffMs: number }): number {
  let total = 0;
  for (let attempt = 1; attempt <= settings.egressAttempts; attempt++) {
    total += settings.egressTimeoutMs;
    if (attempt < settings.egressAttempts) total += settings.egressBackoffMs * 2 ** (attempt - 1);
  }
  return total + 30_000;
}

/** The egress ids a finish or discard acts on: the command's and the one the markers know, once each. */
export function egressIdsFor(commandIds: readonly string[], markers: CallMarkers): string[] {
  return [...new Set([...commandIds, ...(markers.egress ? [markers.egress.egressId] : [])].filter((id) => id.length > 0))];
}
