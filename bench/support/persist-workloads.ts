/**
 * The message streams bench/persist.ts feeds to the persist handler and to the hand-written
 * baselines. Every stream is built (and encoded, as the producer would) before anything is
 * timed, with fresh call ids per column, so no column sees another column's calls.
 *
 *   updates      N calls, each started → progress ×3 → ended from ONE worker job. Messages are
 *                cumulative (each holds the whole conversation so far), so 4 of each call's 5
 *                messages update a stored call. Delivered in waves of 10 calls: a 10-record batch
 *                holds 10 different calls' next message, as SQS gives them to one Lambda.
 *   inserts      N calls, one message each (the call's final cumulative view): every write is new.
 *   two-writers  N calls, each with messages from two worker jobs (the first dies after three
 *                messages, a re-dispatched job takes over and ends the call) plus LiveKit's
 *                participant_left fact from the webhook; shuffled in windows of 50 concurrent
 *                calls, so a call's messages arrive out of order and interleaved with others'.
 */
import type { SQSEvent } from 'aws-lambda';
import { encodeMessage, MESSAGE_VERSION, type ConversationItem, type FactMessage } from '../../functions/contract/facts.ts';

export type WorkloadName = 'updates' | 'inserts' | 'two-writers';

/** One SQS message body as the producer encoded it, with what the baselines key on. */
export interface BenchMessage {
  callId: string;
  body: string;
}

export const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
/** Messages per call in each workload (for reporting). */
export const MESSAGES_PER_CALL: Record<WorkloadName, number> = { updates: 5, inserts: 1, 'two-writers': 7 };

const LINES = [
  'Hi, I am calling about my order, it was supposed to arrive yesterday.',
  'I can help with that. Could you give me the order number, please?',
  'Sure, it is four seven one two, nine nine zero three.',
  'Thanks. I see it left the warehouse this morning and should arrive by six pm today.',
  'Great, and will the driver call me before coming?',
  'Yes, you will get a call about thirty minutes before the delivery window.',
  'Perfect, that is all I needed. Thank you.',
  'You are welcome. Have a nice day!',
];

/** `turns` user/assistant exchanges; ids are stable per writer, as the worker's are. */
function conversation(writer: string, turns: number, fromMs: number): ConversationItem[] {
  const items: ConversationItem[] = [];
  for (let i = 0; i < turns * 2; i++) {
    items.push({
      id: `${writer}-item-${i}`,
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: LINES[i % LINES.length] as string,
      interrupted: false,
      timestampMs: fromMs + 1_000 + i * 3_000,
    });
  }
  return items;
}

interface WorkerStep {
  atMs: number;
  answered: boolean;
  turns: number;
  final: boolean;
}

/** One worker job's cumulative messages. The sequence is the send time, as the worker's grows. */
function workerMessages(callId: string, writer: string, steps: readonly WorkerStep[], answeredAtMs: number): FactMessage[] {
  return steps.map((step, i) => ({
    v: MESSAGE_VERSION,
    kind: i === 0 ? 'started' : step.final ? 'ended' : 'progress',
    callId,
    writer,
    seq: step.atMs,
    cumulative: true,
    sentAtMs: step.atMs,
    facts: {
      roomName: `sip-${callId}`,
      startedAtMs: START,
      direction: { value: 'inbound', atMs: START },
      inboundTrunkId: { value: 'ST_inbound123', atMs: START },
      agentNumber: { value: '+14155550100', atMs: START },
      userNumber: { value: '+919876543210', atMs: START },
      sipCallId: { value: `SCL_${callId}`, atMs: START },
      ...(step.answered ? { answeredAtMs } : {}),
      ...(step.final
        ? { ended: { atMs: step.atMs, source: 'worker' as const, reason: 'caller hung up' }, outcome: { source: 'worker' as const, atMs: step.atMs, status: 'completed' as const } }
        : {}),
      ...(step.answered ? { conversation: conversation(writer, step.turns, answeredAtMs) } : {}),
    },
  }));
}

/** The one-job life of a call: started (ringing), answered with 1, 2, 3 turns, ended. */
function oneJobCall(callId: string): FactMessage[] {
  const at = (s: number) => START + s * 5_000;
  return workerMessages(
    callId,
    'job:AJ_bench',
    [
      { atMs: at(0), answered: false, turns: 0, final: false },
      { atMs: at(1), answered: true, turns: 1, final: false },
      { atMs: at(2), answered: true, turns: 2, final: false },
      { atMs: at(3), answered: true, turns: 3, final: false },
      { atMs: at(4), answered: true, turns: 3, final: true },
    ],
    START + 2_000,
  );
}

/** Two jobs (the second a re-dispatch after the first died) and the webhook's participant_left. */
function twoWriterCall(callId: string): FactMessage[] {
  const first = workerMessages(
    callId,
    'job:AJ_first',
    [
      { atMs: START, answered: false, turns: 0, final: false },
      { atMs: START + 5_000, answered: true, turns: 1, final: false },
      { atMs: START + 10_000, answered: true, turns: 2, final: false },
    ],
    START + 2_000,
  );
  const second = workerMessages(
    callId,
    'job:AJ_second',
    [
      { atMs: START + 30_000, answered: true, turns: 0, final: false },
      { atMs: START + 35_000, answered: true, turns: 1, final: false },
      { atMs: START + 40_000, answered: true, turns: 2, final: true },
    ],
    START + 2_000,
  );
  const leftAt = START + 40_500;
  const webhook: FactMessage = {
    v: MESSAGE_VERSION,
    kind: 'webhook',
    callId,
    writer: `webhook:pl-${callId}`,
    seq: leftAt,
    cumulative: false,
    sentAtMs: leftAt,
    facts: { roomName: `sip-${callId}`, startedAtMs: START, ended: { atMs: leftAt, source: 'participant_left', reason: 'sip participant left' } },
  };
  return [...first, ...second, webhook];
}

/** A small deterministic PRNG (mulberry32): the same shuffle every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffle<T>(items: T[], next: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** The delivery order of a workload over `calls` calls whose ids start with `prefix`. */
export function workload(name: WorkloadName, prefix: string, calls: number): BenchMessage[] {
  const ids = Array.from({ length: calls }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);
  const ordered: FactMessage[] = [];
  const WAVE = 10;
  const WINDOW = 50;
  switch (name) {
    case 'updates':
      // Waves of 10 concurrent calls: each batch of 10 is every call's next message.
      for (let w = 0; w < ids.length; w += WAVE) {
        const wave = ids.slice(w, w + WAVE).map(oneJobCall);
        for (let step = 0; step < MESSAGES_PER_CALL.updates; step++) for (const call of wave) ordered.push(call[step] as FactMessage);
      }
      break;
    case 'inserts':
      for (const id of ids) ordered.push(oneJobCall(id).at(-1) as FactMessage);
      break;
    case 'two-writers': {
      const next = random(0x5eed);
      for (let w = 0; w < ids.length; w += WINDOW) ordered.push(...shuffle(ids.slice(w, w + WINDOW).flatMap(twoWriterCall), next));
      break;
    }
  }
  // Encoded (validated and serialized) as the producer does, outside any measurement.
  return ordered.map((message) => ({ callId: message.callId, body: encodeMessage(message) }));
}

/** SQS events of `size` records each, in delivery order. */
export function eventsOf(messages: readonly BenchMessage[], size: number): SQSEvent[] {
  const events: SQSEvent[] = [];
  for (let i = 0; i < messages.length; i += size) {
    events.push({
      Records: messages.slice(i, i + size).map((m, k) => ({
        messageId: `m-${i + k}-${m.callId}`,
        receiptHandle: 'bench',
        body: m.body,
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'bench', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:bench',
        awsRegion: 'us-east-1',
      })),
    });
  }
  return events;
}
