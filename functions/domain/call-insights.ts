/**
 * A call's insights for people, from its metadata document: why it ended, the SIP status, the
 * latency summary, the models' usage and the estimated cost, each as a label and a few lines of
 * plain text. `calldata calls show` prints them and the browse page shows them (its API sends
 * these lines), so the terminal and the page always say the same thing.
 */
import type { LatencyMetricName, MetadataDocument, UsageDocument } from '../contract/record.ts';

export interface InsightLine {
  /** The metadata field the line comes from (`end_reason`, `sip_status`, `latency`, `usage`, `estimated_cost`). */
  field: string;
  label: string;
  lines: string[];
}

/** What each latency metric measures, in the words of LiveKit's metrics. */
const LATENCY_LABELS: Readonly<Record<LatencyMetricName, string>> = {
  end_of_utterance_delay: 'end of utterance',
  transcription_delay: 'transcription',
  llm_ttft: 'LLM first token',
  tts_ttfb: 'TTS first byte',
  e2e: 'end to end',
};
const LATENCY_ORDER = Object.keys(LATENCY_LABELS) as LatencyMetricName[];

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1)).toLocaleString('en-US')} s`;
/** Money to six decimals (as estimated), without trailing zeros. */
const money = (value: number, currency: string) => `${Number(value.toFixed(6)).toLocaleString('en-US', { maximumFractionDigits: 6 })} ${currency}`;

function usageLine(entry: UsageDocument): string {
  const model = entry.provider ? `${entry.provider}/${entry.model}` : entry.model;
  const kind = entry.type.replace('_usage', '').toUpperCase();
  if (entry.type === 'llm_usage') {
    const cached = entry.input_cached_tokens ? ` (${count(entry.input_cached_tokens, 'cached', 'cached')})` : '';
    return `${kind} ${model}: ${count(entry.input_tokens ?? 0, 'input token')}${cached}, ${count(entry.output_tokens ?? 0, 'output token')}`;
  }
  if (entry.type === 'tts_usage') return `${kind} ${model}: ${count(entry.characters_count ?? 0, 'character')}, ${seconds(entry.audio_duration_ms ?? 0)} of audio`;
  return `${kind} ${model}: ${seconds(entry.audio_duration_ms ?? 0)} of audio`;
}

/** The insight lines of a call, in a fixed order; none for a field the metadata does not have. */
export function insightLines(metadata: MetadataDocument | undefined): InsightLine[] {
  if (!metadata) return [];
  const out: InsightLine[] = [];
  const { end_reason: reason, end_reason_detail: detail } = metadata;
  if (reason || detail) out.push({ field: 'end_reason', label: 'Ended', lines: [reason && detail ? `${reason} — ${detail}` : (reason ?? detail ?? '')] });
  if (metadata.sip_status_code !== undefined) {
    out.push({ field: 'sip_status', label: 'SIP status', lines: [`${metadata.sip_status_code}${metadata.sip_status ? ` ${metadata.sip_status}` : ''}`] });
  }
  const latency = metadata.latency;
  if (latency) {
    const lines = LATENCY_ORDER.flatMap((metric) => {
      const stats = latency[metric];
      return stats ? [`${LATENCY_LABELS[metric]}: p50 ${stats.p50_ms} ms · p90 ${stats.p90_ms} ms · max ${stats.max_ms} ms (${count(stats.count, 'turn')})`] : [];
    });
    if (lines.length > 0) out.push({ field: 'latency', label: 'Latency', lines });
  }
  if (metadata.usage && metadata.usage.length > 0) out.push({ field: 'usage', label: 'Usage', lines: metadata.usage.map(usageLine) });
  const cost = metadata.estimated_cost;
  if (cost) {
    const lines = [`${money(cost.total, cost.currency)} in total`, ...cost.lines.map((line) => `${line.model} (${line.kind}): ${money(line.cost, cost.currency)}`)];
    if (cost.unpriced.length > 0) lines.push(`not priced: ${cost.unpriced.join(', ')}`);
    out.push({ field: 'estimated_cost', label: 'Estimated cost', lines });
  }
  return out;
}
