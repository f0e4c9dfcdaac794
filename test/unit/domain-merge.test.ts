/**
 * The merge rules of functions/domain/merge.ts, proved over generated interleavings: any order,
 * duplication and batching of the facts of two workers, the webhook, the recording function and
 * the sweeper gives one and the same record, the merge of all facts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CallState } from '../../functions/contract/record.ts';
import { includes, mergeAll, mergeStates, sameState, stateOf } from '../../functions/domain/merge.ts';
import { renderDocuments } from '../../functions/domain/render.ts';
import { deliveryArb, scenarioArb } from '../support/fact-arbitraries.ts';

const CALL = 'RM_property';
/** Thousands of generated records take seconds; on a busy 2-core machine more than the default 5 s. */
const PROPERTY_TIMEOUT_MS = 60_000;
const statesArb = scenarioArb(CALL).map((s) => s.messages.map(stateOf));

describe('merge of call facts', () => {
  it('is commutative, associative and idempotent on generated records', () => {
    fc.assert(
      fc.property(statesArb, statesArb, statesArb, (as, bs, cs) => {
        // Prepare: three records, each the merge of one generated scenario's facts
        const [a, b, c] = [mergeAll(as), mergeAll(bs), mergeAll(cs)];
        // Act + Assess
        expect(sameState(mergeStates(a, b), mergeStates(b, a))).toBe(true);
        expect(sameState(mergeStates(mergeStates(a, b), c), mergeStates(a, mergeStates(b, c)))).toBe(true);
        expect(sameState(mergeStates(a, a), a)).toBe(true);
      }),
      { numRuns: 1_500 },
    );
  }, PROPERTY_TIMEOUT_MS);

  it('gives the merge of all facts whatever the delivery order, duplication and batching', () => {
    const arb = scenarioArb(CALL).chain((scenario) => deliveryArb(scenario).map((batches) => ({ scenario, batches })));
    fc.assert(
      fc.property(arb, ({ scenario, batches }) => {
        // Prepare: the reference record folds the messages in send order, once each
        const expected = mergeAll(scenario.messages.map(stateOf));
        // Act: each batch is merged on its own, then into what is stored
        let stored: CallState | undefined;
        for (const batch of batches) {
          const delta = mergeAll(batch.map(stateOf));
          stored = stored ? mergeStates(stored, delta) : delta;
        }
        // Assess
        expect(stored).toBeDefined();
        expect(sameState(stored as CallState, expected)).toBe(true);
        // Equal records render equal documents, whatever order built them.
        const folder = 'room/20261124T004838.120_RM_property';
        expect(renderDocuments(stored as CallState, folder, ['metadata', 'transcription'], 'Asia/Kolkata')).toEqual(renderDocuments(expected, folder, ['metadata', 'transcription'], 'Asia/Kolkata'));
      }),
      { numRuns: 3_000 },
    );
  }, PROPERTY_TIMEOUT_MS);

  it('never shrinks the transcript or the turns’ latency, never forgets an answer, an end or an egress', () => {
    fc.assert(
      fc.property(statesArb, statesArb, (as, bs) => {
        const a = mergeAll(as);
        const merged = mergeStates(a, mergeAll(bs));
        // Every item of a is still there, unchanged or replaced by a same-id item.
        const ids = new Set((merged.conversation ?? []).map((i) => i.id));
        for (const item of a.conversation ?? []) expect(ids.has(item.id)).toBe(true);
        const turnIds = new Set((merged.turns ?? []).map((t) => t.id));
        for (const turn of a.turns ?? []) expect(turnIds.has(turn.id)).toBe(true);
        if (a.answeredAtMs !== undefined) expect(merged.answeredAtMs).toBeLessThanOrEqual(a.answeredAtMs);
        if (a.outcome) expect(merged.outcome).toBeDefined();
        if (a.ended) expect(merged.ended).toBeDefined();
        for (const id of Object.keys(a.recording?.egress ?? {})) expect(merged.recording?.egress?.[id]).toBeDefined();
        expect(includes(merged, a)).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  }, PROPERTY_TIMEOUT_MS);
});
