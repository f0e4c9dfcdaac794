/**
 * Contract version 2: every party that knows something about a call (the worker's job, a
 * re-dispatched job, the webhook, the recording function, the sweeper) sends **facts**, and
 * the stored record is the merge of all facts ever received (functions/domain/merge.ts).
 *
 * A message names its writer and the writer's sequence number. A writer that marks its
 * messages `cumulative` promises that each message holds every fact of its earlier ones (the
 * worker does: it always sends its whole view); storage uses that for a one-round-trip write
 * while the stored record came from that writer alone. Times are epoch milliseconds; formatting
 * into TIMEZONE happens only when documents are rendered.
 *
 * Version-1 snapshots still in queues are read and upgraded (upgradeV1).
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { InvalidSnapshotError, UnsupportedVersionError } from './errors.ts';
import { parseSnapshot, MAX_WIRE_BYTES, CALL_ID_PATTERN, conversationRefSchema, type Snapshot } from './snapshot.ts';
import {
  EGRESS_STATUSES,
  END_REASONS,
  END_SOURCES,
  FINAL_STATUSES,
  OUTCOME_SOURCES,
  RECORDING_ACTIONS,
  USAGE_KINDS,
  WORKER_MESSAGE_KINDS,
  type FinalStatus,
} from './vocabulary.ts';

export const MESSAGE_VERSION = 2 as const;
export { MAX_WIRE_BYTES, CALL_ID_PATTERN };

const epochMs = z.number().int().nonnegative().max(8_640_000_000_000_000);
const text = (max: number) => z.string().max(max);

/** Longest id the contract takes: transcript items, turns, tool calls, and LiveKit's identifiers, numbers and model names. */
export const MAX_ID_LENGTH = 256;
/** Longest provider name of a usage entry. */
export const MAX_PROVIDER_LENGTH = 128;
/** Longest text of one transcript item. */
export const MAX_CONTENT_LENGTH = 1_000_000;
/** Longest arguments (and output) of one tool call. */
export const MAX_TOOL_TEXT_LENGTH = 64_000;
/** Longest end-reason evidence (`close:error sip:486 ...`). */
export const MAX_EVIDENCE_LENGTH = 256;
const id = z.string().min(1).max(MAX_ID_LENGTH);

/** Writer ids go into keys and columns: a safe alphabet. */
export const WRITER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$/;

const durationMs = z.number().nonnegative().max(86_400_000);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * One turn's latency, from the agents ChatMessage's `metrics` (LiveKit reports seconds; these are
 * milliseconds): user turns carry the end-of-utterance and transcription delays, assistant turns
 * the LLM's time to first token, the TTS's time to first byte and the end-to-end latency.
 */
export const turnLatencySchema = z.object({
  endOfUtteranceDelayMs: durationMs.optional(),
  transcriptionDelayMs: durationMs.optional(),
  llmTtftMs: durationMs.optional(),
  ttsTtfbMs: durationMs.optional(),
  e2eMs: durationMs.optional(),
});
export type TurnLatencyFact = z.infer<typeof turnLatencySchema>;

/**
 * Most turn-latency entries one message carries: a long call's list stays well inside an SQS
 * message (1,000 entries of the largest id and five metrics are under 0.5 MiB) without offloading.
 * The worker keeps its first turns (not its last), so every message still holds all that the
 * job's earlier messages held (the cumulative promise); the merged record is the union of every
 * writer's entries, so a re-dispatched job adds its own.
 */
export const MAX_TURNS_PER_MESSAGE = 1_000;
/**
 * Tool calls travel inline (only the conversation is ever offloaded to S3): a job sends at most
 * this many, and at most TOOL_CALL_BUDGET_BYTES of them as JSON, so that with the turns a
 * message stays well under SQS's 1 MiB.
 */
export const MAX_TOOL_CALLS_PER_MESSAGE = 10_000;
export const TOOL_CALL_BUDGET_BYTES = 192 * 1024;

/**
 * One turn's latency, by the turn's transcript item id: sent whenever metadata is saved, with or
 * without the transcript, so the call's latency summary never depends on SAVE_TRANSCRIPTION.
 */
export const turnFactSchema = turnLatencySchema.extend({ id });
export type TurnFact = z.infer<typeof turnFactSchema>;

export const conversationItemSchema = z.object({
  /** Stable across snapshots and workers: the agents ChatMessage id, or derived (deriveItemId). */
  id,
  role: z.enum(['user', 'assistant']),
  content: z.string().max(MAX_CONTENT_LENGTH),
  interrupted: z.boolean().default(false),
  timestampMs: epochMs,
  /** The turn's latency, when the agent measured it. */
  metrics: turnLatencySchema.optional(),
});
export type ConversationItem = z.infer<typeof conversationItemSchema>;

/** A value and when it was observed: the newest observation wins (ties: the larger value). */
const observed = <T extends z.ZodType<string>>(value: T) => z.object({ value, atMs: epochMs });
export type Observed<T extends string = string> = { value: T; atMs: number };

export const egressFactSchema = z.object({
  status: z.enum(EGRESS_STATUSES),
  atMs: epochMs,
  /** Object key the egress writes (the call's folder + `call_<room>_<timestamp>.ogg`). */
  key: text(1024).optional(),
  bucket: text(63).optional(),
  error: text(2_000).optional(),
  sizeBytes: z.number().int().nonnegative().optional(),
  durationMs: z.number().int().nonnegative().optional(),
});
export type EgressFact = z.infer<typeof egressFactSchema>;

export const recordingFactsSchema = z.object({
  /** The worker ran with CALL_RECORDING=true. */
  requested: z.literal(true).optional(),
  /** The bucket the worker was configured with (the recording function's own bucket wins). */
  bucket: text(63).optional(),
  /** Per egress id, the furthest status reached. */
  egress: z.record(z.string().min(1).max(128), egressFactSchema).optional(),
  /** The egress could not be started (after bounded retries). */
  startError: z.object({ atMs: epochMs, error: text(2_000) }).optional(),
  /** The recording of a call not answered was moved out of the call's folder. */
  discardedAtMs: epochMs.optional(),
  /** ... and moved back, because an answer fact arrived after the discard. */
  restoredAtMs: epochMs.optional(),
});
export type RecordingFacts = z.infer<typeof recordingFactsSchema>;

/**
 * Model usage of one writer so far, per kind + provider + model (cumulative: each report holds
 * everything the writer used until then), in the words of LiveKit's ModelUsage.
 */
export const usageEntrySchema = z.object({
  kind: z.enum(USAGE_KINDS),
  provider: text(MAX_PROVIDER_LENGTH).optional(),
  model: text(MAX_ID_LENGTH),
  promptTokens: count.optional(),
  promptCachedTokens: count.optional(),
  completionTokens: count.optional(),
  characters: count.optional(),
  audioMs: count.optional(),
});
export type UsageEntryFact = z.infer<typeof usageEntrySchema>;

/** A function tool the agent ran (only with SAVE_TOOL_CALLS=true): the call and its output. */
export const toolCallSchema = z.object({
  /** The FunctionCall's callId (unique per LLM response), or its item id. */
  id,
  name: text(MAX_ID_LENGTH),
  /** The arguments as the model wrote them (JSON text). */
  arguments: text(MAX_TOOL_TEXT_LENGTH),
  output: text(MAX_TOOL_TEXT_LENGTH).optional(),
  isError: z.boolean().optional(),
  atMs: epochMs,
});
export type ToolCallFact = z.infer<typeof toolCallSchema>;

/** The call's end reason (END_REASONS) and the evidence it was derived from. */
const endReasonFields = {
  endReason: z.enum(END_REASONS).optional(),
  /** What LiveKit said that gave the end reason, e.g. `close_reason:error`, `disconnect:CLIENT_INITIATED`, `sip:486`. */
  evidence: text(MAX_EVIDENCE_LENGTH).optional(),
};

export const callFactsSchema = z.object({
  /** Untrusted: kept verbatim in documents, never used raw in paths or queries. */
  roomName: z.string().min(1).max(4_096).optional(),
  startedAtMs: epochMs.optional(),
  direction: observed(z.enum(['inbound', 'outbound'])).optional(),
  inboundTrunkId: observed(text(MAX_ID_LENGTH)).optional(),
  outboundTrunkId: observed(text(MAX_ID_LENGTH)).optional(),
  agentNumber: observed(text(MAX_ID_LENGTH)).optional(),
  userNumber: observed(text(MAX_ID_LENGTH)).optional(),
  /** LiveKit's SIP call id (`sip.callID`). */
  sipCallId: observed(text(MAX_ID_LENGTH)).optional(),
  /** Set once anyone saw the call answered; answered never goes back. */
  answeredAtMs: epochMs.optional(),
  /** LiveKit's room SID (the call id, unless the job had none). */
  roomSid: observed(text(MAX_ID_LENGTH)).optional(),
  /** The LiveKit job that wrote these facts (a re-dispatched job is another one: the newest wins). */
  jobId: observed(text(MAX_ID_LENGTH)).optional(),
  /** The SIP dispatch rule that routed the call (`sip.ruleID`). */
  dispatchRuleId: observed(text(MAX_ID_LENGTH)).optional(),
  /** The SIP final status of the call (e.g. 486 when the callee was busy), when LiveKit reported one. */
  sipStatus: z.object({ code: z.number().int().min(100).max(699), text: text(128).optional(), atMs: epochMs }).optional(),
  /** A candidate end of the call and who saw it (END_SOURCES ranks them). */
  ended: z.object({ atMs: epochMs, source: z.enum(END_SOURCES), reason: text(512).optional(), ...endReasonFields }).optional(),
  /** The final outcome; an inferred one (webhook, sweeper) names no status: it follows `answered`. */
  outcome: z
    .object({ source: z.enum(OUTCOME_SOURCES), atMs: epochMs, status: z.enum(FINAL_STATUSES).optional(), reason: text(512).optional(), ...endReasonFields })
    .optional(),
  /** Per writer, its model usage so far (a writer's reports are cumulative; writers add up). */
  usage: z.record(z.string().regex(WRITER_PATTERN), z.array(usageEntrySchema).max(64)).optional(),
  /** Function tools the agent ran, by id (SAVE_TOOL_CALLS=true only). */
  toolCalls: z.array(toolCallSchema).max(MAX_TOOL_CALLS_PER_MESSAGE).optional(),
  /** LiveKit's answering-machine detection verdict (AMDCategory: human, machine-vm, ...). */
  answeringMachine: z.object({ result: text(64), atMs: epochMs, isMachine: z.boolean().optional() }).optional(),
  recording: recordingFactsSchema.optional(),
  /** Per-turn latency by transcript item id; the stored list is their union by id. */
  turns: z.array(turnFactSchema).max(MAX_TURNS_PER_MESSAGE).optional(),
  /** Transcript items; the stored transcript is their union by id. */
  conversation: z.array(conversationItemSchema).max(200_000).optional(),
});
export type CallFacts = z.infer<typeof callFactsSchema>;

export const MESSAGE_KINDS = [...WORKER_MESSAGE_KINDS, 'webhook', 'recording', 'sweeper'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export const factMessageSchema = z
  .object({
    v: z.literal(MESSAGE_VERSION),
    kind: z.enum(MESSAGE_KINDS),
    callId: z.string().regex(CALL_ID_PATTERN, 'callId must be 1-128 of [A-Za-z0-9_.-]'),
    writer: z.string().regex(WRITER_PATTERN, 'writer must be 1-200 of [A-Za-z0-9_.:@-]'),
    seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    /** Each message of this writer holds all facts of its earlier ones. */
    cumulative: z.boolean().default(false),
    sentAtMs: epochMs,
    facts: callFactsSchema,
    /** The conversation, when too large for one message, by reference to S3. */
    conversationRef: conversationRefSchema.optional(),
  })
  .refine((m) => !(m.facts.conversation && m.conversationRef), { message: 'facts.conversation and conversationRef are mutually exclusive' });
export type FactMessage = z.infer<typeof factMessageSchema>;
export type FactMessageInput = z.input<typeof factMessageSchema>;

/** What the persist path asks the recording function to do (a message on the recording queue). */
export const recordingCommandSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  type: z.literal('recording'),
  action: z.enum(RECORDING_ACTIONS),
  callId: z.string().regex(CALL_ID_PATTERN),
  roomName: z.string().min(1).max(4_096),
  /** Where the recording is (or goes): the call's folder, chosen once by the stored record. */
  key: text(1024).min(1),
  bucket: text(63).optional(),
  /** Egress ids known for the call (to stop or wait for). */
  egressIds: z.array(z.string().max(128)).max(16).default([]),
  issuedAtMs: epochMs,
});
export type RecordingCommand = z.infer<typeof recordingCommandSchema>;
export type RecordingCommandInput = z.input<typeof recordingCommandSchema>;

function issues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}

function parseJson(body: string): unknown {
  if (Buffer.byteLength(body, 'utf8') > MAX_WIRE_BYTES) throw new InvalidSnapshotError(`message body exceeds ${MAX_WIRE_BYTES} bytes`);
  try {
    return JSON.parse(body) as unknown;
  } catch (cause) {
    throw new InvalidSnapshotError('message body is not JSON', [], { cause });
  }
}

function versionOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null && 'v' in value ? (value as { v: unknown }).v : undefined;
}

/** A stable id for a transcript item that has none: its content's hash plus its occurrence. */
export function deriveItemId(item: { role: string; timestampMs: number; content: string }, occurrence = 0): string {
  const hash = createHash('sha256').update(`${item.role}\u0000${item.timestampMs}\u0000${item.content}`, 'utf8').digest('hex').slice(0, 24);
  return `d_${hash}_${occurrence}`;
}

/** Gives every item an id, deriving one where missing (equal items get distinct occurrences). */
export function withItemIds<T extends { role: 'user' | 'assistant'; timestampMs: number; content: string; interrupted?: boolean; id?: string }>(
  items: readonly T[],
): ConversationItem[] {
  const seen = new Map<string, number>();
  return items.map((item) => {
    let id = item.id;
    if (!id) {
      const base = deriveItemId(item);
      const occurrence = seen.get(base) ?? 0;
      seen.set(base, occurrence + 1);
      id = occurrence === 0 ? base : deriveItemId(item, occurrence);
    }
    return { id, role: item.role, content: item.content, interrupted: item.interrupted === true, timestampMs: item.timestampMs };
  });
}

/** Writer id of version-1 snapshots (the worker of that version; they are cumulative by seq). */
export const V1_WRITER = 'v1-worker';

/** A version-1 snapshot as the facts it states. */
export function upgradeV1(snapshot: Snapshot): FactMessage {
  const { call } = snapshot;
  const at = snapshot.sentAtMs;
  const seen = <T extends string>(value: T | undefined): Observed<T> | undefined => (value ? { value, atMs: at } : undefined);
  const final = snapshot.kind === 'ended' || snapshot.kind === 'unanswered';
  const status = (FINAL_STATUSES as readonly string[]).includes(call.status) ? (call.status as FinalStatus) : undefined;
  const facts: CallFacts = {
    roomName: call.roomName,
    startedAtMs: call.startedAtMs,
    direction: { value: call.direction, atMs: at },
    inboundTrunkId: seen(call.inboundTrunkId),
    outboundTrunkId: seen(call.outboundTrunkId),
    agentNumber: seen(call.agentNumber),
    userNumber: seen(call.userNumber),
    sipCallId: seen(call.sipCallId),
    answeredAtMs: call.answered ? (call.answeredAtMs ?? call.startedAtMs) : undefined,
    ended: final && call.endedAtMs !== undefined ? { atMs: call.endedAtMs, source: 'worker', reason: call.endReason } : undefined,
    outcome: final ? { source: 'worker', atMs: call.endedAtMs ?? at, status: status ?? 'failed', reason: call.endReason } : undefined,
    recording: snapshot.recording ? { requested: true, bucket: snapshot.recording.bucket } : undefined,
    conversation: snapshot.conversation ? withItemIds(snapshot.conversation) : undefined,
  };
  return factMessageSchema.parse({
    v: MESSAGE_VERSION,
    kind: snapshot.kind,
    callId: snapshot.callId,
    writer: V1_WRITER,
    seq: snapshot.seq,
    cumulative: true,
    sentAtMs: at,
    facts: JSON.parse(JSON.stringify(facts)) as unknown,
    conversationRef: snapshot.conversationRef,
  });
}

/** Validates an already-parsed value of either version. Throws InvalidSnapshotError / UnsupportedVersionError. */
export function parseMessage(value: unknown): FactMessage {
  const v = versionOf(value);
  if (v === 1) return upgradeV1(parseSnapshot(value));
  if (v !== MESSAGE_VERSION) throw new UnsupportedVersionError(v);
  const result = factMessageSchema.safeParse(value);
  if (!result.success) throw new InvalidSnapshotError('invalid fact message', issues(result.error));
  return result.data;
}

/** Decodes a wire body (an SQS message body) of either version. */
export function decodeMessage(body: string): FactMessage {
  return parseMessage(parseJson(body));
}

/** Validates and serializes; producers call this so nothing invalid leaves them. */
export function encodeMessage(message: FactMessageInput): string {
  const result = factMessageSchema.safeParse(message);
  if (!result.success) throw new InvalidSnapshotError('invalid fact message', issues(result.error));
  return JSON.stringify(result.data);
}

export function encodeRecordingCommand(command: RecordingCommandInput): string {
  return JSON.stringify(recordingCommandSchema.parse(command));
}

/**
 * A recording-queue body: a v2 command, or a v1 snapshot (started / unanswered / ended) that
 * was queued before the upgrade, read as the command it meant.
 */
export function decodeRecordingCommand(body: string): RecordingCommand | undefined {
  const value = parseJson(body);
  const v = versionOf(value);
  if (v === 1) {
    const snapshot = parseSnapshot(value);
    if (!snapshot.recording) return undefined;
    const action = snapshot.kind === 'started' ? 'start' : snapshot.kind === 'unanswered' ? 'discard' : snapshot.kind === 'ended' ? 'finish' : undefined;
    if (!action) return undefined;
    return recordingCommandSchema.parse({
      v: MESSAGE_VERSION,
      type: 'recording',
      action,
      callId: snapshot.callId,
      roomName: snapshot.call.roomName,
      key: snapshot.recording.key,
      bucket: snapshot.recording.bucket,
      egressIds: snapshot.recording.egressId ? [snapshot.recording.egressId] : [],
      issuedAtMs: snapshot.sentAtMs,
    });
  }
  if (v !== MESSAGE_VERSION) throw new UnsupportedVersionError(v);
  const result = recordingCommandSchema.safeParse(value);
  if (!result.success) throw new InvalidSnapshotError('invalid recording command', issues(result.error));
  return result.data;
}
