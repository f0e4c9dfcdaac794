/**
 * Latency per turn and per call (functions/domain/insights/latency.ts): nearest-rank percentiles on
 * known data, the seconds → milliseconds conversion of agents-js chat-message metrics, grouping of
 * metrics events into turns, and properties over any set of turns (p50 ≤ p90 ≤ max, every figure
 * is one of the inputs, the order of turns does not matter).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LATENCY_METRICS,
  summarizeLatency,
  turnLatencyFromMessageMetrics,
  turnLatencyFromMetrics,
  type AgentMetricsLike,
  type TurnLatency,
} from '../../functions/domain/insights/index.ts';

describe('summarizeLatency', () => {
  it('computes nearest-rank p50 / p90 / max per metric, in integer ms', () => {
    // Prepare: ten turns with e2e 100..1000 ms (+0.4 to prove rounding), LLM ttft on two turns only
    const turns: TurnLatency[] = Array.from({ length: 10 }, (_, i) => ({ e2eMs: (i + 1) * 100 + 0.4 }));
    turns[0] = { ...turns[0], llmTtftMs: 350.6 };
    turns[1] = { ...turns[1], llmTtftMs: 120 };
    // Act
    const summary = summarizeLatency(turns);
    // Assess: rank ceil(0.5·10) = 5th, ceil(0.9·10) = 9th; ceil(0.5·2) = 1st, ceil(0.9·2) = 2nd
    expect(summary).toEqual({
      e2eMs: { p50: 500, p90: 900, max: 1000, count: 10 },
      llmTtftMs: { p50: 120, p90: 351, max: 351, count: 2 },
    });
  });

  it('leaves out metrics without a measured value (agents-js placeholders 0 and -1, NaN)', () => {
    // Act
    const summary = summarizeLatency([{ endOfUtteranceDelayMs: 0, llmTtftMs: -1, ttsTtfbMs: Number.NaN }, {}]);
    // Assess
    expect(summary).toEqual({});
  });

  it('gives one value as its own p50, p90 and max', () => {
    expect(summarizeLatency([{ ttsTtfbMs: 212 }])).toEqual({ ttsTtfbMs: { p50: 212, p90: 212, max: 212, count: 1 } });
  });
});

describe('turnLatencyFromMessageMetrics (agents-js MetricsReport, in seconds)', () => {
  it('converts a user message\'s delays and an assistant message\'s first-output times to ms', () => {
    // Act
    const user = turnLatencyFromMessageMetrics({ transcriptionDelay: 0.25, endOfTurnDelay: 0.6 });
    const assistant = turnLatencyFromMessageMetrics({ llmNodeTtft: 0.42, ttsNodeTtfb: 0.18, e2eLatency: 1.3 });
    // Assess
    expect(user).toEqual({ transcriptionDelayMs: 250, endOfUtteranceDelayMs: 600 });
    expect(assistant).toEqual({ llmTtftMs: 420, ttsTtfbMs: 180, e2eMs: 1300 });
  });

  it('drops placeholders instead of storing them', () => {
    expect(turnLatencyFromMessageMetrics({ transcriptionDelay: 0, llmNodeTtft: -1 })).toEqual({});
  });
});

describe('turnLatencyFromMetrics (metrics_collected events, in ms)', () => {
  it('groups events by speechId, keeps the first measured response, and estimates e2e', () => {
    // Prepare: turn A has every part; its second LLM response (after a tool call) must not count.
    // Turn B has no TTS yet; an event without speechId belongs to no turn; VAD events are ignored.
    const events: AgentMetricsLike[] = [
      { type: 'eou_metrics', speechId: 'A', endOfUtteranceDelayMs: 500, transcriptionDelayMs: 200 },
      { type: 'llm_metrics', speechId: 'A', ttftMs: 300 },
      { type: 'llm_metrics', speechId: 'A', ttftMs: 900 },
      { type: 'tts_metrics', speechId: 'A', ttfbMs: 150 },
      { type: 'eou_metrics', speechId: 'B', endOfUtteranceDelayMs: 0, transcriptionDelayMs: 0 },
      { type: 'eou_metrics', speechId: 'B', endOfUtteranceDelayMs: 450, transcriptionDelayMs: 100 },
      { type: 'llm_metrics', speechId: 'B', ttftMs: 250 },
      { type: 'llm_metrics', ttftMs: 999 },
      { type: 'vad_metrics', speechId: 'C' },
    ];
    // Act
    const turns = turnLatencyFromMetrics(events);
    // Assess
    expect(turns).toEqual([
      { endOfUtteranceDelayMs: 500, transcriptionDelayMs: 200, llmTtftMs: 300, ttsTtfbMs: 150, e2eMs: 950 },
      { endOfUtteranceDelayMs: 450, transcriptionDelayMs: 100, llmTtftMs: 250 },
    ]);
  });
});

describe('summarizeLatency: properties', () => {
  const valueArb = fc.option(fc.double({ min: 0.5, max: 60_000, noNaN: true }), { nil: undefined });
  const turnArb: fc.Arbitrary<TurnLatency> = fc.record(
    { endOfUtteranceDelayMs: valueArb, transcriptionDelayMs: valueArb, llmTtftMs: valueArb, ttsTtfbMs: valueArb, e2eMs: valueArb },
    { requiredKeys: [] },
  );
  const turnsArb = fc.array(turnArb, { maxLength: 40 });

  it('p50 ≤ p90 ≤ max, every figure is one of the (rounded) inputs, count is the number of values', () => {
    fc.assert(
      fc.property(turnsArb, (turns) => {
        const summary = summarizeLatency(turns);
        for (const metric of LATENCY_METRICS) {
          const inputs = turns.map((t) => t[metric]).filter((v): v is number => v !== undefined).map(Math.round);
          const stats = summary[metric];
          if (inputs.length === 0) {
            expect(stats).toBeUndefined();
            continue;
          }
          expect(stats).toBeDefined();
          if (!stats) continue;
          expect(stats.p50).toBeLessThanOrEqual(stats.p90);
          expect(stats.p90).toBeLessThanOrEqual(stats.max);
          expect(stats.max).toBe(Math.max(...inputs));
          expect(stats.count).toBe(inputs.length);
          for (const figure of [stats.p50, stats.p90, stats.max]) expect(inputs).toContain(figure);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on the order of the turns', () => {
    fc.assert(
      fc.property(turnsArb.chain((turns) => fc.tuple(fc.constant(turns), fc.shuffledSubarray(turns, { minLength: turns.length, maxLength: turns.length }))), ([turns, shuffled]) => {
        expect(summarizeLatency(shuffled)).toEqual(summarizeLatency(turns));
      }),
      { numRuns: 500 },
    );
  });
});
