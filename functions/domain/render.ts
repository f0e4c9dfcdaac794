/**
 * How a call record becomes the spec's documents and paths. This is the one place TIMEZONE
 * formats anything: document times, transcript timestamps and the folder name.
 *
 * The folder is chosen once, when the record is first stored, and kept in the record's row;
 * metadata, transcript and recording all live in it. It is `<room slug>/<timestamp>` where the
 * timestamp is the start in TIMEZONE to the millisecond plus the whole call id, so folders sort
 * chronologically and no two calls share one.
 */
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';
import type { ConversationItem, EgressFact } from '../contract/facts.ts';
import type { CallState, CallSummary, DocumentKind, MetadataDocument, RenderedDocuments, TranscriptionDocument } from '../contract/record.ts';
import { CALL_STATUS, callStatusForEgress, isUnansweredStatus, TERMINAL_EGRESS_STATUSES, UNANSWERED, type RecordingStatus } from '../contract/vocabulary.ts';
import { DEVICE_NAME } from '../storage/names.ts';
import { egressProgress, isAnswered, isFinal } from './merge.ts';

const MAX_SLUG_BYTES = 96;
/** Call ids up to this length go into the folder whole; longer ones as a prefix plus a hash. */
const MAX_ID_IN_FOLDER = 64;

function zoneOf(timezone: string): string {
  return timezone === 'system' ? 'local' : timezone;
}

const HOUR_MS = 3_600_000;
/** Years 0000-9999: the range where the fast path's ISO text matches luxon's. */
const FAST_RANGE_MS = 253_402_300_799_999;
/** Zone offsets per (zone, hour): every stored time is formatted, and luxon's offset lookup is the costly part. */
const offsets = new Map<string, number>();

/** The zone's UTC offset in minutes at `epochMs`, cached per whole hour without a transition. */
function offsetMinutes(epochMs: number, zone: string): number {
  const hour = Math.floor(epochMs / HOUR_MS);
  const key = `${zone}\u0000${hour}`;
  const cached = offsets.get(key);
  if (cached !== undefined) return cached;
  const start = DateTime.fromMillis(hour * HOUR_MS, { zone }).offset;
  const end = DateTime.fromMillis(hour * HOUR_MS + HOUR_MS - 1, { zone }).offset;
  // An hour holding a transition (some zones shift at :30) is never cached.
  if (start !== end) return DateTime.fromMillis(epochMs, { zone }).offset;
  if (offsets.size > 10_000) offsets.clear();
  offsets.set(key, start);
  return start;
}

/** `YYYY-MM-DDTHH:mm:ss.SSS` of the wall clock in the zone, and the offset as `+05:30` (or `Z`). */
function wallClock(epochMs: number, timezone: string): { wall: string; offset: string } | undefined {
  if (epochMs < 0 || epochMs > FAST_RANGE_MS) return undefined;
  const minutes = offsetMinutes(epochMs, zoneOf(timezone));
  const wall = new Date(epochMs + minutes * 60_000).toISOString().slice(0, 23);
  // luxon (whose output this matches) writes `Z` for its fixed UTC zone, named `UTC` or `GMT`.
  if (minutes === 0 && /^(utc|gmt)$/i.test(timezone)) return { wall, offset: 'Z' };
  const abs = Math.abs(minutes);
  const offset = `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return { wall, offset };
}

/** ISO 8601 with the zone's offset, e.g. 2026-11-24T00:48:38.120+05:30. */
export function formatTime(epochMs: number, timezone: string): string {
  const fast = wallClock(epochMs, timezone);
  if (fast) return `${fast.wall}${fast.offset}`;
  return DateTime.fromMillis(epochMs, { zone: zoneOf(timezone) }).toISO({ includeOffset: true, suppressMilliseconds: false }) ?? new Date(epochMs).toISOString();
}

/** The IANA name stored in `timezone` ('system' resolves to the machine's zone). */
export function zoneName(timezone: string): string {
  return timezone === 'system' ? Intl.DateTimeFormat().resolvedOptions().timeZone : timezone;
}

/**
 * A path segment that cannot escape its parent: letters and digits of any script, `.`, `_`, `-`.
 * Anything else becomes `_`; it never starts with `.` or `-` and is never a device name. A name
 * that had to change or be shortened gets a hash suffix, so two different names never share a slug.
 */
export function roomSlug(roomName: string): string {
  const normalized = roomName.normalize('NFC');
  let slug = normalized.replace(/[^\p{L}\p{N}._-]/gu, '_').replace(/^[.-]+/, (lead) => '_'.repeat(lead.length)).replace(/\.+$/, (dots) => '_'.repeat(dots.length));
  if (DEVICE_NAME.test(slug)) slug = `_${slug}`;
  let changed = slug !== roomName;
  if (Buffer.byteLength(slug, 'utf8') > MAX_SLUG_BYTES) {
    const chars = Array.from(slug);
    while (Buffer.byteLength(chars.join(''), 'utf8') > MAX_SLUG_BYTES) chars.pop();
    slug = chars.join('');
    changed = true;
  }
  if (slug.length === 0) {
    slug = 'room';
    changed = true;
  }
  if (changed) slug = `${slug}~${createHash('sha256').update(roomName, 'utf8').digest('hex').slice(0, 10)}`;
  return slug;
}

/** The call id as it appears in folder names: whole (it is already a safe alphabet), or prefix + 128-bit hash when long. */
export function callIdInFolder(callId: string): string {
  if (callId.length <= MAX_ID_IN_FOLDER) return callId;
  return `${callId.slice(0, 24)}~${createHash('sha256').update(callId, 'utf8').digest('hex').slice(0, 32)}`;
}

/** The folder timestamp: start in TIMEZONE to the millisecond, then the call id. */
export function callTimestamp(startedAtMs: number, timezone: string, callId: string): string {
  const fast = wallClock(startedAtMs, timezone);
  const time = fast
    ? `${fast.wall.slice(0, 4)}${fast.wall.slice(5, 7)}${fast.wall.slice(8, 10)}T${fast.wall.slice(11, 13)}${fast.wall.slice(14, 16)}${fast.wall.slice(17, 23)}`
    : DateTime.fromMillis(startedAtMs, { zone: zoneOf(timezone) }).toFormat("yyyyLLdd'T'HHmmss.SSS");
  return `${time}_${callIdInFolder(callId)}`;
}

/** `<slug>/<timestamp>`, or undefined while the record knows neither room nor start. */
export function chooseFolder(state: CallState, timezone: string): string | undefined {
  if (state.roomName === undefined || state.startedAtMs === undefined) return undefined;
  return `${roomSlug(state.roomName)}/${callTimestamp(state.startedAtMs, timezone, state.callId)}`;
}

/** The spec's recording key inside the call's folder: `<folder>/call_<room>_<timestamp>.ogg`. */
export function recordingKey(folder: string): string {
  const [slug = 'room', timestamp = ''] = folder.split('/');
  return `${folder}/call_${slug}_${timestamp}.ogg`;
}

/** The egress whose file the record names: the furthest along, then the largest, then the newest, then the id (a total order). */
export function mainEgress(state: CallState): (EgressFact & { egressId: string }) | undefined {
  let best: (EgressFact & { egressId: string }) | undefined;
  for (const [egressId, fact] of Object.entries(state.recording?.egress ?? {})) {
    const candidate = { ...fact, egressId };
    if (!best || compareEgress(candidate, best) > 0) best = candidate;
  }
  return best;
}

function compareEgress(a: EgressFact & { egressId: string }, b: EgressFact & { egressId: string }): number {
  return (
    egressProgress(a.status) - egressProgress(b.status) ||
    (a.sizeBytes ?? -1) - (b.sizeBytes ?? -1) ||
    a.atMs - b.atMs ||
    (a.egressId < b.egressId ? -1 : a.egressId > b.egressId ? 1 : 0)
  );
}

/** The recording is out of the call's folder (discarded and not restored). */
export function isDiscarded(state: CallState): boolean {
  return state.recording?.discardedAtMs !== undefined && state.recording.restoredAtMs === undefined;
}

/** The spec's `status`: in progress until some party reports the outcome. */
export function callStatus(state: CallState): string {
  const outcome = state.outcome;
  if (!outcome) return CALL_STATUS.inProgress;
  const answered = isAnswered(state);
  let status: string;
  if (outcome.source === 'worker' && outcome.status) {
    // Answered stays true: an unanswered reason from one job cannot undo another job's answer.
    status = answered && isUnansweredStatus(outcome.status) ? CALL_STATUS.completed : outcome.status;
  } else {
    // Inferred (webhook, sweeper): the call is over, the worker never said how.
    status = answered ? CALL_STATUS.completed : UNANSWERED.failed;
  }
  const egress = mainEgress(state);
  if (answered && status === CALL_STATUS.completed && egress && TERMINAL_EGRESS_STATUSES.has(egress.status)) {
    status = callStatusForEgress(egress.status) ?? status;
  }
  return status;
}

function recordingStatus(state: CallState, egress: EgressFact | undefined): RecordingStatus | undefined {
  if (!isAnswered(state) && isDiscarded(state)) return 'discarded';
  if (egress) return egress.status;
  return state.recording?.startError ? 'failed' : undefined;
}

/**
 * A record is a call's once its agent reported it: only the worker observes the direction. Rooms
 * that never had an agent (LiveKit reports every room_finished) keep a record but no documents.
 */
export function isAgentCall(state: CallState): boolean {
  return state.direction !== undefined && state.roomName !== undefined && state.startedAtMs !== undefined;
}

export function renderMetadata(state: CallState, folder: string, timezone: string): MetadataDocument | undefined {
  if (!isAgentCall(state) || state.roomName === undefined || state.startedAtMs === undefined) return undefined;
  const answered = isAnswered(state);
  const final = isFinal(state);
  const endedAtMs = final ? (state.ended?.atMs ?? state.outcome?.atMs) : undefined;
  const egress = mainEgress(state);
  const recordingStatusValue = recordingStatus(state, egress);
  // The spec: an unanswered call keeps no recording filename; a failed start has no file.
  const key = answered && !isDiscarded(state) && egress?.status !== 'failed' ? (egress?.key ?? (egress ? recordingKey(folder) : undefined)) : undefined;
  const bucket = egress?.bucket ?? state.recording?.bucket;
  const error = egress?.error ?? (egress ? undefined : state.recording?.startError?.error);
  return {
    call_id: state.callId,
    room_name: state.roomName,
    call_direction: state.direction?.value ?? 'inbound',
    ...(state.inboundTrunkId ? { inbound_trunk_id: state.inboundTrunkId.value } : {}),
    ...(state.outboundTrunkId ? { outbound_trunk_id: state.outboundTrunkId.value } : {}),
    agent_number: state.agentNumber?.value ?? null,
    user_number: state.userNumber?.value ?? null,
    start_time: formatTime(state.startedAtMs, timezone),
    end_time: endedAtMs === undefined ? null : formatTime(endedAtMs, timezone),
    duration: endedAtMs === undefined ? null : Math.max(0, endedAtMs - state.startedAtMs) / 1000,
    timezone: zoneName(timezone),
    answered,
    status: callStatus(state),
    ...(final && (state.outcome?.reason ?? state.ended?.reason) ? { end_reason: state.outcome?.reason ?? state.ended?.reason } : {}),
    ...(key ? { recording_filename: key.slice(key.lastIndexOf('/') + 1), recording_location: bucket ? `s3://${bucket}/${key}` : key } : {}),
    ...(recordingStatusValue ? { recording_status: recordingStatusValue } : {}),
    ...(error && recordingStatusValue !== 'discarded' ? { recording_error: error } : {}),
    ...(answered && egress?.sizeBytes !== undefined ? { recording_size_bytes: egress.sizeBytes } : {}),
    ...(answered && egress?.durationMs !== undefined ? { recording_duration: egress.durationMs / 1000 } : {}),
  };
}

function transcriptItem(item: ConversationItem, timezone: string) {
  return { role: item.role, content: item.content, interrupted: item.interrupted, timestamp: formatTime(item.timestampMs, timezone) };
}

/** The spec's transcription document; unanswered calls keep none. */
export function renderTranscription(state: CallState, timezone: string): TranscriptionDocument | undefined {
  if (!isAgentCall(state) || state.roomName === undefined || !isAnswered(state)) return undefined;
  return {
    call_id: state.callId,
    room_name: state.roomName,
    conversation: (state.conversation ?? []).map((item) => transcriptItem(item, timezone)),
  };
}

export function renderDocuments(state: CallState, folder: string, kinds: readonly DocumentKind[], timezone: string): RenderedDocuments {
  const documents: RenderedDocuments = {};
  if (kinds.includes('metadata')) {
    const metadata = renderMetadata(state, folder, timezone);
    if (metadata) documents.metadata = metadata;
  }
  if (kinds.includes('transcription')) {
    const transcription = renderTranscription(state, timezone);
    if (transcription) documents.transcription = transcription;
  }
  return documents;
}

/** The call's line in a list (what storage indexes for queries); undefined until an agent reported the call. */
export function summarize(state: CallState): CallSummary | undefined {
  if (!isAgentCall(state) || state.roomName === undefined || state.startedAtMs === undefined || state.direction === undefined) return undefined;
  const answered = isAnswered(state);
  const endedAtMs = isFinal(state) ? (state.ended?.atMs ?? state.outcome?.atMs) : undefined;
  const egress = mainEgress(state);
  return {
    callId: state.callId,
    roomName: state.roomName,
    startedAtMs: state.startedAtMs,
    direction: state.direction.value,
    ...(state.agentNumber ? { agentNumber: state.agentNumber.value } : {}),
    ...(state.userNumber ? { userNumber: state.userNumber.value } : {}),
    ...(endedAtMs === undefined ? {} : { durationMs: Math.max(0, endedAtMs - state.startedAtMs) }),
    answered,
    status: callStatus(state),
    hasRecording: answered && !isDiscarded(state) && egress !== undefined && egress.status !== 'failed',
  };
}
