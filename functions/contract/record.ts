/**
 * The stored call record and the documents rendered from it: what storage keeps and what the
 * spec's readers see. The merge rules live in functions/domain/merge.ts.
 */
import type { CallFacts } from './facts.ts';
import type { EndReason } from './vocabulary.ts';

/** The merge of every fact ever received for one call, plus who said it and when. */
export interface CallState extends CallFacts {
  callId: string;
  /** Per writer, the highest sequence merged. */
  writers: Record<string, number>;
  /** The newest `sentAtMs` of any message merged (the sweeper's clock). */
  lastFactAtMs: number;
}

/** The spec's metadata document (keys in the spec's order; optional ones only when known). */
export interface MetadataDocument {
  call_id: string;
  room_name: string;
  call_direction: 'inbound' | 'outbound';
  inbound_trunk_id?: string;
  outbound_trunk_id?: string;
  agent_number: string | null;
  user_number: string | null;
  start_time: string;
  end_time: string | null;
  /** Seconds, to the millisecond. */
  duration: number | null;
  timezone: string;
  answered: boolean;
  status: string;
  /** Why the call ended (END_REASONS), once it did. */
  end_reason?: EndReason;
  /** The same in words, with what LiveKit said (e.g. `caller hung up (client_initiated)`). */
  end_reason_detail?: string;
  sip_status_code?: number;
  sip_status?: string;
  recording_filename?: string;
  recording_location?: string;
  recording_status?: string;
  recording_error?: string;
  recording_size_bytes?: number;
  recording_duration?: number;
  recording_duration_ms?: number;
  egress_id?: string;
  /** Identifiers to cross-reference LiveKit's own records. */
  job_id?: string;
  room_sid?: string;
  sip_call_id?: string;
  trunk_id?: string;
  dispatch_rule_id?: string;
  /** Per metric, over the call's turns (milliseconds). */
  latency?: Partial<Record<LatencyMetricName, LatencySummary>>;
  /** Per model, summed over every job of the call (snake_case like LiveKit's ModelUsage). */
  usage?: UsageDocument[];
  /** With a price table (CALLDATA_PRICE_TABLE). */
  estimated_cost?: { currency: string; total: number; lines: { model: string; kind: 'llm' | 'tts' | 'stt'; cost: number }[]; unpriced: string[] };
  answering_machine?: { result: string; is_machine?: boolean };
  /** SAVE_TOOL_CALLS=true only. */
  tool_calls?: { id: string; name: string; arguments: string; output?: string; is_error?: boolean; timestamp: string }[];
}

/** The metadata's latency metric names (TurnLatency's, in snake_case without the unit). */
export type LatencyMetricName = 'end_of_utterance_delay' | 'transcription_delay' | 'llm_ttft' | 'tts_ttfb' | 'e2e';
export interface LatencySummary {
  p50_ms: number;
  p90_ms: number;
  max_ms: number;
  count: number;
}

export interface UsageDocument {
  type: 'llm_usage' | 'tts_usage' | 'stt_usage';
  provider?: string;
  model: string;
  input_tokens?: number;
  input_cached_tokens?: number;
  output_tokens?: number;
  characters_count?: number;
  audio_duration_ms?: number;
}

/** Per-turn latency in a transcript item (milliseconds); readers of the spec's shape ignore it. */
export interface TurnMetricsDocument {
  end_of_utterance_delay_ms?: number;
  transcription_delay_ms?: number;
  llm_ttft_ms?: number;
  tts_ttfb_ms?: number;
  e2e_ms?: number;
}

export interface TranscriptionItem {
  role: 'user' | 'assistant';
  content: string;
  interrupted: boolean;
  timestamp: string;
  metrics?: TurnMetricsDocument;
}

export interface TranscriptionDocument {
  call_id: string;
  room_name: string;
  conversation: TranscriptionItem[];
}

export type DocumentKind = 'metadata' | 'transcription';

export interface RenderedDocuments {
  metadata?: MetadataDocument;
  transcription?: TranscriptionDocument;
}

/**
 * One line of a call list: what storage indexes for queries, derived from the record when it is
 * written (functions/domain/render.ts, summarize). Only calls an agent reported have one.
 */
export interface CallSummary {
  callId: string;
  roomName: string;
  startedAtMs: number;
  direction: 'inbound' | 'outbound';
  agentNumber?: string;
  userNumber?: string;
  /** Until the end; absent while the call is in progress. */
  durationMs?: number;
  answered: boolean;
  status: string;
  hasRecording: boolean;
}
