/**
 * Model usage per call (LLM tokens, TTS characters, STT audio) and its estimated cost.
 *
 * A worker's agents session reports usage cumulatively (`session_usage_updated`, one entry per
 * provider+model: agents-js `LLMModelUsage` / `TTSModelUsage` / `STTModelUsage`), so one writer's
 * reports merge by field-wise max (order, duplicates and loss of earlier reports do not matter),
 * and different writers of one call (say two jobs) add up. Field names follow agents-js LLMMetrics
 * (`promptTokens`, `completionTokens`, `promptCachedTokens`); usageEntryFromModelUsage translates
 * the ModelUsage names. The stored document uses snake_case.
 *
 * The optional price table (CALLDATA_PRICE_TABLE, read with the configuration:
 * functions/config/price-table.ts) turns usage into an estimate; a model missing from it, or
 * priced without a rate for something it used, is listed as unpriced, never guessed.
 */
import type { ModelPrice, PriceTable } from '../../config/price-table.ts';
import { USAGE_QUANTITIES, type UsageKind, type UsageQuantity } from '../../contract/vocabulary.ts';

export type { ModelPrice, PriceTable, UsageKind };

export interface UsageEntry {
  kind: UsageKind;
  provider?: string;
  model: string;
  promptTokens?: number;
  completionTokens?: number;
  /** The part of promptTokens served from the provider's cache. */
  promptCachedTokens?: number;
  characters?: number;
  audioMs?: number;
}

/** The model's name as the price table knows it: `provider/model`, or the model alone. */
export function usageModelKey(entry: Pick<UsageEntry, 'provider' | 'model'>): string {
  return entry.provider ? `${entry.provider}/${entry.model}` : entry.model;
}
const entryKey = (entry: UsageEntry): string => `${entry.kind}\u0000${entry.provider ?? ''}\u0000${entry.model}`;

function combine(entries: readonly UsageEntry[], pick: (a: number, b: number) => number): UsageEntry[] {
  const byKey = new Map<string, UsageEntry>();
  for (const entry of entries) {
    const key = entryKey(entry);
    const into = byKey.get(key);
    if (!into) {
      byKey.set(key, { ...entry });
      continue;
    }
    for (const quantity of USAGE_QUANTITIES) {
      const value = entry[quantity];
      if (value === undefined) continue;
      const current = into[quantity];
      into[quantity] = current === undefined ? value : pick(current, value);
    }
  }
  // Sorted, so equal inputs give equal outputs whatever their order.
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
}

/** One writer's cumulative reports: per kind+provider+model, the field-wise max (commutative, associative, idempotent). */
export function mergeUsage(a: readonly UsageEntry[], b: readonly UsageEntry[]): UsageEntry[] {
  return combine([...a, ...b], Math.max);
}

/** Several writers' usage of one call: per kind+provider+model, the field-wise sum. */
export function sumUsage(perWriter: readonly (readonly UsageEntry[])[]): UsageEntry[] {
  return combine(
    perWriter.map((entries) => combine(entries, Math.max)).flat(),
    (x, y) => x + y,
  );
}

/** The fields of an agents-js `ModelUsage` entry (as `session.usage.modelUsage` gives them: zeros left out). */
export interface ModelUsageLike {
  type?: string;
  provider?: string;
  model?: string;
  inputTokens?: number;
  inputCachedTokens?: number;
  outputTokens?: number;
  charactersCount?: number;
  audioDurationMs?: number;
}

/** A usage entry from an agents-js ModelUsage; undefined for kinds not priced here (interruption, EOT) or without a model. */
export function usageEntryFromModelUsage(usage: ModelUsageLike): UsageEntry | undefined {
  if (!usage.model) return undefined;
  const base = { model: usage.model, ...(usage.provider ? { provider: usage.provider } : {}) };
  const defined = <T extends object>(fields: T): Partial<T> =>
    Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
  switch (usage.type) {
    case 'llm_usage':
      return { kind: 'llm', ...base, ...defined({ promptTokens: usage.inputTokens, completionTokens: usage.outputTokens, promptCachedTokens: usage.inputCachedTokens }) };
    case 'tts_usage':
      return { kind: 'tts', ...base, ...defined({ characters: usage.charactersCount, audioMs: usage.audioDurationMs }) };
    case 'stt_usage':
      return { kind: 'stt', ...base, ...defined({ audioMs: usage.audioDurationMs }) };
    default:
      return undefined;
  }
}

export interface CostLine {
  model: string;
  kind: UsageKind;
  cost: number;
}
export interface CostEstimate {
  currency: string;
  total: number;
  lines: CostLine[];
  unpriced: string[];
}

const round6 = (value: number): number => Math.round(value * 1e6) / 1e6;

/** amount × rate / per, 0 when nothing was used, undefined when something was used without a rate. */
function priced(amount: number, perUnit: number | undefined, per: number): number | undefined {
  if (amount <= 0) return 0;
  return perUnit === undefined ? undefined : (amount * perUnit) / per;
}

/** The cost of one entry, or undefined when it used something its price does not cover. */
function entryCost(entry: UsageEntry, price: ModelPrice): number | undefined {
  const used = (quantity: UsageQuantity): number => entry[quantity] ?? 0;
  let parts: (number | undefined)[];
  switch (entry.kind) {
    case 'llm': {
      // Cached tokens are part of the prompt tokens: at their own rate when the table has one.
      const cached = price.promptCachedPer1M === undefined ? 0 : Math.min(used('promptCachedTokens'), used('promptTokens'));
      parts = [
        priced(used('promptTokens') - cached, price.promptPer1M, 1e6),
        priced(cached, price.promptCachedPer1M, 1e6),
        priced(used('completionTokens'), price.completionPer1M, 1e6),
      ];
      break;
    }
    case 'tts':
      // TTS reports characters and audio length; providers bill one of them, by characters when the table says so.
      parts = [price.per1MCharacters !== undefined || used('audioMs') <= 0 ? priced(used('characters'), price.per1MCharacters, 1e6) : priced(used('audioMs'), price.perMinute, 60_000)];
      break;
    case 'stt':
      parts = [priced(used('audioMs'), price.perMinute, 60_000)];
      break;
  }
  let cost = 0;
  for (const part of parts) {
    if (part === undefined) return undefined;
    cost += part;
  }
  return cost;
}

const priceOf = (table: PriceTable, model: string): ModelPrice | undefined => (Object.hasOwn(table.models, model) ? table.models[model] : undefined);

/** Estimated cost of a call's usage; models the table does not fully price are listed, not guessed. */
export function estimateCost(usage: readonly UsageEntry[], table: PriceTable): CostEstimate {
  const lines: CostLine[] = [];
  const unpriced = new Set<string>();
  for (const entry of usage) {
    const key = usageModelKey(entry);
    // LiveKit Inference names models `provider/model` already; the model alone then finds them.
    const price = priceOf(table, key) ?? priceOf(table, entry.model);
    const cost = price && entryCost(entry, price);
    if (cost === undefined) unpriced.add(key);
    else lines.push({ model: key, kind: entry.kind, cost: round6(cost) });
  }
  return { currency: table.currency, total: round6(lines.reduce((sum, line) => sum + line.cost, 0)), lines, unpriced: [...unpriced].sort() };
}
