/**
 * Builders of what travels to the persist step, used across tests:
 *
 * - v2 fact messages (the contract every producer sends now): `buildMessage`, `itemsOf`;
 * - v1 snapshots (read-only: queued before the upgrade), for the tests of reading and upgrading
 *   them: `buildSnapshot`, `conversationOf`.
 */
import { randomUUID } from 'node:crypto';
import { factMessageSchema, MESSAGE_VERSION, type CallFacts, type ConversationItem, type FactMessage, type MessageKind } from '../../functions/contract/facts.ts';
import { parseSnapshot, type ConversationItem as V1ConversationItem, type Snapshot, type SnapshotKind } from '../../functions/contract/snapshot.ts';
import type { FinalStatus } from '../../functions/contract/vocabulary.ts';

export const TEST_START_MS = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

// ---------------------------------------------------------------------------------------------
// v2: fact messages

/** `turns` user/assistant pairs with stable ids `<idPrefix>-<n>`, two seconds a turn. */
export function itemsOf(turns: number, options: { startMs?: number; idPrefix?: string } = {}): ConversationItem[] {
  const startMs = options.startMs ?? TEST_START_MS + 1_000;
  const prefix = options.idPrefix ?? 'item';
  const items: ConversationItem[] = [];
  for (let i = 0; i < turns; i++) {
    items.push({ id: `${prefix}-${2 * i}`, role: 'user', content: `user says ${i}`, interrupted: false, timestampMs: startMs + i * 2_000 });
    items.push({ id: `${prefix}-${2 * i + 1}`, role: 'assistant', content: `assistant answers ${i}`, interrupted: i % 3 === 2, timestampMs: startMs + i * 2_000 + 1_000 });
  }
  return items;
}

export interface MessageOptions {
  callId?: string;
  /** Default `job:AJ_test` (a worker's job). */
  writer?: string;
  seq?: number;
  /** started / progress / ended / unanswered (the worker's kinds) or webhook / recording / sweeper. Default progress. */
  kind?: MessageKind;
  cumulative?: boolean;
  roomName?: string;
  startedAtMs?: number;
  sentAtMs?: number;
  direction?: 'inbound' | 'outbound';
  /** Turns of conversation (default 2; none for unanswered); ignored when `conversation` is given. */
  turns?: number;
  conversation?: ConversationItem[];
  /** The outcome of a final message (default completed for ended, no_answer for unanswered). */
  status?: FinalStatus;
  /** Add `recording: { requested: true, bucket }`. */
  recordingBucket?: string;
  /** Extra facts merged over the built ones. */
  facts?: Partial<CallFacts>;
}

/**
 * A worker's message as the capture builds it: the job's whole view, with the end and the
 * outcome on its final message (ended / unanswered) only. Validated against the contract.
 */
export function buildMessage(options: MessageOptions = {}): FactMessage {
  const kind = options.kind ?? 'progress';
  const startedAtMs = options.startedAtMs ?? TEST_START_MS;
  const unanswered = kind === 'unanswered';
  const final = kind === 'ended' || unanswered;
  const seenAt = startedAtMs;
  const conversation = unanswered ? undefined : (options.conversation ?? itemsOf(options.turns ?? 2, { startMs: startedAtMs + 1_000 }));
  const endedAtMs = startedAtMs + 90_000;
  const status: FinalStatus = options.status ?? (unanswered ? 'no_answer' : 'completed');
  const facts: CallFacts = {
    roomName: options.roomName ?? 'sip-room-1',
    startedAtMs,
    direction: { value: options.direction ?? 'inbound', atMs: seenAt },
    ...(options.direction === 'outbound' ? { outboundTrunkId: { value: 'ST_outbound123', atMs: seenAt } } : { inboundTrunkId: { value: 'ST_inbound123', atMs: seenAt } }),
    agentNumber: { value: '+14155550100', atMs: seenAt },
    userNumber: { value: '+919876543210', atMs: seenAt },
    ...(unanswered ? {} : { answeredAtMs: startedAtMs + 500 }),
    ...(final
      ? {
          ended: { atMs: endedAtMs, source: 'worker' as const, reason: unanswered ? 'nobody answered within the answer timeout' : 'caller hung up' },
          outcome: { source: 'worker' as const, atMs: endedAtMs, status, reason: unanswered ? 'nobody answered within the answer timeout' : 'caller hung up' },
        }
      : {}),
    ...(options.recordingBucket ? { recording: { requested: true as const, bucket: options.recordingBucket } } : {}),
    ...(conversation ? { conversation } : {}),
    ...options.facts,
  };
  return factMessageSchema.parse({
    v: MESSAGE_VERSION,
    kind,
    callId: options.callId ?? `call-${randomUUID()}`,
    writer: options.writer ?? 'job:AJ_test',
    seq: options.seq ?? 1,
    cumulative: options.cumulative ?? true,
    sentAtMs: options.sentAtMs ?? (final ? endedAtMs : startedAtMs + 2_000),
    facts,
  });
}

// ---------------------------------------------------------------------------------------------
// v1: snapshots (read-only contract; only tests of reading and upgrading them build these)

let v1Counter = 0;
/** A v1 sequence number: grows within the process, as the v1 worker's did. */
export function v1Sequence(nowMs = Date.now()): number {
  v1Counter += 1;
  return nowMs * 1_000 + (v1Counter % 1_000);
}

export interface SnapshotOptions {
  callId?: string;
  seq?: number;
  kind?: SnapshotKind;
  roomName?: string;
  startedAtMs?: number;
  turns?: number;
  conversation?: V1ConversationItem[];
  recordingKey?: string;
  direction?: 'inbound' | 'outbound';
}

export function conversationOf(turns: number, startMs = TEST_START_MS): V1ConversationItem[] {
  const items: V1ConversationItem[] = [];
  for (let i = 0; i < turns; i++) {
    items.push({ role: 'user', content: `user says ${i}`, interrupted: false, timestampMs: startMs + i * 2_000 });
    items.push({ role: 'assistant', content: `assistant answers ${i}`, interrupted: i % 3 === 2, timestampMs: startMs + i * 2_000 + 1_000 });
  }
  return items;
}

/** A conversation spread over `durationMs` whose JSON is at least `bytes` long (items without ids: add them with withItemIds). */
export function longConversation(durationMs: number, bytes: number, startMs = Date.UTC(2026, 10, 23, 10, 0, 0)): V1ConversationItem[] {
  const line = 'Could you repeat the last part about the delivery window and the reference number please? '.repeat(4);
  const count = Math.ceil(bytes / (line.length + 80));
  return Array.from({ length: count }, (_, i) => ({
    role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
    content: `${i}: ${line}`,
    interrupted: false,
    timestampMs: startMs + Math.floor((i * durationMs) / count),
  }));
}

export function buildSnapshot(options: SnapshotOptions = {}): Snapshot {
  const kind = options.kind ?? 'progress';
  const startedAtMs = options.startedAtMs ?? TEST_START_MS;
  const ended = kind === 'ended' || kind === 'unanswered';
  const conversation = kind === 'unanswered' ? undefined : (options.conversation ?? conversationOf(options.turns ?? 2, startedAtMs + 1_000));
  return parseSnapshot({
    v: 1,
    kind,
    callId: options.callId ?? `call-${randomUUID()}`,
    seq: options.seq ?? v1Sequence(),
    sentAtMs: Date.now(),
    call: {
      roomName: options.roomName ?? 'sip-room-1',
      direction: options.direction ?? 'inbound',
      inboundTrunkId: 'ST_inbound123',
      agentNumber: '+14155550100',
      userNumber: '+919876543210',
      startedAtMs,
      answered: kind !== 'unanswered',
      answeredAtMs: kind === 'unanswered' ? undefined : startedAtMs + 500,
      endedAtMs: ended ? startedAtMs + 90_000 : undefined,
      status: kind === 'unanswered' ? 'no_answer' : ended ? 'completed' : 'in_progress',
    },
    recording: options.recordingKey ? { key: options.recordingKey, bucket: 'recordings' } : undefined,
    conversation,
  });
}

/** Room names an attacker could choose. Each must be stored verbatim and escape nothing. */
export const HOSTILE_ROOM_NAMES: readonly string[] = [
  '../../../etc/passwd',
  '..',
  '.',
  'a/b/c',
  '\\..\\windows',
  'nul\u0000byte',
  'x'.repeat(1_000),
  '📞 call ☎️ 日本語 العربية',
  "room'; DROP TABLE call_metadata; --",
  'room" OR "1"="1',
  '{"$gt": ""}',
  '$where',
  'calldata:room:*',
  '\r\nSET injected 1\r\n',
  '%2e%2e%2fescape',
  ' leading and trailing spaces ',
];
