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
import type { ConversationItem, EgressFact, TurnLatencyFact } from '../contract/facts.ts';
import type {
  CallState,
  CallSummary,
  DocumentKind,
  LatencyMetricName,
  MetadataDocument,
  RenderedDocuments,
  TranscriptionDocument,
  TranscriptionItem,
  TurnMetricsDocument,
  UsageDocument,
} from '../contract/record.ts';
import { CALL_STATUS, callStatusForEgress, isUnansweredStatus, TERMINAL_EGRESS_STATUSES, UNANSWERED, type EndReason, type RecordingStatus } from '../contract/vocabulary.ts';
import { DEVICE_NAME } from '../storage/names.ts';
import { estimateCost, LATENCY_METRICS, summarizeLatency, sumUsage, type PriceTable, type UsageEntry } from './insights/index.ts';
import { egressProgress, isAnswered, isFinal } from './merge.ts';
import { endReasonOfStatus } from './unanswered-end-reason.ts';

/** What rendering needs beyond the record and the zone. */
export interface RenderOptions {
  /** CALLDATA_PRICE_TABLE: turns usage into `estimated_cost`. */
  priceTable?: PriceTable;
}

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
  // A session that closed with an error did not complete, whatever else was said.
  if (answered && status === CALL_STATUS.completed && outcome.endReason === 'agent_error') return CALL_STATUS.failed;
  const egress = mainEgress(state);
  if (answered && status === CALL_STATUS.completed && egress && TERMINAL_EGRESS_STATUSES.has(egress.status)) {
    status = callStatusForEgress(egress.status) ?? status;
  }
  return status;
}

/**
 * Why the call ended (END_REASONS), once it did: the outcome's own reason (the worker's beats
 * an inferred one), else what the SIP participant's departure said, else `worker_lost` for an
 * end only the webhook or the sweeper inferred.
 */
export function endReasonOf(state: CallState): EndReason | undefined {
  const outcome = state.outcome;
  if (!outcome) return undefined;
  if (outcome.endReason) return outcome.endReason;
  if (state.ended?.endReason) return state.ended.endReason;
  if (outcome.source !== 'worker') return 'worker_lost';
  // An older worker named no end reason: its unanswered status says it.
  return endReasonOfStatus(outcome.status);
}

/** TurnLatency's names in the metadata (snake_case, the unit in the summary's keys). */
const LATENCY_NAMES: Readonly<Record<keyof TurnLatencyFact, LatencyMetricName>> = {
  endOfUtteranceDelayMs: 'end_of_utterance_delay',
  transcriptionDelayMs: 'transcription_delay',
  llmTtftMs: 'llm_ttft',
  ttsTtfbMs: 'tts_ttfb',
  e2eMs: 'e2e',
};

/**
 * Per metric, p50 / p90 / max over the call's turns; undefined when no turn was measured. The
 * turns are the per-turn latency facts (sent whenever metadata is saved), plus, by the same id,
 * the transcript items' own metrics (a record stored before turn facts existed, or a turn past a
 * message's cap that the transcript still holds); a turn counts once.
 */
export function latencyOf(state: CallState): MetadataDocument['latency'] {
  const byId = new Map<string, TurnLatencyFact>();
  for (const { id, ...latency } of state.turns ?? []) byId.set(id, latency);
  for (const item of state.conversation ?? []) if (item.metrics && !byId.has(item.id)) byId.set(item.id, item.metrics);
  if (byId.size === 0) return undefined;
  const summary = summarizeLatency([...byId.values()]);
  const out: NonNullable<MetadataDocument['latency']> = {};
  for (const metric of LATENCY_METRICS) {
    const stats = summary[metric];
    if (stats) out[LATENCY_NAMES[metric]] = { p50_ms: stats.p50, p90_ms: stats.p90, max_ms: stats.max, count: stats.count };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function turnMetrics(metrics: TurnLatencyFact): TurnMetricsDocument | undefined {
  const out: Record<string, number> = {};
  for (const metric of LATENCY_METRICS) {
    const value = metrics[metric];
    if (value !== undefined) out[`${LATENCY_NAMES[metric]}_ms`] = value;
  }
  return Object.keys(out).length > 0 ? (out as TurnMetricsDocument) : undefined;
}

/** The call's usage summed over its writers (every job of the call), per model. */
export function usageOf(state: CallState): UsageEntry[] | undefined {
  if (!state.usage) return undefined;
  const total = sumUsage(Object.values(state.usage));
  return total.length > 0 ? total : undefined;
}

function usageDocument(entry: UsageEntry): UsageDocument {
  const base = { type: `${entry.kind}_usage` as const, ...(entry.provider ? { provider: entry.provider } : {}), model: entry.model };
  const counts: Omit<UsageDocument, 'type' | 'provider' | 'model'> =
    entry.kind === 'llm'
      ? { input_tokens: entry.promptTokens ?? 0, input_cached_tokens: entry.promptCachedTokens ?? 0, output_tokens: entry.completionTokens ?? 0 }
      : entry.kind === 'tts'
        ? { characters_count: entry.characters ?? 0, audio_duration_ms: entry.audioMs ?? 0 }
        : { audio_duration_ms: entry.audioMs ?? 0 };
  return { ...base, ...counts };
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

export function renderMetadata(state: CallState, folder: string, timezone: string, options: RenderOptions = {}): MetadataDocument | undefined {
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
  const endReason = final ? endReasonOf(state) : undefined;
  const detail = final ? (state.outcome?.reason ?? state.ended?.reason) : undefined;
  const trunkId = state.inboundTrunkId?.value ?? state.outboundTrunkId?.value;
  const latency = latencyOf(state);
  const usage = usageOf(state);
  const cost = usage && options.priceTable ? estimateCost(usage, options.priceTable) : undefined;
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
    ...(endReason ? { end_reason: endReason } : {}),
    ...(detail ? { end_reason_detail: detail } : {}),
    ...(state.sipStatus ? { sip_status_code: state.sipStatus.code, ...(state.sipStatus.text ? { sip_status: state.sipStatus.text } : {}) } : {}),
    ...(key ? { recording_filename: key.slice(key.lastIndexOf('/') + 1), recording_location: bucket ? `s3://${bucket}/${key}` : key } : {}),
    ...(recordingStatusValue ? { recording_status: recordingStatusValue } : {}),
    ...(error && recordingStatusValue !== 'discarded' ? { recording_error: error } : {}),
    ...(answered && egress?.sizeBytes !== undefined ? { recording_size_bytes: egress.sizeBytes } : {}),
    ...(answered && egress?.durationMs !== undefined ? { recording_duration: egress.durationMs / 1000, recording_duration_ms: egress.durationMs } : {}),
    ...(egress && recordingStatusValue !== 'discarded' ? { egress_id: egress.egressId } : {}),
    ...(state.jobId ? { job_id: state.jobId.value } : {}),
    ...(state.roomSid ? { room_sid: state.roomSid.value } : {}),
    ...(state.sipCallId ? { sip_call_id: state.sipCallId.value } : {}),
    ...(trunkId ? { trunk_id: trunkId } : {}),
    ...(state.dispatchRuleId ? { dispatch_rule_id: state.dispatchRuleId.value } : {}),
    ...(latency ? { latency } : {}),
    ...(usage ? { usage: usage.map(usageDocument) } : {}),
    ...(cost ? { estimated_cost: cost } : {}),
    ...(state.answeringMachine
      ? { answering_machine: { result: state.answeringMachine.result, ...(state.answeringMachine.isMachine === undefined ? {} : { is_machine: state.answeringMachine.isMachine }) } }
      : {}),
    // Only a worker with SAVE_TOOL_CALLS=true sends tool calls.
    ...(state.toolCalls && state.toolCalls.length > 0
      ? {
          tool_calls: state.toolCalls.map((call) => ({
            id: call.id,
            name: call.name,
            arguments: call.arguments,
            ...(call.output === undefined ? {} : { output: call.output }),
            ...(call.isError === undefined ? {} : { is_error: call.isError }),
            timestamp: formatTime(call.atMs, timezone),
          })),
        }
      : {}),
  };
}

function transcriptItem(item: ConversationItem, timezone: string): TranscriptionItem {
  const rendered: TranscriptionItem = { role: item.role, content: item.content, interrupted: item.interrupted, timestamp: formatTime(item.timestampMs, timezone) };
  const metrics = item.metrics ? turnMetrics(item.metrics) : undefined;
  if (metrics) rendered.metrics = metrics;
  return rendered;
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

export function renderDocuments(state: CallState, folder: string, kinds: readonly DocumentKind[], timezone: string, options: RenderOptions = {}): RenderedDocuments {
  const documents: RenderedDocuments = {};
  if (kinds.includes('metadata')) {
    const metadata = renderMetadata(state, folder, timezone, options);
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
