/** Builders for snapshots used across tests. */
import { randomUUID } from 'node:crypto';
import { nextSequence, parseSnapshot, type ConversationItem, type Snapshot, type SnapshotKind } from '../../functions/contract/snapshot.ts';

export interface SnapshotOptions {
  callId?: string;
  seq?: number;
  kind?: SnapshotKind;
  roomName?: string;
  startedAtMs?: number;
  turns?: number;
  conversation?: ConversationItem[];
  recordingKey?: string;
  direction?: 'inbound' | 'outbound';
}

export function conversationOf(turns: number, startMs = Date.UTC(2026, 10, 23, 19, 18, 38, 120)): ConversationItem[] {
  const items: ConversationItem[] = [];
  for (let i = 0; i < turns; i++) {
    items.push({ role: 'user', content: `user says ${i}`, interrupted: false, timestampMs: startMs + i * 2_000 });
    items.push({ role: 'assistant', content: `assistant answers ${i}`, interrupted: i % 3 === 2, timestampMs: startMs + i * 2_000 + 1_000 });
  }
  return items;
}

/** A conversation spread over `durationMs` whose JSON is at least `bytes` long. */
export function longConversation(durationMs: number, bytes: number, startMs = Date.UTC(2026, 10, 23, 10, 0, 0)): ConversationItem[] {
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
  const startedAtMs = options.startedAtMs ?? Date.UTC(2026, 10, 23, 19, 18, 38, 120);
  const ended = kind === 'ended' || kind === 'unanswered';
  const conversation = kind === 'unanswered' ? undefined : (options.conversation ?? conversationOf(options.turns ?? 2, startedAtMs + 1_000));
  return parseSnapshot({
    v: 1,
    kind,
    callId: options.callId ?? `call-${randomUUID()}`,
    seq: options.seq ?? nextSequence(undefined),
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
