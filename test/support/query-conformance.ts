/**
 * What every backend's `queryCalls` must answer, against the real server: run by each backend's
 * own test file with `describeQueryConformance({ ... })`. Seeds thousands of calls (varied rooms,
 * numbers, directions, outcomes and start times) plus one with a 2 MB transcript, then checks
 * ordering, every filter, combined filters and paging against the same filters applied in memory.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallSummary } from '../../functions/contract/record.ts';
import { stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { summarize } from '../../functions/domain/render.ts';
import { matchesFilter, newestFirst, type BackendOptions, type CallFilter, type StorageBackend } from '../../functions/storage/backend.ts';
import { InvalidQueryError } from '../../functions/storage/errors.ts';
import { BOTH } from './backend-conformance.ts';
import { longConversation } from './snapshots.ts';

export interface QueryConformanceOptions {
  name: string;
  /** A backend on a location of its own: no other test's calls in it. */
  create: (options: BackendOptions) => Promise<StorageBackend>;
  /** How many calls to seed (thousands; fewer where every write is an HTTP request). */
  calls?: number;
}

const BASE = Date.UTC(2026, 10, 1, 8, 0, 0, 0);
const ROOMS = ['support-line', 'sales', "room'; DROP TABLE call_records; --", '<img src=x onerror=alert(1)>', '📞 日本語'];
const NUMBERS = ['+14155550100', '+919876543210', '+442071838750', '+15550199999'];
const STATUSES = [
  { answered: true, status: 'completed' as const },
  { answered: true, status: 'failed' as const },
  { answered: false, status: 'no_answer' as const },
  { answered: false, status: 'busy' as const },
];

/** A finished (or, one in seven, still open) call, as its worker's final message. */
function callMessage(i: number, run: string): FactMessage {
  const callId = `RM_q${run}_${String(i).padStart(6, '0')}`;
  const startedAtMs = BASE + Math.floor(i * 37_113.7) + (i % 5) * 1_000;
  const outcome = STATUSES[i % STATUSES.length] ?? { answered: true, status: 'completed' as const };
  const open = i % 7 === 3;
  const endedAtMs = startedAtMs + 10_000 + (i % 11) * 3_000;
  return {
    v: MESSAGE_VERSION,
    kind: open ? 'progress' : outcome.answered ? 'ended' : 'unanswered',
    callId,
    writer: `job:AJ_${run}_${i}`,
    seq: 1,
    cumulative: true,
    sentAtMs: endedAtMs,
    facts: {
      roomName: ROOMS[i % ROOMS.length],
      startedAtMs,
      direction: { value: i % 3 === 0 ? 'outbound' : 'inbound', atMs: startedAtMs },
      userNumber: { value: NUMBERS[i % NUMBERS.length] ?? '', atMs: startedAtMs },
      agentNumber: { value: NUMBERS[(i + 1) % NUMBERS.length] ?? '', atMs: startedAtMs },
      ...(outcome.answered ? { answeredAtMs: startedAtMs + 800 } : {}),
      ...(open
        ? {}
        : {
            ended: { atMs: endedAtMs, source: 'worker' as const, reason: 'caller hung up' },
            outcome: { source: 'worker' as const, atMs: endedAtMs, status: outcome.status },
          }),
      ...(outcome.answered ? { conversation: [{ id: `${callId}-1`, role: 'user' as const, content: `call ${i}`, interrupted: false, timestampMs: startedAtMs + 1_000 }] } : {}),
    },
  };
}

export function describeQueryConformance(options: QueryConformanceOptions): void {
  describe(`${options.name} call queries`, () => {
    const run = randomUUID().replace(/-/g, '').slice(0, 6);
    const total = options.calls ?? 3_000;
    let backend: StorageBackend;
    let expected: CallSummary[] = [];
    let longCallId = '';

    beforeAll(async () => {
      backend = await options.create(BOTH);
      const messages = Array.from({ length: total }, (_, i) => callMessage(i, run));
      const long = callMessage(total, run);
      longCallId = long.callId;
      long.facts.conversation = longConversation(4 * 60 * 60 * 1000, 2 * 1024 * 1024).map((item, i) => ({ ...item, id: `long-${i}` }));
      messages.push(long);
      for (let i = 0; i < messages.length; i += 250) await backend.merge(deltasOf(messages.slice(i, i + 250)));
      expected = messages
        .map((m) => summarize(stateOf(m)))
        .filter((s): s is CallSummary => s !== undefined)
        .sort(newestFirst);
    }, 600_000);
    afterAll(async () => {
      await backend?.close();
    });

    async function all(filter: CallFilter, limit: number): Promise<{ calls: CallSummary[]; pages: number }> {
      const calls: CallSummary[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await backend.queryCalls({ ...filter, limit, cursor });
        expect(page.calls.length).toBeLessThanOrEqual(limit);
        calls.push(...page.calls);
        cursor = page.cursor;
        pages++;
        expect(pages, 'paging must end').toBeLessThan(total + 10);
      } while (cursor);
      return { calls, pages };
    }

    it('pages through every call newest first, each exactly once, with the summary the record gives', async () => {
      const { calls, pages } = await all({}, 200);
      expect(calls.map((c) => c.callId)).toEqual(expected.map((c) => c.callId));
      expect(calls).toEqual(expected);
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 200));
    });

    it('the newest page of 50 is the 50 newest calls', async () => {
      const page = await backend.queryCalls({ limit: 50 });
      expect(page.calls).toEqual(expected.slice(0, 50));
      expect(page.cursor).toBeDefined();
    });

    const filters: [string, CallFilter][] = [
      ['a time window', { sinceMs: BASE + 20 * 60 * 60_000, untilMs: BASE + 30 * 60 * 60_000 }],
      ['since only', { sinceMs: BASE + 5 * 24 * 60 * 60_000 }],
      ['a room (an SQL injection name)', { room: ROOMS[2] }],
      ['a room (markup)', { room: ROOMS[3] }],
      ['a number (caller or agent)', { number: NUMBERS[1] }],
      ['direction', { direction: 'outbound' }],
      ['answered', { answered: true }],
      ['unanswered', { answered: false }],
      ['status', { status: 'busy' }],
      ['in progress', { status: 'in_progress' }],
      ['combined', { room: ROOMS[0], answered: true, direction: 'inbound', sinceMs: BASE + 24 * 60 * 60_000 }],
      ['nothing matches', { room: 'no such room' }],
    ];
    for (const [label, filter] of filters) {
      it(`filters by ${label}, pages included`, async () => {
        const want = expected.filter((c) => matchesFilter(c, filter));
        const { calls } = await all(filter, 97);
        expect(calls.map((c) => c.callId)).toEqual(want.map((c) => c.callId));
      });
    }

    it('lists the call with a 2 MB transcript and reads it back whole', async () => {
      const page = await backend.queryCalls({ limit: 5, room: ROOMS[total % ROOMS.length], sinceMs: expected.find((c) => c.callId === longCallId)?.startedAtMs });
      expect(page.calls.map((c) => c.callId)).toContain(longCallId);
      const stored = await backend.read(longCallId);
      expect(JSON.stringify(stored?.documents.transcription).length).toBeGreaterThan(2 * 1024 * 1024);
    });

    it('refuses a cursor it did not make with a clear, non-retryable error', async () => {
      const error = await backend.queryCalls({ limit: 10, cursor: 'bm90LWEtY3Vyc29y' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidQueryError);
      expect((error as InvalidQueryError).retryable).toBe(false);
    });
  });
}
