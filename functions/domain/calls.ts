/**
 * The read side of the call records, without any I/O: what `calldata calls …` and
 * `calldata browse` share. Filters typed by a person become a CallQuery (dates in TIMEZONE),
 * summaries and documents become display rows and conversation lines (times in TIMEZONE), the
 * recording reference comes out of a stored record, and the overview's figures out of a bounded
 * list of recent calls.
 *
 * The storage side (functions/storage, `queryCalls` and `read`) and the presigning live in
 * functions/query/reader.ts.
 */
import { DateTime } from 'luxon';
import type { CallState, CallSummary, MetadataDocument, TranscriptionDocument } from '../contract/record.ts';
import { CALL_STATUS, FINAL_STATUSES } from '../contract/vocabulary.ts';
import { CALL_ID_PATTERN } from '../contract/snapshot.ts';
import type { CallQuery } from '../storage/backend.ts';
import { renderMetadata, type RenderOptions } from './render.ts';
import { CallDataError } from '../errors.ts';

/** Something a person typed cannot be used: one plain line saying what and why. */
export class CallsInputError extends CallDataError {}

/** Page sizes a person may ask for. */
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 50;

/** Every status a stored call can have. */
export const KNOWN_STATUSES: readonly string[] = [CALL_STATUS.inProgress, ...new Set<string>(FINAL_STATUSES)];

function zoneOf(timezone: string): string {
  return timezone === 'system' ? 'local' : timezone;
}

/** A call id as the stores accept it. */
export function isCallId(text: string): boolean {
  return CALL_ID_PATTERN.test(text);
}

/**
 * A date (`2026-11-01`) or a date-time (`2026-11-01T09:30`, `2026-11-01 09:30:15`, with or
 * without an offset) in TIMEZONE, as epoch ms. A date alone means the start of that day, or with
 * `endOfDay` the start of the next one (so `--until 2026-11-30` includes the 30th).
 */
export function parseWhen(text: string, timezone: string, name: string, endOfDay = false): number {
  const trimmed = text.trim();
  const zone = zoneOf(timezone);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(trimmed);
  const parsed = DateTime.fromISO(trimmed.replace(/^(\d{4}-\d{2}-\d{2}) +/, '$1T'), { zone });
  if (!trimmed || !parsed.isValid) {
    throw new CallsInputError(`${name} ${JSON.stringify(text)} is not a date (2026-11-01) or a date-time (2026-11-01T09:30) in ${zoneLabel(timezone)}`);
  }
  return (dateOnly && endOfDay ? parsed.startOf('day').plus({ days: 1 }) : parsed).toMillis();
}

/** `+1 (415) 555-0100` → `+14155550100`; anything that is not a phone number stays as typed. */
export function normalizeNumber(text: string): string {
  const trimmed = text.trim();
  const compact = trimmed.replace(/[\s().-]/g, '');
  return /^\+?\d{2,}$/.test(compact) ? compact : trimmed;
}

/** True when the text reads as a phone number (digits, an optional leading +, spaces and punctuation). */
export function looksLikeNumber(text: string): boolean {
  return /^\+?[\d\s().-]{3,}$/.test(text.trim()) && /\d{3,}/.test(text.replace(/\D/g, ''));
}

/** The filters as a person gives them (CLI options, the page's query string). */
export interface FilterInput {
  since?: string;
  until?: string;
  room?: string;
  number?: string;
  direction?: string;
  /** 'answered' | 'unanswered' | '' */
  answered?: string;
  status?: string;
  limit?: string;
  cursor?: string;
}

/** The filters a person typed, checked, as a query. Empty values mean "no filter". */
export function parseFilters(input: FilterInput, timezone: string, defaultLimit = DEFAULT_PAGE): CallQuery {
  const query: CallQuery = { limit: defaultLimit };
  const value = (text: string | undefined) => (text === undefined || text.trim() === '' ? undefined : text);
  const since = value(input.since);
  const until = value(input.until);
  if (since) query.sinceMs = parseWhen(since, timezone, 'since');
  if (until) query.untilMs = parseWhen(until, timezone, 'until', true);
  if (query.sinceMs !== undefined && query.untilMs !== undefined && query.untilMs <= query.sinceMs) {
    throw new CallsInputError('until must be later than since');
  }
  const room = value(input.room);
  if (room !== undefined) query.room = room;
  const number = value(input.number);
  if (number !== undefined) query.number = normalizeNumber(number);
  const direction = value(input.direction);
  if (direction !== undefined) {
    if (direction !== 'inbound' && direction !== 'outbound') throw new CallsInputError(`direction must be inbound or outbound, not ${JSON.stringify(direction)}`);
    query.direction = direction;
  }
  const answered = value(input.answered);
  if (answered !== undefined) {
    if (answered !== 'answered' && answered !== 'unanswered') throw new CallsInputError(`answered must be "answered" or "unanswered", not ${JSON.stringify(answered)}`);
    query.answered = answered === 'answered';
  }
  const status = value(input.status);
  if (status !== undefined) {
    if (!KNOWN_STATUSES.includes(status)) throw new CallsInputError(`status ${JSON.stringify(status)} is not one of ${KNOWN_STATUSES.join(', ')}`);
    query.status = status;
  }
  const limit = value(input.limit);
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new CallsInputError(`limit must be an integer from 1 to ${MAX_PAGE}`);
    query.limit = n;
  }
  const cursor = value(input.cursor);
  if (cursor !== undefined) {
    if (!/^[A-Za-z0-9_-]{1,1024}$/.test(cursor)) throw new CallsInputError('the cursor is not one a previous page printed');
    query.cursor = cursor;
  }
  return query;
}

/** What a search box entry means: a call id opens the call, a phone number filters by number, anything else by room. */
export type SearchIntent = { kind: 'call'; callId: string } | { kind: 'number'; number: string } | { kind: 'room'; room: string } | { kind: 'none' };

/** `exists` says whether a call with this id is stored (asked only for text that can be a call id). */
export async function classifySearch(text: string, exists: (callId: string) => Promise<boolean>): Promise<SearchIntent> {
  const q = text.trim();
  if (!q) return { kind: 'none' };
  if (isCallId(q) && (await exists(q))) return { kind: 'call', callId: q };
  if (looksLikeNumber(q)) return { kind: 'number', number: normalizeNumber(q) };
  return { kind: 'room', room: q };
}

// ---- display ------------------------------------------------------------------------------

/** The zone's name as people read it ('system' becomes the machine's zone). */
export function zoneLabel(timezone: string): string {
  return timezone === 'system' ? (DateTime.local().zoneName ?? 'local time') : timezone;
}

/** `2026-11-24 06:18:38` in TIMEZONE. */
export function displayTime(epochMs: number, timezone: string): string {
  return DateTime.fromMillis(epochMs, { zone: zoneOf(timezone) }).toFormat('yyyy-LL-dd HH:mm:ss');
}

/** ISO 8601 with the zone's offset, in TIMEZONE. */
export function isoTime(epochMs: number, timezone: string): string {
  return DateTime.fromMillis(epochMs, { zone: zoneOf(timezone) }).toISO({ includeOffset: true }) ?? new Date(epochMs).toISOString();
}

/** A stored ISO timestamp (whatever zone it was written in) shown in TIMEZONE, `HH:mm:ss`. */
export function displayClock(iso: string, timezone: string): string {
  const time = DateTime.fromISO(iso, { setZone: true });
  return time.isValid ? time.setZone(zoneOf(timezone)).toFormat('HH:mm:ss') : iso;
}

/** `4:05`, `1:02:03`; `-` while the call is in progress. */
export function displayDuration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null) return '-';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`;
}

/** Who called whom: the user calls the agent on an inbound call, the agent the user on an outbound one. */
export function fromTo(call: Pick<CallSummary, 'direction' | 'agentNumber' | 'userNumber'>): { from: string | undefined; to: string | undefined } {
  return call.direction === 'outbound' ? { from: call.agentNumber, to: call.userNumber } : { from: call.userNumber, to: call.agentNumber };
}

/** One line of a call list, every field ready to show (the values are untrusted text). */
export interface CallRow {
  callId: string;
  /** ISO 8601 in TIMEZONE. */
  startTime: string;
  /** `yyyy-LL-dd HH:mm:ss` in TIMEZONE. */
  time: string;
  roomName: string;
  direction: 'inbound' | 'outbound';
  from: string | null;
  to: string | null;
  agentNumber: string | null;
  userNumber: string | null;
  /** Seconds, or null while in progress. */
  durationS: number | null;
  duration: string;
  answered: boolean;
  status: string;
  recording: boolean;
}

export function callRow(call: CallSummary, timezone: string): CallRow {
  const { from, to } = fromTo(call);
  return {
    callId: call.callId,
    startTime: isoTime(call.startedAtMs, timezone),
    time: displayTime(call.startedAtMs, timezone),
    roomName: call.roomName,
    direction: call.direction,
    from: from ?? null,
    to: to ?? null,
    agentNumber: call.agentNumber ?? null,
    userNumber: call.userNumber ?? null,
    durationS: call.durationMs === undefined ? null : call.durationMs / 1000,
    duration: displayDuration(call.durationMs),
    answered: call.answered,
    status: call.status,
    recording: call.hasRecording,
  };
}

/** One turn of the conversation, ready to show. */
export interface ConversationLine {
  role: 'user' | 'assistant';
  /** `agent` or `user`. */
  speaker: string;
  content: string;
  interrupted: boolean;
  /** The stored ISO timestamp. */
  timestamp: string;
  /** `HH:mm:ss` in TIMEZONE. */
  time: string;
}

export function conversationLines(transcription: TranscriptionDocument | undefined, timezone: string): ConversationLine[] {
  return (transcription?.conversation ?? []).map((item) => ({
    role: item.role,
    speaker: item.role === 'assistant' ? 'agent' : 'user',
    content: item.content,
    interrupted: item.interrupted,
    timestamp: item.timestamp,
    time: displayClock(item.timestamp, timezone),
  }));
}

/** The metadata document's keys in the spec's order (a JSON column may hand them back in its own). */
/** The metadata document's keys in the order render.ts writes them (and the README lists them). */
const METADATA_KEYS: readonly (keyof MetadataDocument)[] = [
  'call_id', 'room_name', 'call_direction', 'inbound_trunk_id', 'outbound_trunk_id', 'agent_number', 'user_number', 'start_time', 'end_time',
  'duration', 'timezone', 'answered', 'status', 'end_reason', 'end_reason_detail', 'sip_status_code', 'sip_status', 'recording_filename',
  'recording_location', 'recording_status', 'recording_error', 'recording_size_bytes', 'recording_duration', 'recording_duration_ms', 'egress_id',
  'job_id', 'room_sid', 'sip_call_id', 'trunk_id', 'dispatch_rule_id', 'latency', 'usage', 'estimated_cost', 'answering_machine', 'tool_calls',
];

function ordered<T extends object>(value: T, keys: readonly string[]): T {
  const entries = Object.entries(value);
  const rank = (key: string) => (keys.includes(key) ? keys.indexOf(key) : keys.length);
  return Object.fromEntries(entries.sort(([a], [b]) => rank(a) - rank(b))) as T;
}

/** The metadata document of a stored record, keys in the spec's order: the stored one, or rendered from the record when this location keeps none. */
export function metadataOf(
  stored: { state: CallState; folder: string; documents: { metadata?: MetadataDocument } },
  timezone: string,
  options: RenderOptions = {},
): MetadataDocument | undefined {
  const metadata = stored.documents.metadata ?? (stored.folder ? renderMetadata(stored.state, stored.folder, timezone, options) : undefined);
  return metadata ? ordered(metadata, METADATA_KEYS) : undefined;
}

/** The transcription document with its keys in the spec's order. */
export function transcriptionInOrder(transcription: TranscriptionDocument | undefined): TranscriptionDocument | undefined {
  if (!transcription) return undefined;
  const document = ordered(transcription, ['call_id', 'room_name', 'conversation']);
  return { ...document, conversation: (transcription.conversation ?? []).map((item) => ordered(item, ['role', 'content', 'interrupted', 'timestamp'])) };
}

/** Where a call's recording object is: from `recording_location` (`s3://bucket/key`, or a bare key in the configured bucket). */
export function recordingObject(metadata: MetadataDocument | undefined, defaultBucket: string | undefined): { bucket: string; key: string } | undefined {
  const location = metadata?.recording_location;
  if (!location) return undefined;
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (match?.[1] && match[2]) return { bucket: match[1], key: match[2] };
  return defaultBucket ? { bucket: defaultBucket, key: location } : undefined;
}

/** Text safe to print on a terminal: control characters (escape sequences, newlines) shown as `\u001b` etc. */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One CSV cell (RFC 4180), never read as a formula by a spreadsheet (phone numbers stay as they are). */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^[+-]?\d+(\.\d+)?$/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const CSV_COLUMNS = ['call_id', 'start_time', 'room_name', 'direction', 'from', 'to', 'agent_number', 'user_number', 'duration_s', 'answered', 'status', 'recording'] as const;

export function csvLine(row: CallRow): string {
  return [row.callId, row.startTime, row.roomName, row.direction, row.from, row.to, row.agentNumber, row.userNumber, row.durationS, row.answered, row.status, row.recording].map(csvCell).join(',');
}

// ---- overview -----------------------------------------------------------------------------

export interface OverviewDay {
  /** `yyyy-LL-dd` in TIMEZONE. */
  day: string;
  calls: number;
  answered: number;
  /** Answered / calls, 0-1; null on a day without calls. */
  answerRate: number | null;
  /** Median duration of the day's answered, finished calls, seconds; null when there are none. */
  medianDurationS: number | null;
}

export interface Overview {
  timezone: string;
  /** The most calls read to compute it (the page says so). */
  bound: number;
  /** Calls actually read. */
  scanned: number;
  /** True when more calls matched than the bound allowed: the oldest days are incomplete. */
  truncated: boolean;
  days: number;
  sinceMs: number;
  totals: { calls: number; answered: number; answerRate: number | null; medianDurationS: number | null };
  perDay: OverviewDay[];
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Per day (every day of the window, oldest first, in TIMEZONE) and in total. */
export function computeOverview(calls: readonly CallSummary[], options: { timezone: string; nowMs: number; days: number; bound: number; truncated: boolean }): Overview {
  const zone = zoneOf(options.timezone);
  const first = DateTime.fromMillis(options.nowMs, { zone }).startOf('day').minus({ days: options.days - 1 });
  const perDay = new Map<string, { calls: number; answered: number; durations: number[] }>();
  for (let i = 0; i < options.days; i++) perDay.set(first.plus({ days: i }).toFormat('yyyy-LL-dd'), { calls: 0, answered: 0, durations: [] });
  const durations: number[] = [];
  let answered = 0;
  let counted = 0;
  for (const call of calls) {
    const day = perDay.get(DateTime.fromMillis(call.startedAtMs, { zone }).toFormat('yyyy-LL-dd'));
    if (!day) continue;
    counted++;
    day.calls++;
    if (call.answered) {
      answered++;
      day.answered++;
      if (call.durationMs !== undefined) {
        day.durations.push(call.durationMs / 1000);
        durations.push(call.durationMs / 1000);
      }
    }
  }
  return {
    timezone: zoneLabel(options.timezone),
    bound: options.bound,
    scanned: calls.length,
    truncated: options.truncated,
    days: options.days,
    sinceMs: first.toMillis(),
    totals: { calls: counted, answered, answerRate: counted > 0 ? answered / counted : null, medianDurationS: median(durations) },
    perDay: [...perDay.entries()].map(([day, d]) => ({ day, calls: d.calls, answered: d.answered, answerRate: d.calls > 0 ? d.answered / d.calls : null, medianDurationS: median(d.durations) })),
  };
}

/** The window's start: the beginning of the day `days - 1` days before today, in TIMEZONE. */
export function overviewSince(nowMs: number, timezone: string, days: number): number {
  return DateTime.fromMillis(nowMs, { zone: zoneOf(timezone) }).startOf('day').minus({ days: days - 1 }).toMillis();
}
