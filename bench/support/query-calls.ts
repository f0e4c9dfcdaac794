/**
 * The stored calls of bench/query.ts: a deterministic, realistic mix, built as the worker's final
 * contract-v2 message of each call (as test/support/query-conformance.ts builds them) and turned
 * into the deltas `backend.merge` takes, the way the persist step does.
 *
 * Call i starts at BASE + i × 30 s (plus a few seconds of jitter, so some starts are shared and
 * the call id breaks the tie): 100 000 calls span about five weeks, the newest has the largest i.
 *
 *   rooms          20 dispatch rooms, `sip-line-00` … `sip-line-19`: each holds 5 % of the calls
 *   agent numbers  10 lines, `+1415555010<k>`: each in 10 % of the calls
 *   user numbers   a caller pool of calls / 5, so a caller has about 5 calls
 *   direction      one in three outbound
 *   outcomes       completed, failed (answered), no_answer, busy (not); one in 20 still in progress
 *   transcript     answered calls: 4 lines (a realistic small record; the queries never read it)
 */
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallDelta } from '../../functions/storage/backend.ts';
import { deltasOf } from '../../functions/domain/persist.ts';

export const BASE = Date.UTC(2026, 8, 1, 6, 0, 0, 0);
export const ROOMS = Array.from({ length: 20 }, (_, k) => `sip-line-${String(k).padStart(2, '0')}`);
export const AGENT_LINES = Array.from({ length: 10 }, (_, k) => `+1415555010${k}`);
const OUTCOMES = [
  { answered: true, status: 'completed' as const },
  { answered: true, status: 'completed' as const },
  { answered: true, status: 'failed' as const },
  { answered: false, status: 'no_answer' as const },
  { answered: false, status: 'busy' as const },
];
const LINES = ['Hi, I am calling about my order.', 'Sure, can you give me the order number?', 'It is 4419.', 'Thanks, it ships tomorrow morning.'];

export function callId(run: string, i: number): string {
  return `RM_qb${run}_${String(i).padStart(6, '0')}`;
}

/** The caller pool: about five calls per caller (a number with a short history). */
export function userNumber(i: number, calls: number): string {
  const pool = Math.max(1, Math.floor(calls / 5));
  // A multiplicative hash spreads one caller's calls over the whole period.
  const k = Math.imul(i, 2_654_435_761) >>> 0;
  return `+9198${String(k % pool).padStart(8, '0')}`;
}

export function callMessage(run: string, i: number, calls: number): FactMessage {
  const id = callId(run, i);
  const startedAtMs = BASE + i * 30_000 + (i % 7) * 1_000;
  const outcome = OUTCOMES[i % OUTCOMES.length] as (typeof OUTCOMES)[number];
  const open = i % 20 === 7;
  const endedAtMs = startedAtMs + 20_000 + (i % 13) * 7_000;
  return {
    v: MESSAGE_VERSION,
    kind: open ? 'progress' : outcome.answered ? 'ended' : 'unanswered',
    callId: id,
    writer: `job:AJ_qb${run}_${i}`,
    seq: 1,
    cumulative: true,
    sentAtMs: open ? startedAtMs + 5_000 : endedAtMs,
    facts: {
      roomName: ROOMS[i % ROOMS.length],
      startedAtMs,
      direction: { value: i % 3 === 0 ? 'outbound' : 'inbound', atMs: startedAtMs },
      inboundTrunkId: { value: 'ST_bench', atMs: startedAtMs },
      userNumber: { value: userNumber(i, calls), atMs: startedAtMs },
      agentNumber: { value: AGENT_LINES[Math.floor(i / 3) % AGENT_LINES.length] as string, atMs: startedAtMs },
      sipCallId: { value: `SCL_${id}`, atMs: startedAtMs },
      ...(outcome.answered ? { answeredAtMs: startedAtMs + 2_000 } : {}),
      ...(open
        ? {}
        : {
            ended: { atMs: endedAtMs, source: 'worker' as const, reason: 'caller hung up' },
            outcome: { source: 'worker' as const, atMs: endedAtMs, status: outcome.status },
          }),
      ...(outcome.answered
        ? {
            conversation: LINES.map((content, k) => ({
              id: `${id}-${k}`,
              role: k % 2 === 0 ? ('user' as const) : ('assistant' as const),
              content,
              interrupted: false,
              timestampMs: startedAtMs + 3_000 + k * 4_000,
            })),
          }
        : {}),
    },
  };
}

/** Deltas of calls [from, to), as the persist step hands them to storage. */
export function deltas(run: string, from: number, to: number, calls: number): CallDelta[] {
  const messages: FactMessage[] = [];
  for (let i = from; i < to; i++) messages.push(callMessage(run, i, calls));
  return deltasOf(messages);
}
