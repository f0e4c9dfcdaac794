/**
 * Per-turn latency and its per-call summary, named after agents-js metrics: EOUMetrics
 * `endOfUtteranceDelayMs` / `transcriptionDelayMs`, LLMMetrics `ttftMs`, TTSMetrics `ttfbMs`, and
 * end-to-end = end of the user's speech → the agent's first audio (the chat message's `e2eLatency`).
 * Everything here is in milliseconds. Beware the two units of agents-js: the metrics events
 * (`metrics_collected`) carry milliseconds, the chat messages' `MetricsReport` carries seconds.
 */

export interface TurnLatency {
  endOfUtteranceDelayMs?: number;
  transcriptionDelayMs?: number;
  llmTtftMs?: number;
  ttsTtfbMs?: number;
  e2eMs?: number;
}

export const LATENCY_METRICS = ['endOfUtteranceDelayMs', 'transcriptionDelayMs', 'llmTtftMs', 'ttsTtfbMs', 'e2eMs'] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

/** Nearest-rank percentiles of one metric over a call, integer milliseconds. */
export interface LatencyStats {
  p50: number;
  p90: number;
  max: number;
  count: number;
}
/** Only metrics with at least one value appear. */
export type LatencySummary = Partial<Record<LatencyMetric, LatencyStats>>;

/** A measured duration: agents-js uses 0 for "end of speech not detected" and -1 for "no token". */
function measured(value: number | undefined): value is number {
  return value !== undefined && Number.isFinite(value) && value > 0;
}

/** Nearest-rank percentile (the smallest value with at least p% of values at or below it) of sorted values. */
function nearestRank(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export function summarizeLatency(turns: readonly TurnLatency[]): LatencySummary {
  const summary: LatencySummary = {};
  for (const metric of LATENCY_METRICS) {
    const values = turns.map((turn) => turn[metric]).filter(measured).map(Math.round).sort((a, b) => a - b);
    if (values.length === 0) continue;
    summary[metric] = { p50: nearestRank(values, 50), p90: nearestRank(values, 90), max: nearestRank(values, 100), count: values.length };
  }
  return summary;
}

/** Keeps only measured values, so a turn never stores agents-js's 0 / -1 placeholders. */
function compact(turn: TurnLatency): TurnLatency {
  const out: TurnLatency = {};
  for (const metric of LATENCY_METRICS) {
    const value = turn[metric];
    if (measured(value)) out[metric] = value;
  }
  return out;
}

/** The fields of agents-js `llm.MetricsReport` (a chat message's `metrics`) this module reads; seconds. */
export interface MessageMetricsLike {
  transcriptionDelay?: number;
  endOfTurnDelay?: number;
  llmNodeTtft?: number;
  ttsNodeTtfb?: number;
  e2eLatency?: number;
}

const seconds = (value: number | undefined): number | undefined => (value === undefined ? undefined : value * 1000);

/**
 * A chat message's latency in ms. A user message carries the transcription and end-of-turn
 * delays, an assistant message the LLM/TTS first-output times and the end-to-end latency.
 */
export function turnLatencyFromMessageMetrics(metrics: MessageMetricsLike): TurnLatency {
  return compact({
    endOfUtteranceDelayMs: seconds(metrics.endOfTurnDelay),
    transcriptionDelayMs: seconds(metrics.transcriptionDelay),
    llmTtftMs: seconds(metrics.llmNodeTtft),
    ttsTtfbMs: seconds(metrics.ttsNodeTtfb),
    e2eMs: seconds(metrics.e2eLatency),
  });
}

const TURN_METRICS: ReadonlySet<string> = new Set(['eou_metrics', 'llm_metrics', 'tts_metrics']);
const firstMeasured = (current: number | undefined, next: number): number | undefined => (measured(current) ? current : next);

/** The fields of agents-js `metrics_collected` events (EOU, LLM, TTS metrics) this module reads; ms. */
export type AgentMetricsLike =
  | { type: 'eou_metrics'; speechId?: string; endOfUtteranceDelayMs: number; transcriptionDelayMs: number }
  | { type: 'llm_metrics'; speechId?: string; ttftMs: number }
  | { type: 'tts_metrics'; speechId?: string; ttfbMs: number }
  | { type: string; speechId?: string };

/**
 * Per-turn latencies from a call's metrics events, grouped by `speechId` (events without one
 * belong to no turn; other metric types are ignored). A turn's first measured LLM and TTS responses
 * count (later ones follow tool calls). e2e here is LiveKit's documented estimate, end-of-utterance
 * delay + LLM ttft + TTS ttfb, when all three are known; the chat message's measured `e2eLatency`
 * (turnLatencyFromMessageMetrics) is the better figure when the worker has it.
 */
export function turnLatencyFromMetrics(events: readonly AgentMetricsLike[]): TurnLatency[] {
  const turns = new Map<string, TurnLatency>();
  for (const event of events) {
    if (event.speechId === undefined || !TURN_METRICS.has(event.type)) continue;
    const turn = turns.get(event.speechId) ?? {};
    turns.set(event.speechId, turn);
    if ('endOfUtteranceDelayMs' in event && event.type === 'eou_metrics') {
      turn.endOfUtteranceDelayMs = firstMeasured(turn.endOfUtteranceDelayMs, event.endOfUtteranceDelayMs);
      turn.transcriptionDelayMs = firstMeasured(turn.transcriptionDelayMs, event.transcriptionDelayMs);
    } else if ('ttftMs' in event && event.type === 'llm_metrics') {
      turn.llmTtftMs = firstMeasured(turn.llmTtftMs, event.ttftMs);
    } else if ('ttfbMs' in event && event.type === 'tts_metrics') {
      turn.ttsTtfbMs = firstMeasured(turn.ttsTtfbMs, event.ttfbMs);
    }
  }
  return [...turns.values()].map((raw) => {
    const turn = compact(raw);
    const { endOfUtteranceDelayMs: eou, llmTtftMs: llm, ttsTtfbMs: tts } = turn;
    if (eou !== undefined && llm !== undefined && tts !== undefined) turn.e2eMs = eou + llm + tts;
    return turn;
  });
}
