/**
 * Usage and cost (functions/domain/insights/usage.ts, the price table of
 * functions/config/price-table.ts): the translation of agents-js ModelUsage
 * (fed by the real ModelUsageCollector), merging one writer's cumulative reports (commutative,
 * associative, idempotent — property-tested, since queues reorder and duplicate them), summing
 * writers, the price table's validation errors, and the cost estimate.
 */
import { metrics } from '@livekit/agents';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/config/errors.ts';
import { loadConfig } from '../../functions/config/config.ts';
import type { PriceTable } from '../../functions/config/price-table.ts';
import {
  estimateCost,
  mergeUsage,
  sumUsage,
  usageEntryFromModelUsage,
  type UsageEntry,
} from '../../functions/domain/insights/index.ts';

const VARIABLE = 'CALLDATA_PRICE_TABLE';

describe('usageEntryFromModelUsage (agents-js ModelUsage)', () => {
  it('translates what the real ModelUsageCollector reports for an LLM, a TTS and an STT', () => {
    // Prepare: the metrics one turn produces, through agents-js's own collector
    const collector = new metrics.ModelUsageCollector();
    const common = { label: 'x', requestId: 'r', timestamp: 1, durationMs: 100, cancelled: false };
    collector.collect({ ...common, type: 'llm_metrics', ttftMs: 300, completionTokens: 40, promptTokens: 1_000, promptCachedTokens: 200, totalTokens: 1_040, tokensPerSecond: 80, metadata: { modelProvider: 'openai', modelName: 'gpt-4.1-mini' } });
    collector.collect({ ...common, type: 'tts_metrics', ttfbMs: 150, audioDurationMs: 4_000, charactersCount: 64, streamed: true, metadata: { modelProvider: 'cartesia', modelName: 'sonic-2' } });
    collector.collect({ type: 'stt_metrics', label: 'x', requestId: 'r', timestamp: 1, durationMs: 0, audioDurationMs: 12_500, streamed: true, metadata: { modelProvider: 'deepgram', modelName: 'nova-3' } });
    // Act
    const entries = collector.flatten().map((usage) => usageEntryFromModelUsage(metrics.filterZeroValues(usage)));
    // Assess
    expect(entries).toEqual([
      { kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 1_000, completionTokens: 40, promptCachedTokens: 200 },
      { kind: 'tts', provider: 'cartesia', model: 'sonic-2', characters: 64, audioMs: 4_000 },
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 12_500 },
    ]);
  });

  it('ignores kinds that are not priced here and entries without a model', () => {
    expect(usageEntryFromModelUsage({ type: 'eot_usage', provider: 'livekit', model: 'turn-detector-v1' })).toBeUndefined();
    expect(usageEntryFromModelUsage({ type: 'interruption_usage', provider: 'livekit', model: 'adaptive' })).toBeUndefined();
    expect(usageEntryFromModelUsage({ type: 'llm_usage', provider: 'openai' })).toBeUndefined();
  });
});

describe('mergeUsage and sumUsage: scenarios', () => {
  it('keeps a writer\'s latest cumulative figures, whatever order its reports arrive in', () => {
    // Prepare: report 2 includes everything of report 1
    const report1: UsageEntry[] = [{ kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 500, completionTokens: 20 }];
    const report2: UsageEntry[] = [
      { kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 1_200, completionTokens: 55 },
      { kind: 'tts', provider: 'cartesia', model: 'sonic-2', characters: 300 },
    ];
    // Act
    const merged = mergeUsage(report2, report1);
    // Assess
    expect(merged).toEqual(report2);
  });

  it('adds up different writers (two jobs of one call) per model', () => {
    // Prepare
    const jobA: UsageEntry[] = [{ kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 60_000 }];
    const jobB: UsageEntry[] = [
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 30_000 },
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 45_000 },
    ];
    // Act
    const total = sumUsage([jobA, jobB]);
    // Assess: job B's two reports are cumulative (45 s), not 75 s
    expect(total).toEqual([{ kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 105_000 }]);
  });
});

describe('mergeUsage and sumUsage: properties', () => {
  const count = fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined });
  const entryArb: fc.Arbitrary<UsageEntry> = fc.record(
    {
      kind: fc.constantFrom('llm', 'tts', 'stt'),
      provider: fc.constantFrom('openai', 'cartesia', 'deepgram'),
      model: fc.constantFrom('m1', 'm2'),
      promptTokens: count,
      completionTokens: count,
      promptCachedTokens: count,
      characters: count,
      audioMs: count,
    },
    { requiredKeys: ['kind', 'model'] },
  );
  const reportArb = fc.array(entryArb, { maxLength: 8 });

  it('mergeUsage is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(reportArb, reportArb, reportArb, (a, b, c) => {
        expect(mergeUsage(a, b)).toEqual(mergeUsage(b, a));
        expect(mergeUsage(mergeUsage(a, b), c)).toEqual(mergeUsage(a, mergeUsage(b, c)));
        expect(mergeUsage(mergeUsage(a, b), b)).toEqual(mergeUsage(a, b));
        expect(mergeUsage(a, a)).toEqual(mergeUsage(a, []));
      }),
      { numRuns: 500 },
    );
  });

  it('sumUsage does not depend on the order of writers nor on duplicated reports within a writer', () => {
    fc.assert(
      fc.property(fc.array(reportArb, { maxLength: 5 }), (writers) => {
        const expected = sumUsage(writers);
        expect(sumUsage([...writers].reverse())).toEqual(expected);
        expect(sumUsage(writers.map((report) => [...report, ...report]))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

/** The price table as the configuration reads it from CALLDATA_PRICE_TABLE (inline JSON). */
function parsePriceTable(text: string, variable: string): PriceTable {
  const table = loadConfig({ [variable]: text }).priceTable;
  if (!table) throw new Error(`${variable} was not read`);
  return table;
}

describe('CALLDATA_PRICE_TABLE', () => {
  it('reads the documented shape and defaults the currency to USD', () => {
    // Act
    const table = parsePriceTable('{"models":{"openai/gpt-4.1-mini":{"promptPer1M":0.4,"completionPer1M":1.6}}}', VARIABLE);
    // Assess
    expect(table).toEqual({ currency: 'USD', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 } } });
  });

  it.each([
    ['bad JSON', '{"models":', /^invalid configuration: CALLDATA_PRICE_TABLE: is not valid JSON \(/],
    ['a negative price', '{"models":{"a/b":{"promptPer1M":-1}}}', /CALLDATA_PRICE_TABLE: is not a valid price table \(models\.a\/b\.promptPer1M: /],
    ['a misspelled field', '{"models":{"a/b":{"promptPer1m":1}}}', /CALLDATA_PRICE_TABLE: is not a valid price table \(models\.a\/b: .*promptPer1m/],
    ['a model without any price', '{"models":{"a/b":{}}}', /models\.a\/b: has no price/],
    ['a lowercase currency', '{"currency":"usd","models":{}}', /currency: must be an ISO 4217 code/],
    ['no models', '{"currency":"EUR"}', /models: /],
  ])('rejects %s with one line naming the variable', (_name, text, message) => {
    // Act
    let caught: unknown;
    try {
      parsePriceTable(text, VARIABLE);
    } catch (error) {
      caught = error;
    }
    // Assess
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.problems.map((p) => p.variable)).toEqual([VARIABLE]);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
    expect(error.retryable).toBe(false);
  });
});

describe('estimateCost', () => {
  const table = parsePriceTable(
    JSON.stringify({
      currency: 'USD',
      models: {
        'openai/gpt-4.1-mini': { promptPer1M: 0.4, promptCachedPer1M: 0.1, completionPer1M: 1.6 },
        'cartesia/sonic-2': { per1MCharacters: 65 },
        'deepgram/nova-3': { perMinute: 0.0077 },
        'google/gemini-2.0-flash': { promptPer1M: 0.1 },
      },
    }),
    VARIABLE,
  );

  it('prices each model by its own rates and rounds to 6 decimals', () => {
    // Prepare
    const usage: UsageEntry[] = [
      { kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 10_000, promptCachedTokens: 4_000, completionTokens: 1_000 },
      { kind: 'tts', provider: 'cartesia', model: 'sonic-2', characters: 1_234, audioMs: 80_000 },
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 90_000 },
    ];
    // Act
    const estimate = estimateCost(usage, table);
    // Assess: 6000·0.4e-6 + 4000·0.1e-6 + 1000·1.6e-6 = 0.0044; 1234·65e-6 = 0.08021; 1.5 min · 0.0077 = 0.01155
    expect(estimate).toEqual({
      currency: 'USD',
      total: 0.09616,
      lines: [
        { model: 'openai/gpt-4.1-mini', kind: 'llm', cost: 0.0044 },
        { model: 'cartesia/sonic-2', kind: 'tts', cost: 0.08021 },
        { model: 'deepgram/nova-3', kind: 'stt', cost: 0.01155 },
      ],
      unpriced: [],
    });
  });

  it('lists models it cannot fully price instead of guessing', () => {
    // Prepare: an unknown model, and a known one that used completions the table has no rate for
    const usage: UsageEntry[] = [
      { kind: 'llm', provider: 'anthropic', model: 'claude-x', promptTokens: 100 },
      { kind: 'llm', provider: 'google', model: 'gemini-2.0-flash', promptTokens: 100, completionTokens: 10 },
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 60_000 },
    ];
    // Act
    const estimate = estimateCost(usage, table);
    // Assess
    expect(estimate.unpriced).toEqual(['anthropic/claude-x', 'google/gemini-2.0-flash']);
    expect(estimate.lines).toEqual([{ model: 'deepgram/nova-3', kind: 'stt', cost: 0.0077 }]);
    expect(estimate.total).toBe(0.0077);
  });

  it('finds LiveKit Inference models named provider/model under another provider', () => {
    // Act
    const estimate = estimateCost([{ kind: 'llm', provider: 'livekit', model: 'openai/gpt-4.1-mini', promptTokens: 1_000_000 }], table);
    // Assess
    expect(estimate.lines).toEqual([{ model: 'livekit/openai/gpt-4.1-mini', kind: 'llm', cost: 0.4 }]);
  });

  it('charges cached tokens at the prompt rate when the table has no cached rate', () => {
    const estimate = estimateCost([{ kind: 'llm', provider: 'google', model: 'gemini-2.0-flash', promptTokens: 1_000_000, promptCachedTokens: 500_000 }], table);
    expect(estimate.total).toBe(0.1);
  });
});
